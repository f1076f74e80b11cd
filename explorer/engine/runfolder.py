"""The run folder: everything needed to rebuild, reuse and resume a model.

Layout (every file written atomically)::

    config.json             arch, params, task, labels, preprocess, model shape, data/train settings
    weights.safetensors     the weights to use (best validation epoch, or the latest)
    metrics.json            final validation figures under stable keys
    history.json            one record per epoch
    checkpoint.safetensors  resumable state: model, optimizer, RNG, counters (JSON in its metadata)
    problems.txt            one line per unusable input file
    probes/                 one probe snapshot per epoch (epoch_0003.npz + .json; see engine.replay)
    events.jsonl            the trainer's events as they happen, for followers (see engine.eventlog)

Nothing is unpickled when loading: weights and checkpoints are safetensors, the
rest is JSON.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .atomic import read_json, write_json, write_safetensors, write_text

__all__ = [  # (the saving and checking helpers first)
    "checkpoint_payload",
    "write_together",
    "safetensors_writer",
    "json_writer",
    "weights_saved_epoch",
    "check_weights",
    "CONFIG",
    "WEIGHTS",
    "METRICS",
    "HISTORY",
    "CHECKPOINT",
    "PROBLEMS",
    "PROBES",
    "EVENTS",
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
EVENTS = "events.jsonl"
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
    version = cfg.get("version", 0)
    if isinstance(version, int | float) and not isinstance(version, bool) and version > RUN_VERSION:
        raise RunFolderError(f"{path}: written by a newer Model Explorer (version {cfg['version']})")
    missing = [k for k in ("arch", "params", "task", "labels", "preprocess", "model") if k not in cfg]
    if missing:
        raise RunFolderError(f"{path}: incomplete run config, missing {', '.join(missing)}")
    from .runcheck import check_config

    check_config(cfg, path)
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
    tensors, metadata = checkpoint_payload(model_state=model_state, optimizer_state=optimizer_state, rng=rng, meta=meta)
    write_safetensors(Path(run_dir) / CHECKPOINT, tensors, metadata)


def checkpoint_payload(
    *,
    model_state: dict[str, torch.Tensor],
    optimizer_state: dict[str, Any],
    rng: dict[str, torch.Tensor],
    meta: dict[str, Any],
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, safetensors metadata) of a checkpoint."""
    opt_tensors, opt_meta = optimizer_state_to_flat(optimizer_state)
    tensors = {f"model.{k}": v for k, v in model_state.items()}
    tensors.update(opt_tensors)
    tensors.update({f"rng.{k}": v for k, v in rng.items()})
    return tensors, {"meta": json.dumps({**meta, "optimizer": opt_meta})}


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
    from .runcheck import check_checkpoint_meta

    check_checkpoint_meta(meta, path)
    model_state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    rng = {k[4:]: v for k, v in tensors.items() if k.startswith("rng.")}
    opt_state = optimizer_state_from_flat(tensors, meta.pop("optimizer"))
    return model_state, opt_state, rng, meta


# -- several files as one save ----------------------------------------------------------------

Writer = Callable[[Path], None]


def safetensors_writer(tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> Writer:
    plain = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    return lambda p: save_file(plain, str(p), metadata=dict(metadata))


def json_writer(obj: Any) -> Writer:
    data = (json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
    return lambda p: p.write_bytes(data)


def _write_staged(tmp: Path, write: Writer) -> None:
    """Writes one staged file completely and syncs it (the one place a save touches the disk)."""
    write(tmp)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())


def write_together(run_dir: str | os.PathLike[str], writers: list[tuple[str, Writer]]) -> None:
    """Writes several files of a run as one save.

    Every file is first written and synced under a temporary name beside its target; only
    when all of them are complete are they renamed into place, in the given order. A
    failure while writing (a full disk) removes the temporary files and leaves every
    previous file as it was, so the files never come from two different saves.
    """
    run_dir = Path(run_dir)
    staged: list[tuple[Path, Path]] = []
    try:
        for name, write in writers:
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=run_dir)
            os.close(fd)
            staged.append((Path(tmp), run_dir / name))
            _write_staged(Path(tmp), write)
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, target in staged:
        os.replace(tmp, target)


def weights_saved_epoch(path: str | os.PathLike[str]) -> int | None:
    """The epoch whose save wrote a weights file (None for files from before this was recorded)."""
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads((f.metadata() or {}).get("meta", "{}"))
    saved = meta.get("saved_epoch") if isinstance(meta, dict) else None
    return saved if isinstance(saved, int) and not isinstance(saved, bool) else None


def check_weights(
    run_path: str | os.PathLike[str], config: dict[str, Any], state: dict[str, torch.Tensor], weights: Path
) -> dict[str, torch.Tensor]:
    """``state`` checked against the model ``config`` describes (see
    :func:`explorer.engine.runcheck.check_weights`); ``run_path`` is a run folder or a bundle."""
    from .runcheck import check_weights as check

    config_path = Path(weights).with_name(CONFIG) if Path(run_path).is_dir() else Path(weights).with_suffix(".json")
    return check(config, state, config_path, weights)
