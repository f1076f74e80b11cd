"""The one training loop, for the CLI and the UI alike.

``Trainer(config, out_dir).run()`` is a generator of :mod:`explorer.engine.events`.
Each ``yield`` is a chance for the consumer to draw and for the trainer to notice
stop / pause requests (checked between batches). The trainer never sleeps and
never calls the UI; a consumer on another thread calls :meth:`Trainer.request_stop`,
:meth:`Trainer.request_pause` and :meth:`Trainer.request_resume`.

Resuming is exact: a run stopped after epoch k and resumed produces the same
weights as an uninterrupted run (same device), because the checkpoint holds the
model, the optimizer, the step counter and every random generator.
"""

from __future__ import annotations

import copy
import math
import os
import threading
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from explorer.data import Source, augment_batch, open_source
from models import build_model, model_params

from . import runfolder
from .atomic import read_safetensors, write_json
from .config import ConfigError, RunConfig
from .device import describe_device, resolve_device
from .events import DataReady, EpochReport, Event, Finished, ModelReady, ProbeReport, Status, StepReport
from .metrics import classification_report
from .prepare import PreparedData, detect_task, prepare_classification
from .preprocess import Preprocess
from .schedule import lr_factor

__all__ = ["Trainer", "TrainingError", "build_optimizer", "batch_indices"]


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss became NaN); the message says why and what to try."""


@dataclass
class _State:
    epoch: int = 0  # last completed epoch
    global_step: int = 0
    best_val_loss: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    train_seconds: float = 0.0
    samples_seen: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


def build_optimizer(model: nn.Module, cfg: Any) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
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

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> Iterator[Event]:
        cfg = self.config
        tc = cfg.train
        resume_state = self._read_resume() if self.resume else None
        if resume_state is not None:
            run_cfg = resume_state["config"]
            labels, pre = run_cfg["labels"], Preprocess.from_dict(run_cfg["preprocess"])
        else:
            labels, pre = None, None

        yield Status("reading data")
        source = self.source if self.source is not None else open_source(cfg.data.source)
        task = detect_task(source, cfg.data.task)
        if task != "classify":
            raise ConfigError("data.task", f"task '{task}' is not supported yet; available: classify")
        data = prepare_classification(source, cfg.data, seed=tc.seed, labels=labels, preprocess=pre)
        self.data = data
        yield DataReady(
            task=data.task,
            labels=list(data.labels),
            train_samples=len(data.train_y),
            val_samples=len(data.val_y),
            input_shape=data.preprocess.input_shape(),
            problems=list(data.problems),
            seconds=data.seconds,
        )
        if len(data.train_y) < 2:
            raise ConfigError(
                "data.source", f"only {len(data.train_y)} training image(s) left after the validation split"
            )

        device = resolve_device(tc.device)
        torch.manual_seed(tc.seed)
        params = model_params(cfg.arch).from_dict(cfg.params).to_dict()
        image_size = (data.preprocess.height, data.preprocess.width)
        model_spec = {
            "in_channels": data.preprocess.channels,
            "num_outputs": len(data.labels),
            "image_size": list(image_size),
        }
        model = build_model(
            cfg.arch,
            in_channels=data.preprocess.channels,
            num_outputs=len(data.labels),
            image_size=image_size,
            **params,
        )
        model.to(device)
        self.model = model
        optimizer = build_optimizer(model, tc)
        shuffle_gen = torch.Generator().manual_seed(tc.seed)
        aug_gen = torch.Generator(device=device).manual_seed(tc.seed + 1)
        state = _State()

        if resume_state is not None:
            model.load_state_dict(resume_state["model"])
            optimizer.load_state_dict(resume_state["optimizer"])
            _set_rng(resume_state["rng"], shuffle_gen, aug_gen, device)
            for key, value in resume_state["meta"]["state"].items():
                setattr(state, key, value)

        run_config = {
            "arch": cfg.arch,
            "params": params,
            "task": data.task,
            "labels": list(data.labels),
            "preprocess": data.preprocess.to_dict(),
            "model": model_spec,
            "data": cfg.to_dict()["data"],
            "train": cfg.to_dict()["train"],
        }
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            runfolder.write_config(self.out_dir, run_config)
            runfolder.write_problems(self.out_dir, data.problems)

        use_amp = tc.amp and device.type == "cuda"
        amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
        scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
        autocast = (lambda: torch.autocast("cuda", dtype=amp_dtype)) if use_amp else nullcontext

        train_x, train_y = data.train_x, data.train_y
        val_x, val_y = data.val_x, data.val_y
        if device.type != "cpu":  # the uint8 cache is small; keep it on the device
            train_x, train_y, val_x, val_y = (t.to(device) for t in (train_x, train_y, val_x, val_y))
        n_train = len(train_y)
        steps_per_epoch = len(batch_indices(torch.arange(n_train), tc.batch_size))
        total_steps = tc.epochs * steps_per_epoch
        base_lrs = [g["lr"] for g in optimizer.param_groups]
        if resume_state is not None:
            base_lrs = [resume_state["meta"]["base_lr"]] * len(optimizer.param_groups)
        aug = cfg.data.augment
        check_every_step = device.type == "cpu"  # .item() is free on the CPU, a sync elsewhere

        yield ModelReady(
            arch=cfg.arch,
            params=params,
            num_parameters=sum(p.numel() for p in model.parameters()),
            device=describe_device(device),
            start_epoch=state.epoch,
        )
        if state.epoch >= tc.epochs:
            yield Status(f"the run already completed {state.epoch} of {tc.epochs} epochs")

        last_good = copy.deepcopy(model.state_dict())
        best_state = copy.deepcopy(model.state_dict())
        if resume_state is not None and resume_state.get("best") is not None:
            best_state = resume_state["best"]
        status, message = "completed", ""
        probe_due = time.perf_counter() + tc.probe_interval if tc.probe_interval > 0 else math.inf
        last_report = time.perf_counter()
        epoch = state.epoch

        def save_best(reason_epoch: int) -> None:
            if self.out_dir is not None:
                runfolder.write_weights(
                    self.out_dir, best_state, {"epoch": reason_epoch, **model_spec, "arch": cfg.arch}
                )

        try:
            for epoch in range(state.epoch + 1, tc.epochs + 1):
                model.train()
                perm = torch.randperm(n_train, generator=shuffle_gen)
                batches = batch_indices(perm, tc.batch_size)
                run_loss = torch.zeros((), device=device)
                run_correct = torch.zeros((), device=device, dtype=torch.long)
                run_n = 0
                ep_loss = torch.zeros((), device=device)
                ep_correct = torch.zeros((), device=device, dtype=torch.long)
                ep_n = 0
                ep_t0 = time.perf_counter()
                for step, idx in enumerate(batches, 1):
                    if not self._running.is_set():
                        yield Status("paused")
                        paused_at = time.perf_counter()
                        self._running.wait()
                        ep_t0 += time.perf_counter() - paused_at
                        if not self._stop.is_set():
                            yield Status("resumed")
                    if self._stop.is_set():
                        break
                    factor = lr_factor(
                        tc.schedule, state.global_step, total_steps, steps_per_epoch, tc.step_epochs, tc.step_gamma
                    )
                    for g, base in zip(optimizer.param_groups, base_lrs):
                        g["lr"] = base * factor
                    if device.type != "cpu":
                        idx = idx.to(device, non_blocking=True)
                    xb = data.preprocess.to_unit(train_x[idx])
                    if aug.enabled:
                        xb = augment_batch(xb, aug, aug_gen)
                    xb = data.preprocess.normalize(xb)
                    yb = train_y[idx]
                    with autocast():
                        logits = model(xb)
                        loss = F.cross_entropy(logits.float(), yb)
                    optimizer.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                    if tc.grad_clip > 0:
                        scaler.unscale_(optimizer)
                        torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
                    scaler.step(optimizer)
                    scaler.update()
                    bs = len(yb)
                    state.global_step += 1
                    state.samples_seen += bs
                    with torch.no_grad():
                        lw = loss.detach() * bs
                        correct = (logits.argmax(1) == yb).sum()
                    run_loss += lw
                    run_correct += correct
                    run_n += bs
                    ep_loss += lw
                    ep_correct += correct
                    ep_n += bs
                    if check_every_step and not math.isfinite(float(lw)):
                        raise _NonFinite(epoch, step, float(lw), optimizer.param_groups[0]["lr"])
                    now = time.perf_counter()
                    if now - last_report >= self.report_interval or step == len(batches):
                        mean_loss = float(run_loss) / run_n
                        if not math.isfinite(mean_loss):
                            raise _NonFinite(epoch, step, mean_loss, optimizer.param_groups[0]["lr"])
                        elapsed = state.train_seconds + (now - ep_t0)
                        sps = state.samples_seen / elapsed if elapsed > 0 else 0.0
                        left = total_steps - state.global_step
                        yield StepReport(
                            epoch=epoch,
                            epochs=tc.epochs,
                            step=step,
                            steps=len(batches),
                            global_step=state.global_step,
                            loss=mean_loss,
                            accuracy=float(run_correct) / run_n,
                            lr=float(optimizer.param_groups[0]["lr"]),
                            samples_per_second=sps,
                            elapsed=elapsed,
                            eta=left * tc.batch_size / sps if sps > 0 else math.inf,
                        )
                        last_report = time.perf_counter()
                        run_loss.zero_()
                        run_correct.zero_()
                        run_n = 0
                    if time.perf_counter() >= probe_due:
                        yield self._probe(model, data, device, epoch, state.global_step)
                        model.train()
                        probe_due = time.perf_counter() + tc.probe_interval
                if self._stop.is_set():
                    status, message = "stopped", f"stopped by request during epoch {epoch}"
                    model.load_state_dict(last_good)
                    break
                ep_seconds = time.perf_counter() - ep_t0
                state.train_seconds += ep_seconds
                train_loss = float(ep_loss) / max(ep_n, 1)
                if not math.isfinite(train_loss):
                    raise _NonFinite(epoch, len(batches), train_loss, optimizer.param_groups[0]["lr"])
                val_loss, val_acc = None, None
                if len(val_y):
                    val_loss, val_acc, _ = evaluate_tensors(model, data.preprocess, val_x, val_y, device, autocast)
                    if not math.isfinite(val_loss):
                        raise _NonFinite(epoch, len(batches), val_loss, optimizer.param_groups[0]["lr"])
                improved = val_loss is not None and val_loss < state.best_val_loss - 1e-6
                if improved or val_loss is None or not tc.restore_best:
                    best_state = copy.deepcopy(model.state_dict())
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
                    lr=float(optimizer.param_groups[0]["lr"]),
                    seconds=ep_seconds,
                    samples_per_second=ep_n / ep_seconds if ep_seconds > 0 else 0.0,
                    best=bool(improved),
                )
                state.history.append(report.to_dict())
                last_good = copy.deepcopy(model.state_dict())
                if self.out_dir is not None:
                    save_best(state.best_epoch or epoch)
                    runfolder.save_checkpoint(
                        self.out_dir,
                        model_state=model.state_dict(),
                        optimizer_state=optimizer.state_dict(),
                        rng=_get_rng(shuffle_gen, aug_gen, device),
                        meta={"state": state.__dict__, "base_lr": base_lrs[0], "epochs": tc.epochs},
                    )
                    write_json(self.out_dir / runfolder.HISTORY, state.history)
                yield report
                if tc.early_stopping and state.bad_epochs >= tc.early_stopping:
                    status = "early_stopped"
                    message = (
                        f"no better validation loss for {tc.early_stopping} epochs; best was epoch {state.best_epoch}"
                    )
                    break
        except _NonFinite as e:
            model.load_state_dict(last_good)
            status = "failed"
            message = (
                f"training stopped: the loss became {e.value} at epoch {e.epoch}, step {e.step} (learning rate {e.lr:.3g}). "
                f"The last good weights (epoch {state.epoch}) are kept. Try a lower --lr or --grad-clip 1.0."
            )

        # -- finish: restore the best weights, measure, write ---------------------------------
        if tc.restore_best and len(val_y) and state.best_epoch:
            model.load_state_dict(best_state)
        else:
            best_state = copy.deepcopy(model.state_dict())
        metrics: dict[str, Any] = {
            "status": status,
            "task": data.task,
            "epochs": state.epoch,
            "best_epoch": state.best_epoch or state.epoch,
            "train_seconds": round(state.train_seconds, 3),
            "samples_per_second": round(state.samples_seen / state.train_seconds, 2) if state.train_seconds else 0.0,
            "device": describe_device(device),
            "train_samples": n_train,
            "val_samples": len(val_y),
            "num_parameters": sum(p.numel() for p in model.parameters()),
        }
        if len(val_y):
            vloss, vacc, preds = evaluate_tensors(model, data.preprocess, val_x, val_y, device, autocast)
            rep = classification_report(val_y.cpu().numpy(), preds, data.labels, loss=vloss)
            metrics.update(
                {
                    "val_accuracy": rep.accuracy,
                    "val_loss": vloss if math.isfinite(vloss) else None,
                    "val_per_class": rep.per_class,
                    "val_confusion": rep.confusion.tolist(),
                    "labels": list(data.labels),
                }
            )
        if self.out_dir is not None:
            if state.epoch > 0:
                save_best(state.best_epoch or state.epoch)
            runfolder.write_metrics(self.out_dir, metrics)
        yield Finished(
            status=status, message=message, metrics=metrics, run_dir=str(self.out_dir) if self.out_dir else None
        )

    # -- helpers -----------------------------------------------------------------------------
    def _read_resume(self) -> dict[str, Any]:
        assert self.out_dir is not None
        run_cfg = runfolder.read_config(self.out_dir)
        model_state, opt_state, rng, meta = runfolder.load_checkpoint(self.out_dir)
        best = None
        weights = self.out_dir / runfolder.WEIGHTS
        if weights.is_file():
            best = read_safetensors(weights)
        return {"config": run_cfg, "model": model_state, "optimizer": opt_state, "rng": rng, "meta": meta, "best": best}

    def _probe(self, model: nn.Module, data: PreparedData, device: torch.device, epoch: int, step: int) -> ProbeReport:
        xs, paths = (data.val_x, data.val_paths) if len(data.val_y) else (data.train_x, data.train_paths)
        img = xs[:1]
        model.eval()
        with torch.no_grad():
            x = data.preprocess.to_tensor(img.to(device))
            fi = getattr(model, "forward_intermediates", None)
            if fi is not None:
                out, inter = fi(x)
            else:
                out, inter = model(x), {}
            probs = torch.softmax(out.float(), dim=1)[0]
        return ProbeReport(
            epoch=epoch,
            global_step=step,
            path=paths[0],
            image=img[0].cpu().numpy().copy(),
            probabilities=probs.cpu().numpy().copy(),
            intermediates={k: v[0].detach().float().cpu().numpy().copy() for k, v in inter.items()},
        )


class _NonFinite(Exception):
    def __init__(self, epoch: int, step: int, value: float, lr: float) -> None:
        self.epoch, self.step, self.value, self.lr = epoch, step, value, lr


@torch.no_grad()
def evaluate_tensors(
    model: nn.Module,
    pre: Preprocess,
    x: torch.Tensor,
    y: torch.Tensor,
    device: torch.device,
    autocast: Any = nullcontext,
    batch_size: int = 256,
) -> tuple[float, float, np.ndarray]:
    """Mean loss, accuracy and predicted classes of a uint8 image tensor."""
    was_training = model.training
    model.eval()
    total, correct = 0.0, 0
    preds = []
    for i in range(0, len(y), batch_size):
        xb = pre.to_tensor(x[i : i + batch_size].to(device))
        yb = y[i : i + batch_size].to(device)
        with autocast():
            logits = model(xb).float()
        total += float(F.cross_entropy(logits, yb, reduction="sum"))
        p = logits.argmax(1)
        correct += int((p == yb).sum())
        preds.append(p.cpu())
    model.train(was_training)
    n = max(len(y), 1)
    return total / n, correct / n, torch.cat(preds).numpy() if preds else np.zeros(0, dtype=np.int64)


def _get_rng(shuffle_gen: torch.Generator, aug_gen: torch.Generator, device: torch.device) -> dict[str, torch.Tensor]:
    rng = {"torch": torch.get_rng_state(), "shuffle": shuffle_gen.get_state(), "augment": aug_gen.get_state()}
    if device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(device)
    return rng


def _set_rng(
    rng: dict[str, torch.Tensor], shuffle_gen: torch.Generator, aug_gen: torch.Generator, device: torch.device
) -> None:
    torch.set_rng_state(rng["torch"])
    shuffle_gen.set_state(rng["shuffle"])
    aug_gen.set_state(rng["augment"])
    if device.type == "cuda" and "cuda" in rng:
        torch.cuda.set_rng_state(rng["cuda"], device)
