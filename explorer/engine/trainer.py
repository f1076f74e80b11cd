"""The one training loop, for the CLI and the UI alike, for every task.

``Trainer(config, out_dir).run()`` is a generator of :mod:`explorer.engine.events`.
Each ``yield`` is a chance for the consumer to draw and for the trainer to notice
stop / pause requests (checked between batches). The trainer never sleeps and
never calls the UI; a consumer on another thread calls :meth:`Trainer.request_stop`,
:meth:`Trainer.request_pause` and :meth:`Trainer.request_resume`.

What differs between tasks (data preparation, batches, loss, validation figures)
comes from a :class:`~explorer.engine.tasks.Task`; the loop itself is shared.

Resuming is exact: a run stopped after epoch k and resumed produces the same
weights as an uninterrupted run (same device), because the checkpoint holds the
model, the optimizer, the step counter and every random generator.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from explorer.data import Source, augment_batch, open_source
from models import build_model, model_params

from . import runfolder
from .atomic import read_safetensors, write_json
from .config import ConfigError, RunConfig, TrainConfig
from .device import describe_device, resolve_device
from .events import DataReady, EpochReport, Event, Finished, ModelReady, ProbeReport, Status, StepReport
from .preprocess import Preprocess
from .schedule import lr_factor
from .tasks import PreparedData, Task, detect_task, get_task

__all__ = ["Trainer", "TrainingError", "build_optimizer", "batch_indices"]


# Without augmentation, a training set up to this size (as float32) is normalised once up front
# instead of per batch; that is what a hand-written loop does, and it keeps epochs cheap.
PRENORMALIZE_LIMIT_BYTES = 512 * 1024 * 1024


class TrainingError(RuntimeError):
    """Training cannot go on; the message says why and what to try."""


@dataclass
class _State:
    """Counters that a checkpoint must carry for an exact resume (JSON-able)."""

    epoch: int = 0  # last completed epoch
    global_step: int = 0
    best_val_loss: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    train_seconds: float = 0.0
    samples_seen: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


class _StoppedWhileLoading(Exception):
    pass


class _NonFinite(Exception):
    def __init__(self, epoch: int, step: int, value: float, lr: float) -> None:
        self.epoch, self.step, self.value, self.lr = epoch, step, value, lr


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


class Trainer:
    """Runs one training job described by a :class:`RunConfig`.

    Args:
        config: what to train on, which model, how.
        out_dir: the run folder (created); None trains without writing anything.
        source: an already scanned source (the UI's dataset); default opens ``config.data.source``.
        resume: continue the run in ``out_dir`` from its checkpoint.
        report_interval: seconds between :class:`StepReport` events (0 = every step).
    """

    def __init__(
        self,
        config: RunConfig,
        out_dir: str | os.PathLike[str] | None = None,
        *,
        source: Source | None = None,
        resume: bool = False,
        report_interval: float = 0.25,
    ) -> None:
        config.validate()
        if resume and out_dir is None:
            raise ConfigError("resume", "resuming needs the run folder")
        self.config = config
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.source = source
        self.resume = resume
        self.report_interval = report_interval
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self.data_progress: tuple[int, int] = (0, 0)  # (decoded, total) files, for a progress bar
        self.task: Task | None = None
        self.model: nn.Module | None = None
        self.data: PreparedData | None = None

    # -- control (thread-safe) -------------------------------------------------------------
    def request_stop(self) -> None:
        self._stop.set()
        self._running.set()  # wake a paused loop so it can stop

    def request_pause(self) -> None:
        self._running.clear()

    def request_resume(self) -> None:
        self._running.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def _on_data_progress(self, done: int, total: int) -> None:
        """Called by the data layer after each decoded file; lets Stop cut a long load short."""
        self.data_progress = (done, total)
        if self._stop.is_set():
            raise _StoppedWhileLoading

    # -- the run -----------------------------------------------------------------------------
    def run(self) -> Iterator[Event]:
        """Prepare data and model, train epoch by epoch, finish; yields events throughout."""
        cfg, tc = self.config, self.config.train
        resume = self._read_resume() if self.resume else None

        yield Status("reading data")
        source = self.source if self.source is not None else open_source(cfg.data.source)
        task = self.task = get_task(detect_task(source, cfg.data.task))
        stored = resume["config"] if resume else {}
        try:
            data = self.data = task.prepare(
                source,
                cfg.data,
                seed=tc.seed,
                labels=stored.get("labels"),
                preprocess=Preprocess.from_dict(stored["preprocess"]) if resume else None,
                extra=stored.get("task_extra"),
                progress=self._on_data_progress,
            )
        except _StoppedWhileLoading:
            done, total = self.data_progress
            yield Finished(
                status="stopped",
                message=f"stopped by request while reading data ({done} of {total} files)",
                metrics={"status": "stopped", "epochs": 0},
                run_dir=str(self.out_dir) if self.out_dir else None,
            )
            return
        yield DataReady(
            task=data.task,
            labels=list(data.labels),
            train_samples=len(data.train),
            val_samples=len(data.val),
            input_shape=data.preprocess.input_shape(),
            problems=list(data.problems),
            seconds=data.seconds,
        )
        if len(data.train) < 2:
            raise ConfigError(
                "data.source", f"only {len(data.train)} training image(s) left after the validation split"
            )

        s = _Session(self, task, data, resume)
        yield ModelReady(
            arch=cfg.arch,
            params=s.params,
            num_parameters=sum(p.numel() for p in s.model.parameters()),
            device=describe_device(s.device),
            start_epoch=s.state.epoch,
        )
        if s.state.epoch >= tc.epochs:
            yield Status(f"the run already completed {s.state.epoch} of {tc.epochs} epochs")

        status, message = "completed", ""
        try:
            for epoch in range(s.state.epoch + 1, tc.epochs + 1):
                report = yield from s.train_epoch(epoch)
                if report is None:
                    status, message = "stopped", f"stopped by request during epoch {epoch}"
                    break
                yield report
                if tc.early_stopping and s.state.bad_epochs >= tc.early_stopping:
                    status = "early_stopped"
                    message = (
                        f"no better validation loss for {tc.early_stopping} epochs; best was epoch {s.state.best_epoch}"
                    )
                    break
        except _NonFinite as e:
            s.model.load_state_dict(s.last_good)
            status = "failed"
            message = (
                f"training stopped: the loss became {e.value} at epoch {e.epoch}, step {e.step} "
                f"(learning rate {e.lr:.3g}). The last good weights (epoch {s.state.epoch}) are kept. "
                "Try a lower --lr or --grad-clip 1.0."
            )
        metrics = s.finish(status)
        yield Finished(
            status=status, message=message, metrics=metrics, run_dir=str(self.out_dir) if self.out_dir else None
        )

    # -- helpers -----------------------------------------------------------------------------
    def _read_resume(self) -> dict[str, Any]:
        assert self.out_dir is not None
        run_cfg = runfolder.read_config(self.out_dir)
        model_state, opt_state, rng, meta = runfolder.load_checkpoint(self.out_dir)
        weights = self.out_dir / runfolder.WEIGHTS
        best = read_safetensors(weights) if weights.is_file() else None
        return {"config": run_cfg, "model": model_state, "optimizer": opt_state, "rng": rng, "meta": meta, "best": best}


class _Session:
    """Everything one run holds while it trains: model, optimizer, generators, counters."""

    def __init__(self, trainer: Trainer, task: Task, data: PreparedData, resume: dict[str, Any] | None) -> None:
        cfg, tc = trainer.config, trainer.config.train
        self.trainer, self.task, self.data, self.cfg, self.tc = trainer, task, data, cfg, tc
        self.out_dir = trainer.out_dir
        self.device = device = resolve_device(tc.device)

        torch.manual_seed(tc.seed)
        self.params = model_params(cfg.arch).from_dict(task.model_params(cfg.arch, dict(cfg.params))).to_dict()
        image_size = (data.preprocess.height, data.preprocess.width)
        num_outputs = task.num_outputs(data)
        self.model_spec = {
            "in_channels": data.preprocess.channels,
            "num_outputs": num_outputs,
            "image_size": list(image_size),
        }
        model = build_model(
            cfg.arch,
            in_channels=data.preprocess.channels,
            num_outputs=num_outputs,
            image_size=image_size,
            **self.params,
        )
        task.check_model(model, data)
        self.model = trainer.model = model.to(device)
        self.optimizer = build_optimizer(model, tc)
        self.shuffle_gen = torch.Generator().manual_seed(tc.seed)
        self.aug_gen = torch.Generator(device=device).manual_seed(tc.seed + 1)
        self.state = _State()
        self.base_lrs = [g["lr"] for g in self.optimizer.param_groups]
        self.best_state = copy.deepcopy(model.state_dict())
        if resume is not None:
            model.load_state_dict(resume["model"])
            self.optimizer.load_state_dict(resume["optimizer"])
            self._set_rng(resume["rng"])
            for key, value in resume["meta"]["state"].items():
                setattr(self.state, key, value)
            self.base_lrs = list(resume["meta"]["base_lrs"])
            if resume.get("best") is not None:
                self.best_state = resume["best"]
        self.last_good = copy.deepcopy(model.state_dict())

        use_amp = tc.amp and device.type == "cuda"
        amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
        self.autocast: Callable[[], AbstractContextManager[Any]] = (
            (lambda: torch.autocast("cuda", dtype=amp_dtype)) if use_amp else nullcontext
        )
        self.train, self.val = data.train, data.val
        if device.type != "cpu":  # the uint8 cache is small; keep it on the device
            self.train, self.val = self.train.to(device), self.val.to(device)
        self.prenormalized = (
            not cfg.data.augment.enabled and self.train.x.numel() * 4 <= PRENORMALIZE_LIMIT_BYTES
        )
        if self.prenormalized:  # (N, H, W, C) float, normalised; batches still cut along W
            pre = data.preprocess
            x = pre.normalize(pre.to_unit(self.train.x)).permute(0, 2, 3, 1).contiguous()
            self.train = dataclasses.replace(self.train, x=x)
        self.steps_per_epoch = len(batch_indices(torch.arange(len(self.train)), tc.batch_size))
        self.total_steps = tc.epochs * self.steps_per_epoch
        self.check_every_step = device.type == "cpu"  # .item() is free on the CPU, a sync elsewhere
        self.probe_due = time.perf_counter() + tc.probe_interval if tc.probe_interval > 0 else math.inf

        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            full = cfg.to_dict()
            runfolder.write_config(
                self.out_dir,
                {
                    "arch": cfg.arch,
                    "params": self.params,
                    "task": data.task,
                    "labels": list(data.labels),
                    "preprocess": data.preprocess.to_dict(),
                    "task_extra": data.extra,
                    "model": self.model_spec,
                    "data": full["data"],
                    "train": full["train"],
                },
            )
            runfolder.write_problems(self.out_dir, data.problems)

    # -- one epoch ---------------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> Iterator[Event]:
        """Yields step reports and probes; returns the epoch's report, or None when stopped."""
        tr, tc, model, opt, task, pre = (
            self.trainer,
            self.tc,
            self.model,
            self.optimizer,
            self.task,
            self.data.preprocess,
        )
        state, device = self.state, self.device
        model.train()
        batches = batch_indices(torch.randperm(len(self.train), generator=self.shuffle_gen), tc.batch_size)
        zero = lambda dtype=torch.float32: torch.zeros((), device=device, dtype=dtype)  # noqa: E731
        run_loss, run_correct, run_n = zero(), zero(), 0
        ep_loss, ep_correct, ep_n = zero(), zero(), 0
        ep_t0 = last_report = time.perf_counter()
        for step, idx in enumerate(batches, 1):
            if not tr._running.is_set():
                yield Status("paused")
                paused_at = time.perf_counter()
                tr._running.wait()
                ep_t0 += time.perf_counter() - paused_at
                if not tr._stop.is_set():
                    yield Status("resumed")
            if tr._stop.is_set():
                model.load_state_dict(self.last_good)  # back to the state the checkpoint holds
                return None
            factor = lr_factor(
                tc.schedule, state.global_step, self.total_steps, self.steps_per_epoch, tc.step_epochs, tc.step_gamma
            )
            for g, base in zip(opt.param_groups, self.base_lrs):
                g["lr"] = base * factor
            if device.type != "cpu":
                idx = idx.to(device, non_blocking=True)
            xb, yb = task.batch(self.train, idx)
            if self.prenormalized:
                # A channels-last view, as the uint8 path gives: CPU convolutions run faster on it.
                xb = xb.permute(0, 3, 1, 2)
            else:
                xb = pre.to_unit(xb)
                if self.cfg.data.augment.enabled:
                    xb = augment_batch(xb, self.cfg.data.augment, self.aug_gen)
                xb = pre.normalize(xb)
            with self.autocast():
                loss, correct, bs = task.loss(model, xb, yb)
            opt.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if tc.grad_clip > 0:
                self.scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            self.scaler.step(opt)
            self.scaler.update()
            state.global_step += 1
            state.samples_seen += bs
            lw = loss.detach() * bs
            run_loss += lw
            run_correct += correct
            run_n += bs
            ep_loss += lw
            ep_correct += correct
            ep_n += bs
            lr = float(opt.param_groups[0]["lr"])
            if self.check_every_step and not math.isfinite(float(lw)):
                raise _NonFinite(epoch, step, float(lw) / bs, lr)
            now = time.perf_counter()
            if now - last_report >= tr.report_interval or step == len(batches):
                mean_loss = float(run_loss) / run_n
                if not math.isfinite(mean_loss):
                    raise _NonFinite(epoch, step, mean_loss, lr)
                elapsed = state.train_seconds + (now - ep_t0)
                sps = state.samples_seen / elapsed if elapsed > 0 else 0.0
                left = self.total_steps - state.global_step
                yield StepReport(
                    epoch=epoch,
                    epochs=tc.epochs,
                    step=step,
                    steps=len(batches),
                    global_step=state.global_step,
                    loss=mean_loss,
                    accuracy=float(run_correct) / run_n,
                    lr=lr,
                    samples_per_second=sps,
                    elapsed=elapsed,
                    eta=left * tc.batch_size / sps if sps > 0 else math.inf,
                )
                last_report = time.perf_counter()
                run_loss.zero_()
                run_correct.zero_()
                run_n = 0
            if time.perf_counter() >= self.probe_due:
                yield self.probe(epoch)
                model.train()
                self.probe_due = time.perf_counter() + tc.probe_interval

        ep_seconds = time.perf_counter() - ep_t0
        state.train_seconds += ep_seconds
        train_loss = float(ep_loss) / max(ep_n, 1)
        lr = float(opt.param_groups[0]["lr"])
        if not math.isfinite(train_loss):
            raise _NonFinite(epoch, len(batches), train_loss, lr)
        val_loss, val_acc, val_metrics = None, None, {}
        if len(self.val):
            ev = task.evaluate(model, self.val, pre, device, self.autocast, self.data.labels)
            val_loss, val_acc = ev.loss, ev.accuracy
            val_metrics = {k: float(v) for k, v in ev.metrics.items() if isinstance(v, (int, float))}
            if not math.isfinite(val_loss):
                raise _NonFinite(epoch, len(batches), val_loss, lr)
        improved = val_loss is not None and val_loss < state.best_val_loss - 1e-6
        if improved or val_loss is None or not tc.restore_best:
            self.best_state = copy.deepcopy(model.state_dict())
        if improved:
            state.best_val_loss, state.best_epoch, state.bad_epochs = float(val_loss), epoch, 0  # type: ignore[arg-type]
        elif val_loss is not None:
            state.bad_epochs += 1
        state.epoch = epoch
        report = EpochReport(
            epoch=epoch,
            epochs=tc.epochs,
            train_loss=train_loss,
            train_accuracy=float(ep_correct) / max(ep_n, 1),
            val_loss=val_loss,
            val_accuracy=val_acc,
            lr=lr,
            seconds=ep_seconds,
            samples_per_second=ep_n / ep_seconds if ep_seconds > 0 else 0.0,
            best=bool(improved),
            metrics=val_metrics,
        )
        state.history.append(report.to_dict())
        self.last_good = copy.deepcopy(model.state_dict())
        self.save_epoch()
        return report

    # -- saving ------------------------------------------------------------------------------
    def save_weights(self) -> None:
        if self.out_dir is not None:
            meta = {"epoch": self.state.best_epoch or self.state.epoch, "arch": self.cfg.arch, **self.model_spec}
            runfolder.write_weights(self.out_dir, self.best_state, meta)

    def save_epoch(self) -> None:
        if self.out_dir is None:
            return
        self.save_weights()
        runfolder.save_checkpoint(
            self.out_dir,
            model_state=self.model.state_dict(),
            optimizer_state=self.optimizer.state_dict(),
            rng=self._get_rng(),
            meta={"state": self.state.__dict__, "base_lrs": self.base_lrs, "epochs": self.tc.epochs},
        )
        write_json(self.out_dir / runfolder.HISTORY, self.state.history)

    def finish(self, status: str) -> dict[str, Any]:
        """Restore the best weights, measure them on validation, write weights and metrics."""
        state, model = self.state, self.model
        if self.tc.restore_best and len(self.val) and state.best_epoch:
            model.load_state_dict(self.best_state)
        else:
            self.best_state = copy.deepcopy(model.state_dict())
        metrics: dict[str, Any] = {
            "status": status,
            "task": self.data.task,
            "epochs": state.epoch,
            "best_epoch": state.best_epoch or state.epoch,
            "train_seconds": round(state.train_seconds, 3),
            "samples_per_second": round(state.samples_seen / state.train_seconds, 2) if state.train_seconds else 0.0,
            "device": describe_device(self.device),
            "train_samples": len(self.train),
            "val_samples": len(self.val),
            "num_parameters": sum(p.numel() for p in model.parameters()),
        }
        if len(self.val):
            ev = self.task.evaluate(model, self.val, self.data.preprocess, self.device, self.autocast, self.data.labels)
            final = self.task.final_metrics(ev, self.data.labels)
            if final.get("val_loss") is not None and not math.isfinite(final["val_loss"]):
                final["val_loss"] = None
            metrics.update(final)
        metrics["labels"] = list(self.data.labels)
        if self.out_dir is not None:
            if state.epoch > 0:
                self.save_weights()
            runfolder.write_metrics(self.out_dir, metrics)
        return metrics

    # -- probes ------------------------------------------------------------------------------
    @torch.no_grad()
    def probe(self, epoch: int) -> ProbeReport:
        """Intermediates of one fixed image (the first validation image), for the UI to draw."""
        split = self.data.val if len(self.data.val) else self.data.train  # uint8, as the user sees it
        img, _ = self.task.batch(split, torch.zeros(1, dtype=torch.long))
        img = img.to(self.device)
        self.model.eval()
        x = self.data.preprocess.to_tensor(img)
        fi = getattr(self.model, "forward_intermediates", None)
        out, inter = fi(x) if fi is not None else (self.model(x), {})
        probs, text = self.task.probe_output(out, self.data.labels)
        return ProbeReport(
            epoch=epoch,
            global_step=self.state.global_step,
            path=split.paths[0],
            image=img[0].cpu().numpy().copy(),
            probabilities=probs,
            text=text,
            intermediates={k: v[0].detach().float().cpu().numpy().copy() for k, v in inter.items()},
        )

    # -- random generators -------------------------------------------------------------------
    def _get_rng(self) -> dict[str, torch.Tensor]:
        rng = {
            "torch": torch.get_rng_state(),
            "shuffle": self.shuffle_gen.get_state(),
            "augment": self.aug_gen.get_state(),
        }
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return rng

    def _set_rng(self, rng: dict[str, torch.Tensor]) -> None:
        torch.set_rng_state(rng["torch"])
        self.shuffle_gen.set_state(rng["shuffle"])
        self.aug_gen.set_state(rng["augment"])
        if self.device.type == "cuda" and "cuda" in rng:
            torch.cuda.set_rng_state(rng["cuda"], self.device)
