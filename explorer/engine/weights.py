"""Weights files: read them without running code, and fit them to a model with a clear report.

``.safetensors`` files are plain tensors. ``.pt`` / ``.pth`` files are pickles: they are read
with ``torch.load(weights_only=True)`` only, which rebuilds tensors and plain containers and
refuses every other object before creating it, so a crafted file executes nothing. A refused
file gets a message that says what it needs, never the advice to turn the safety off.
"""

from __future__ import annotations

import os
import pickle
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .atomic import read_safetensors
from .runfolder import RunFolderError

__all__ = ["STATE_SUFFIXES", "PICKLE_SUFFIXES", "read_state_file", "fit_state"]

PICKLE_SUFFIXES = (".pt", ".pth")
STATE_SUFFIXES = (".safetensors", *PICKLE_SUFFIXES)
_NESTED = ("state_dict", "model_state_dict", "model")  # common wrappers of a state dict in .pt files
_SHOWN = 8


def _regular_file(path: Path) -> None:
    try:
        st = os.stat(path)
    except OSError as e:
        raise RunFolderError(f"{path}: cannot be read ({e.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise RunFolderError(f"{path}: not a regular file (a folder, device or FIFO is never read as weights)")


def _refusal(path: Path, err: Exception) -> RunFolderError:
    found = re.search(r"GLOBAL ([\w.]+)", str(err))
    what = f" (it asks for {found.group(1)})" if found else ""
    return RunFolderError(
        f"{path}: refused: this file needs arbitrary Python objects to be unpickled{what}, and unpickling can run "
        "any code, so it was not loaded and nothing in it ran. Only plain tensor state dicts are read from "
        ".pt/.pth files; re-save the model's state_dict() (or as .safetensors) with code you trust."
    )


def _read_pickle(path: Path) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise _refusal(path, e) from None
    except Exception as e:  # zip / pickle damage comes as RuntimeError, EOFError, ValueError...
        if "weights_only" in str(e) or "Unsupported global" in str(e):
            raise _refusal(path, e) from None
        raise RunFolderError(f"{path}: damaged or not a PyTorch weights file ({str(e).splitlines()[0]})") from None
    for key in _NESTED:
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise RunFolderError(f"{path}: not a state dict (expected a dict of parameter name -> tensor)")
    state = {str(k): v for k, v in obj.items()}
    if all(k.startswith("module.") for k in state):  # saved from DataParallel / DDP
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def read_state_file(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file or a ``.pt`` / ``.pth`` state dict (never unpickling objects).

    Raises:
        RunFolderError: not a regular file, damaged, not a state dict, or refused (arbitrary objects).
    """
    p = Path(path)
    _regular_file(p)
    if p.suffix in PICKLE_SUFFIXES:
        return _read_pickle(p)
    try:
        return read_safetensors(p)
    except Exception as e:  # safetensors raises several error types for damaged files
        raise RunFolderError(f"{p}: damaged weights file ({str(e).splitlines()[0]})") from None


def _listed(title: str, items: list[str]) -> str:
    more = f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
    return f"{title} ({len(items)}): {', '.join(items[:_SHOWN])}{more}"


def state_problems(model: nn.Module, state: Mapping[str, Any]) -> str | None:
    """The missing, unexpected and mis-shaped keys of ``state`` for ``model`` (listed), or None
    when it fits exactly. ``model`` may live on the meta device."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shaped = [
        f"{k} {tuple(state[k].shape)} for {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    parts = [
        _listed(t, x)
        for t, x in (("missing", missing), ("unexpected", unexpected), ("mis-shaped (file for model)", shaped))
        if x
    ]
    return "; ".join(parts) or None


def fit_state(model: nn.Module, state: Mapping[str, torch.Tensor], origin: Any) -> None:
    """Load ``state`` into ``model`` exactly.

    Raises:
        RunFolderError: naming ``origin`` and listing the missing, unexpected and mis-shaped keys.
    """
    problem = state_problems(model, state)
    if problem:
        raise RunFolderError(f"{origin}: the weights do not fit the architecture; {problem}")
    model.load_state_dict(dict(state))
