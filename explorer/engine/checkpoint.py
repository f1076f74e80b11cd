"""Checkpointing: what a run folder gets at its start, after every epoch and at its end.

Every write goes through :mod:`explorer.engine.runfolder` (temp file + rename). The
checkpoint holds the model, the optimizer, the counters and every random generator, so a
resumed run continues exactly where the last completed epoch left it.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import runfolder
from .atomic import read_safetensors

if TYPE_CHECKING:
    from .session import Session

__all__ = ["read_resume", "write_run_config", "record_best", "save_weights", "save_epoch"]


def read_resume(out_dir: Path) -> dict[str, Any]:
    """Everything a resumed run starts from: stored config, checkpoint and best weights.

    The best weights are optional: when ``weights.safetensors`` is missing or damaged, or
    belongs to another save than the checkpoint, the run resumes from the intact
    checkpoint and ``note`` says so (the best epoch restarts from the checkpoint's)."""
    run_cfg = runfolder.read_config(out_dir)
    model_state, opt_state, rng, meta = runfolder.load_checkpoint(out_dir)
    best, note = _read_best(out_dir, meta)
    return {
        "config": run_cfg,
        "model": model_state,
        "optimizer": opt_state,
        "rng": rng,
        "meta": meta,
        "best": best,
        "note": note,
    }


def _read_best(out_dir: Path, meta: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    weights = out_dir / runfolder.WEIGHTS
    if not weights.is_file():
        return None, f"{weights} is missing; resuming from the checkpoint alone"
    try:
        best = read_safetensors(weights)
        saved = runfolder.weights_saved_epoch(weights)
    except Exception as e:  # noqa: BLE001 - safetensors raises several error types for damaged files
        return (
            None,
            f"{weights} is damaged ({str(e).splitlines()[0] if str(e) else type(e).__name__}); resuming from the intact checkpoint",
        )
    epoch = meta.get("state", {}).get("epoch")
    if saved is not None and saved != epoch:
        return None, f"{weights} is from epoch {saved}, the checkpoint from epoch {epoch}; resuming from the checkpoint"
    return best, ""


def write_run_config(s: Session) -> None:
    """config.json (what rebuilds the model and its input) and problems.txt, at the start."""
    if s.out_dir is None:
        return
    s.out_dir.mkdir(parents=True, exist_ok=True)
    cfg, data = s.cfg, s.data
    full = cfg.to_dict()
    runfolder.write_config(
        s.out_dir,
        {
            "arch": cfg.arch,
            "params": s.params,
            "task": data.task,
            "labels": list(data.labels),
            "preprocess": data.preprocess.to_dict(),
            "task_extra": data.extra,
            "model": s.model_spec,
            "data": full["data"],
            "train": full["train"],
        },
    )
    runfolder.write_problems(s.out_dir, data.problems)


def record_best(s: Session, epoch: int, val_loss: float | None) -> bool:
    """Update the best-epoch bookkeeping after a validated epoch; True when it improved."""
    state, tc = s.state, s.tc
    improved = val_loss is not None and val_loss < state.best_val_loss - 1e-6
    if improved or val_loss is None or not tc.restore_best:
        s.best_state = copy.deepcopy(s.model.state_dict())
    if improved:
        state.best_val_loss, state.best_epoch, state.bad_epochs = float(val_loss), epoch, 0  # type: ignore[arg-type]
    elif val_loss is not None:
        state.bad_epochs += 1
    return bool(improved)


def _weights_meta(s: Session) -> dict[str, Any]:
    return {
        "epoch": s.state.best_epoch or s.state.epoch,
        "saved_epoch": s.state.epoch,
        "arch": s.cfg.arch,
        **s.model_spec,
    }


def save_weights(s: Session) -> None:
    if s.out_dir is not None:
        runfolder.write_weights(s.out_dir, s.best_state, _weights_meta(s))


def save_epoch(s: Session) -> None:
    """After a completed epoch: best weights, the checkpoint, the metrics history, as one save
    (:func:`~explorer.engine.runfolder.write_together`: all written, then all renamed)."""
    if s.out_dir is None:
        return
    tensors, metadata = runfolder.checkpoint_payload(
        model_state=s.model.state_dict(),
        optimizer_state=s.optimizer.state_dict(),
        rng=s.get_rng(),
        meta={
            "state": s.state.__dict__,
            "base_lrs": s.base_lrs,
            "epochs": s.tc.epochs,
            "world_size": s.dist.world_size,
        },
    )
    runfolder.write_together(
        s.out_dir,
        [
            (runfolder.WEIGHTS, runfolder.safetensors_writer(s.best_state, {"meta": json.dumps(_weights_meta(s))})),
            (runfolder.CHECKPOINT, runfolder.safetensors_writer(tensors, metadata)),
            (runfolder.HISTORY, runfolder.json_writer(s.state.history)),
        ],
    )
