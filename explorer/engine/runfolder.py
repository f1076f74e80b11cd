"""The run folder: everything needed to rebuild, reuse and resume a model.

Layout (every file written atomically)::

    config.json             arch, params, task, labels, preprocess, model shape, data/train settings
    weights.safetensors     the weights to use (best validation epoch, or the latest)
    metrics.json            final validation figures under stable keys
    history.json            one record per epoch
    checkpoint.safetensors  resumable state: model, optimizer, RNG, counters (JSON in its metadata)
    problems.txt            one line per unusable input file
    probes/                 one probe snapshot per epoch (epoch_0003.npz + .json; see engine.replay)

Nothing is unpickled when loading: weights and checkpoints are safetensors, the
rest is JSON.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from .atomic import read_json, write_json, write_safetensors, write_text

__all__ = [
    "CONFIG",
    "WEIGHTS",
    "METRICS",
    "HISTORY",
    "CHECKPOINT",
    "PROBLEMS",
    "PROBES",
    "RUN_FORMAT",
    "RunFolderError",
    "save_checkpoint",
    "load_checkpoint",
    "optimizer_state_to_flat",
    "optimizer_state_from_flat",
    "write_config",
    "write_metrics",
    "write_problems",
    "write_weights",
    "read_config",
    "read_config_file",
    "read_history",
    "run_location",
    "weights_file",
]

CONFIG = "config.json"
WEIGHTS = "weights.safetensors"
METRICS = "metrics.json"
HISTORY = "history.json"
CHECKPOINT = "checkpoint.safetensors"
PROBLEMS = "problems.txt"
PROBES = "probes"
RUN_FORMAT = "model-explorer-run"
RUN_VERSION = 1


class RunFolderError(ValueError):
    """A run folder (or bundle) that cannot be used; the message names the file."""


def write_config(run_dir: str | os.PathLike[str], config: dict[str, Any]) -> None:
    write_json(Path(run_dir) / CONFIG, {"format": RUN_FORMAT, "version": RUN_VERSION, **config})


def read_config(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(run_dir) / CONFIG
    if not Path(run_dir).is_dir():
        raise RunFolderError(f"{run_dir}: not a run folder (no such directory)")
    if not path.is_file():
        raise RunFolderError(f"{path}: missing; {run_dir} is not a Model Explorer run folder")
    return read_config_file(path)


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a run config (``config.json`` or an export's JSON)."""
    try:
        cfg = read_json(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RunFolderError(f"{path}: unreadable ({e})") from None
    if not isinstance(cfg, dict) or cfg.get("format") != RUN_FORMAT:
        raise RunFolderError(f"{path}: not a Model Explorer run config (format != {RUN_FORMAT!r})")
    if cfg.get("version", 0) > RUN_VERSION:
        raise RunFolderError(f"{path}: written by a newer Model Explorer (version {cfg['version']})")
    missing = [k for k in ("arch", "params", "task", "labels", "preprocess", "model") if k not in cfg]
    if missing:
        raise RunFolderError(f"{path}: incomplete run config, missing {', '.join(missing)}")
    return cfg


def run_location(path: str | os.PathLike[str]) -> Path:
    """The run a user picked: its folder when they chose the folder's ``config.json``, else ``path``
    (a run folder, or an exported ``.safetensors`` bundle)."""
    p = Path(path)
    return p.parent if p.name == CONFIG else p


def weights_file(path: str | os.PathLike[str]) -> Path | None:
    """The weights of a run folder or of an exported ``.safetensors`` bundle, if there are any yet."""
    p = Path(path)
    if p.is_file() and p.suffix == Path(WEIGHTS).suffix:
        return p
    w = p / WEIGHTS
    return w if w.is_file() else None


def read_history(run_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The per-epoch records of a run folder; empty when there are none (yet) or they are unreadable."""
    path = Path(run_dir) / HISTORY
    if not path.is_file():
        return []
    try:
        data = read_json(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return []
    return [r for r in data if isinstance(r, dict)] if isinstance(data, list) else []


def write_weights(run_dir: str | os.PathLike[str], state_dict: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    write_safetensors(Path(run_dir) / WEIGHTS, state_dict, {"meta": json.dumps(meta)})


def write_metrics(run_dir: str | os.PathLike[str], metrics: dict[str, Any]) -> None:
    write_json(Path(run_dir) / METRICS, metrics)


def write_problems(run_dir: str | os.PathLike[str], problems: list[str]) -> None:
    write_text(Path(run_dir) / PROBLEMS, "".join(p + "\n" for p in problems))


# -- optimizer state <-> (tensors, JSON) ----------------------------------------------------


def optimizer_state_to_flat(state_dict: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, dict[str, Any]] = {}
    for pid, st in state_dict["state"].items():
        for key, value in st.items():
            if torch.is_tensor(value):
                tensors[f"optim.{pid}.{key}"] = value
            else:
                plain.setdefault(str(pid), {})[key] = value
    return tensors, {"param_groups": state_dict["param_groups"], "plain": plain}


def optimizer_state_from_flat(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = value
    for pid, entries in meta["plain"].items():
        state.setdefault(int(pid), {}).update(entries)
    return {"state": state, "param_groups": meta["param_groups"]}


# -- checkpoint -------------------------------------------------------------------------


def save_checkpoint(
    run_dir: str | os.PathLike[str],
    *,
    model_state: dict[str, torch.Tensor],
    optimizer_state: dict[str, Any],
    rng: dict[str, torch.Tensor],
    meta: dict[str, Any],
) -> None:
    """One file, so model, optimizer and counters can never disagree after a crash."""
    opt_tensors, opt_meta = optimizer_state_to_flat(optimizer_state)
    tensors = {f"model.{k}": v for k, v in model_state.items()}
    tensors.update(opt_tensors)
    tensors.update({f"rng.{k}": v for k, v in rng.items()})
    write_safetensors(Path(run_dir) / CHECKPOINT, tensors, {"meta": json.dumps({**meta, "optimizer": opt_meta})})


def load_checkpoint(
    run_dir: str | os.PathLike[str],
) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, torch.Tensor], dict[str, Any]]:
    """Returns (model_state, optimizer_state, rng, meta)."""
    path = Path(run_dir) / CHECKPOINT
    if not path.is_file():
        raise RunFolderError(f"{path}: missing; nothing to resume (the run never finished an epoch)")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})["meta"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises several error types for damaged files
        raise RunFolderError(f"{path}: damaged checkpoint ({e})") from None
    model_state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    rng = {k[4:]: v for k, v in tensors.items() if k.startswith("rng.")}
    opt_state = optimizer_state_from_flat(tensors, meta.pop("optimizer"))
    return model_state, opt_state, rng, meta
