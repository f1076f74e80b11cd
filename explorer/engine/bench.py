"""Benchmark: the engine's training time against a bare hand-written PyTorch loop.

Both train the same model (same seed, same initial weights) on the same uint8 cache
with the same batch size, optimizer, one-cycle schedule and a validation pass per
epoch. The bare loop is what one would write by hand: inputs normalised once up
front, no reports, no checkpoints. On CUDA both use the engine's mixed precision
(``train.amp``) and memory format (channels-last for the families that declare it), and
the GPU is synchronised before each clock reading. ``ratio = bare / engine``; 1.0 means
the engine costs nothing extra.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import torch
import torch.nn.functional as F

from explorer.data import open_source
from models import build_model, model_params

from .config import RunConfig
from .device import autocast_dtype, describe_device, memory_format, resolve_device
from .events import EpochReport, ModelReady
from .schedule import lr_factor
from .tasks import EVAL_BATCH
from .tasks.classify import ClassifyTask
from .trainer import Trainer, batch_indices, build_optimizer

__all__ = ["bench_train", "bare_loop"]


def bare_loop(cfg: RunConfig, data: Any, device: torch.device) -> float:
    """Seconds for ``cfg.train.epochs`` epochs of a plain loop (train + validation pass)."""
    tc = cfg.train
    torch.manual_seed(tc.seed)
    params = model_params(cfg.arch).from_dict(cfg.params).to_dict()
    pre = data.preprocess
    model = build_model(
        cfg.arch, in_channels=pre.channels, num_outputs=len(data.labels), image_size=(pre.height, pre.width), **params
    ).to(device)
    fmt = memory_format(model, device)  # the engine's choices: same layout, same precision
    model = model.to(memory_format=fmt)
    dtype = autocast_dtype(device, tc.amp)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    autocast = (lambda: torch.autocast("cuda", dtype=dtype)) if dtype is not None else nullcontext
    opt = build_optimizer(model, tc)
    x = pre.to_tensor(data.train.x).to(device).contiguous(memory_format=fmt)
    y = data.train.targets.to(device)
    vx = pre.to_tensor(data.val.x).to(device).contiguous(memory_format=fmt)
    vy = data.val.targets.to(device)
    gen = torch.Generator().manual_seed(tc.seed)
    steps = len(batch_indices(torch.arange(len(y)), tc.batch_size))
    total = steps * tc.epochs
    step = 0
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(tc.epochs):
        model.train()
        for idx in batch_indices(torch.randperm(len(y), generator=gen), tc.batch_size):
            for g in opt.param_groups:
                g["lr"] = tc.lr * lr_factor(tc.schedule, step, total, steps)
            idx = idx.to(device)
            with autocast():
                loss = F.cross_entropy(model(x[idx]).float(), y[idx])
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            step += 1
        model.eval()
        with torch.no_grad(), autocast():
            for i in range(0, len(vy), EVAL_BATCH):  # the engine's validation batches
                F.cross_entropy(model(vx[i : i + EVAL_BATCH]).float(), vy[i : i + EVAL_BATCH])
    _sync(device)
    return time.perf_counter() - t0


def engine_loop(cfg: RunConfig, source: Any, device: torch.device) -> float:
    """Seconds from the model being ready to the last epoch report (train + validation
    + per-epoch checkpoint), i.e. the same work as :func:`bare_loop` plus the engine's."""
    with tempfile.TemporaryDirectory(prefix="me-bench-") as tmp:
        trainer = Trainer(cfg, tmp, source=source)
        t0 = t1 = None
        for ev in trainer.run():
            if isinstance(ev, ModelReady):
                _sync(device)
                t0 = time.perf_counter()
            elif isinstance(ev, EpochReport):
                _sync(device)
                t1 = time.perf_counter()
        assert t0 is not None and t1 is not None
        return t1 - t0


def bench_train(
    data: str = "sample:shapes",
    *,
    arch: str = "cnn",
    params: dict[str, Any] | None = None,
    epochs: int = 5,
    batch_size: int = 32,
    repeats: int = 3,
    device: str = "auto",
    log: Callable[[str], None] = lambda s: None,
) -> dict[str, Any]:
    cfg = RunConfig(arch=arch, params=dict(params or {}))
    cfg.data.source = data
    cfg.train.epochs = epochs
    cfg.train.batch_size = batch_size
    cfg.train.device = device
    cfg.validate()
    dev = resolve_device(device)
    source = open_source(data)
    prepared = ClassifyTask().prepare(source, cfg.data, seed=cfg.train.seed)  # the bare loop is a classifier's
    bare, engine = [], []
    for r in range(repeats):  # interleaved so drifts in machine load hit both alike
        bare.append(bare_loop(cfg, prepared, dev))
        engine.append(engine_loop(cfg, source, dev))
        log(f"repeat {r + 1}/{repeats}: bare {bare[-1]:.3f}s engine {engine[-1]:.3f}s")
    b, e = min(bare), min(engine)
    seen = len(prepared.train) * epochs  # training images per run (validation passes come on top)
    return {
        "arch": arch,
        "data": data,
        "device": describe_device(dev),
        "epochs": epochs,
        "batch_size": batch_size,
        "train_samples": len(prepared.train),
        "repeats": repeats,
        "bare_seconds": b,
        "engine_seconds": e,
        "bare_median": statistics.median(bare),
        "engine_median": statistics.median(engine),
        "bare_samples_per_second": round(seen / b, 1) if b > 0 else math.nan,
        "engine_samples_per_second": round(seen / e, 1) if e > 0 else math.nan,
        "amp": str(autocast_dtype(dev, cfg.train.amp) or "off").removeprefix("torch."),
        "ratio": b / e if e > 0 else math.nan,
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
