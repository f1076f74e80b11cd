"""What one run holds while it trains: model, optimizer, generators, data on the device, counters.

The order of every random draw here (seed, model build, generators, restored states) is
part of exact resume and reproducibility: change it and the same seed trains differently.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from models import build_model, model_params

from .config import ConfigError, RunConfig, TrainConfig
from .device import autocast_dtype, fits_on_device, memory_format, resolve_device
from .distributed import SINGLE, Distributed
from .resources import check_step_fits
from .runcheck import check_param_groups
from .runfolder import CHECKPOINT, CONFIG, RunFolderError
from .tasks import Evaluation, PreparedData, Task
from .weights import state_problems

__all__ = ["Session", "Counters", "build_optimizer", "batch_indices", "PRENORMALIZE_LIMIT_BYTES"]


# Without augmentation, a training set up to this size (as float32) is normalised once up front
# instead of per batch; that is what a hand-written loop does, and it keeps epochs cheap.
PRENORMALIZE_LIMIT_BYTES = 512 * 1024 * 1024


@dataclass
class Counters:
    """Counters that a checkpoint must carry for an exact resume (JSON-able)."""

    epoch: int = 0  # last completed epoch
    global_step: int = 0
    best_val_loss: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    train_seconds: float = 0.0
    samples_seen: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The configured optimizer; a model with ``param_groups(lr)`` (e.g. an encoder at
    its own learning rate) supplies its own groups."""
    groups = getattr(model, "param_groups", None)
    params: Any = groups(cfg.lr) if callable(groups) else [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=cfg.momentum > 0
        )
    raise ConfigError("train.optimizer", f"{cfg.optimizer!r} is not one of adam, adamw, sgd")


def batch_indices(perm: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    """Split a permutation into batches; a last batch of one joins the previous one
    (batch norm cannot train on a single sample)."""
    chunks = list(torch.split(perm, batch_size))
    if len(chunks) > 1 and chunks[-1].numel() == 1:
        chunks[-2] = torch.cat([chunks[-2], chunks[-1]])
        chunks.pop()
    return chunks


class Session:
    """Everything one run holds while it trains (built once per :meth:`Trainer.run`)."""

    def __init__(
        self,
        cfg: RunConfig,
        out_dir: Path | None,
        task: Task,
        data: PreparedData,
        resume: dict[str, Any] | None,
        dist: Distributed = SINGLE,
    ) -> None:
        tc = cfg.train
        self.cfg, self.tc, self.task, self.data, self.out_dir = cfg, tc, task, data, out_dir
        self.dist = dist
        self.device = device = dist.device_for(resolve_device(tc.device))
        kwargs = self._model_args()
        x = data.train.x  # (N, H, W, C) uint8
        example = (int(x.shape[3]), int(x.shape[1]), int(x.shape[2]))
        check_step_fits(lambda: build_model(cfg.arch, **kwargs), example, min(tc.batch_size, len(x)), device)

        torch.manual_seed(tc.seed)
        self.model = self._build_model(kwargs).to(device)
        self.memory_format = memory_format(self.model, device)  # channels-last where the model declares it
        self.model = self.model.to(memory_format=self.memory_format)
        self.optimizer = build_optimizer(self.model, tc)
        self.shuffle_gen = torch.Generator().manual_seed(tc.seed)
        self.aug_gen = torch.Generator(device=device).manual_seed(tc.seed + 1)
        self.state = Counters()
        self.base_lrs = [g["lr"] for g in self.optimizer.param_groups]
        self.best_state = copy.deepcopy(self.model.state_dict())
        if resume is not None:
            self._restore(resume)
        self.last_good = copy.deepcopy(self.model.state_dict())
        self.evaluations: dict[int, Evaluation] = {}  # epoch -> its validation (best and last only)
        self._set_precision()
        self._place_data()
        self.steps_per_epoch = len(self.epoch_batches(torch.arange(len(self.train))))
        self.total_steps = tc.epochs * self.steps_per_epoch
        if resume is not None and resume["meta"].get("world_size", 1) != dist.world_size:
            # the checkpoint counted steps of another world size: continue the schedule in ours
            self.state.global_step = self.state.epoch * self.steps_per_epoch
        # .item() is free on the CPU, a sync elsewhere; a distributed step reads its figures anyway
        self.check_every_step = device.type == "cpu" or dist.enabled
        # what trains: the model itself, or the model in DistributedDataParallel (``self.model``
        # stays the plain model: checkpoints, validation, probes and tasks' own methods use it)
        self.net = dist.wrap(self.model)

    def _model_args(self) -> dict[str, Any]:
        """``build_model`` keywords (sets ``params`` and ``model_spec``)."""
        cfg, task, data = self.cfg, self.task, self.data
        self.params = model_params(cfg.arch).from_dict(task.model_params(cfg.arch, dict(cfg.params))).to_dict()
        image_size = (data.preprocess.height, data.preprocess.width)
        num_outputs = task.num_outputs(data)
        self.model_spec = {
            "in_channels": data.preprocess.channels,
            "num_outputs": num_outputs,
            "image_size": list(image_size),
        }
        return dict(in_channels=data.preprocess.channels, num_outputs=num_outputs, image_size=image_size, **self.params)

    def _build_model(self, kwargs: dict[str, Any]) -> nn.Module:
        model = build_model(self.cfg.arch, **kwargs)
        self.task.check_model(model, self.data)
        return model

    def _restore(self, resume: dict[str, Any]) -> None:
        """The checkpoint's state; a part that does not fit is a RunFolderError naming it."""
        path = Path(self.out_dir or ".") / CHECKPOINT
        meta = resume["meta"]
        problem = state_problems(self.model, resume["model"])
        if problem:
            described = path.with_name(CONFIG)
            raise RunFolderError(f"{path}: its model does not fit the one {described} describes: {problem}")
        check_param_groups(resume["optimizer"]["param_groups"], self.optimizer.state_dict()["param_groups"], path)
        steps: list[tuple[str, Callable[[], object]]] = [
            ("model", lambda: self.model.load_state_dict(resume["model"])),
            ("optimizer", lambda: self.optimizer.load_state_dict(resume["optimizer"])),
            ("rng", lambda: self.set_rng(resume["rng"])),
        ]
        for what, step in steps:
            try:
                step()
            except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as e:
                first = str(e).splitlines()[0] if str(e) else type(e).__name__
                raise RunFolderError(f"{path}: {what} does not fit this run ({first})") from None
        for key, value in meta["state"].items():
            setattr(self.state, key, value)
        self.base_lrs = list(meta["base_lrs"])
        if len(self.base_lrs) != len(self.optimizer.param_groups):
            raise RunFolderError(
                f"{path}: base_lrs has {len(self.base_lrs)} entries for {len(self.optimizer.param_groups)} parameter groups"
            )
        if resume.get("best") is not None:
            self.best_state = resume["best"]
        else:  # no usable best weights: the checkpoint's epoch is the best known
            self.best_state = copy.deepcopy(self.model.state_dict())
            last = self.state.history[-1] if self.state.history else {}
            loss = last.get("val_loss") if isinstance(last, dict) else None
            self.state.best_epoch = self.state.epoch
            self.state.best_val_loss = float(loss) if isinstance(loss, int | float) else math.inf

    def _set_precision(self) -> None:
        dtype = autocast_dtype(self.device, self.tc.amp)
        use_amp, amp_dtype = dtype is not None, dtype or torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
        self.autocast: Callable[[], AbstractContextManager[Any]] = (
            (lambda: torch.autocast("cuda", dtype=amp_dtype)) if use_amp else nullcontext
        )

    def _place_data(self) -> None:
        from explorer.data import data_budget

        data = self.data
        self.train, self.val = data.train, data.val
        # The uint8 cache is small: kept on the device, unless it would crowd the model out
        # (then batches go through pinned memory, see step.batch_inputs).
        if self.device.type != "cpu" and fits_on_device(self.train.x.numel() + self.val.x.numel(), self.device):
            self.train, self.val = self.train.to(self.device), self.val.to(self.device)
        # the float copy (4 bytes a pixel) must fit the limit and, with the uint8 splits, the data memory budget
        n_train, n_val = self.train.x.numel(), self.val.x.numel()
        self.prenormalized = (
            not self.cfg.data.augment.enabled
            and n_train * 4 <= PRENORMALIZE_LIMIT_BYTES
            and n_train * 5 + n_val <= data_budget(self.cfg.data.memory_budget)
        )
        if self.prenormalized:  # (N, H, W, C) float, normalised; batches still cut along W
            pre = data.preprocess
            x = pre.normalize(pre.to_unit(self.train.x)).permute(0, 2, 3, 1).contiguous()
            self.train = dataclasses.replace(self.train, x=x)

    def epoch_batches(self, perm: torch.Tensor) -> list[torch.Tensor]:
        """This process's batches of an epoch whose sample order is ``perm`` (its shard of it
        in a distributed run)."""
        return batch_indices(self.dist.batches(perm), self.tc.batch_size)

    # -- small questions -------------------------------------------------------------------------
    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def evaluate(self, autocast: Callable[[], AbstractContextManager[Any]] | None = None) -> Evaluation:
        """The task's validation of the current weights (``autocast``: a stop-checking wrapper)."""
        return self.task.evaluate(
            self.model, self.val, self.data.preprocess, self.device, autocast or self.autocast, self.data.labels
        )

    # -- random generators -----------------------------------------------------------------------
    def get_rng(self) -> dict[str, torch.Tensor]:
        rng = {
            "torch": torch.get_rng_state(),
            "shuffle": self.shuffle_gen.get_state(),
            "augment": self.aug_gen.get_state(),
        }
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return rng

    def set_rng(self, rng: dict[str, torch.Tensor]) -> None:
        torch.set_rng_state(rng["torch"])
        self.shuffle_gen.set_state(rng["shuffle"])
        self.aug_gen.set_state(rng["augment"])
        if self.device.type == "cuda" and "cuda" in rng:
            torch.cuda.set_rng_state(rng["cuda"], self.device)
