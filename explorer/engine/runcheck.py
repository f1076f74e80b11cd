"""A run folder's files checked field by field before anything is built from them.

:func:`check_config` checks a ``config.json`` (or an export's JSON) and
:func:`check_checkpoint_meta` the JSON metadata of ``checkpoint.safetensors``: types,
ranges, finiteness and how the fields agree with each other (the labels and the model's
outputs, the preprocessing and the model's input). Every problem is a
:class:`~explorer.engine.runfolder.RunFolderError` naming the file and the field, so a
damaged or hand-edited run is a message, never a traceback, and labels that do not match
the model are refused instead of being silently cut or renormalised.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

from .runfolder import RUN_VERSION, RunFolderError

__all__ = [
    "check_config",
    "check_checkpoint_meta",
    "check_resume_config",
    "check_param_groups",
    "check_weights",
]

MAX_OUTPUTS = 1_000_000
MAX_SIDE = 4096
_COUNTERS = {"epoch", "global_step", "best_epoch", "bad_epochs", "samples_seen"}


class _Bad(Exception):
    def __init__(self, field: str, why: str) -> None:
        super().__init__(f"{field}: {why}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _int(d: Mapping[str, Any], key: str, field: str, lo: int, hi: int, optional: bool = False) -> int | None:
    v = d.get(key)
    if v is None and optional:
        return None
    if not _is_int(v) or not lo <= v <= hi:
        raise _Bad(field, f"expected a whole number in [{lo}, {hi}], got {_show(v)}")
    return v


def _num(v: Any, field: str, lo: float = -math.inf, hi: float = math.inf, allow_inf: bool = False) -> float:
    if not _is_num(v) or math.isnan(v) or (math.isinf(v) and not allow_inf) or not lo <= v <= hi:
        raise _Bad(field, f"expected a number in [{lo:g}, {hi:g}], got {_show(v)}")
    return float(v)


def _dict(v: Any, field: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise _Bad(field, f"expected an object, got {_show(v)}")
    return v


def _show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


# -- config.json ---------------------------------------------------------------------------


def check_config(cfg: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Raises RunFolderError ``"<path>: <field>: <why>"`` for the first bad field."""
    try:
        _check_config(cfg)
    except _Bad as e:
        raise RunFolderError(f"{path}: {e}") from None


def _check_config(cfg: dict[str, Any]) -> None:
    from models import ParamError, list_models, model_params

    if "version" in cfg:
        _int(cfg, "version", "version", 1, RUN_VERSION)
    arch = cfg["arch"]
    if not isinstance(arch, str) or arch not in list_models():
        raise _Bad("arch", f"{_show(arch)} is not an architecture of this version ({', '.join(list_models())})")
    params = _dict(cfg["params"], "params")
    try:
        model_params(arch).from_dict(params)
    except ParamError as e:
        raise _Bad(f"params.{e.param}", e.message) from None
    except (TypeError, ValueError) as e:
        raise _Bad("params", str(e)) from None
    for key in ("data", "train"):
        if key in cfg:
            _dict(cfg[key], key)
    if isinstance(cfg.get("data"), dict) and "max_pixels" in cfg["data"]:
        _int(cfg["data"], "max_pixels", "data.max_pixels", 1, 2**40)
    labels = _labels(cfg["labels"])
    pre = _preprocess(_dict(cfg["preprocess"], "preprocess"))
    _model(_dict(cfg["model"], "model"), pre, _output_count(cfg, labels))


def _labels(labels: Any) -> list[str]:
    if not isinstance(labels, list) or not labels:
        raise _Bad("labels", f"expected a non-empty list of names, got {_show(labels)}")
    if len(labels) > MAX_OUTPUTS:
        raise _Bad("labels", f"{len(labels)} labels, more than {MAX_OUTPUTS}")
    for i, label in enumerate(labels):
        if not isinstance(label, str):
            raise _Bad(f"labels[{i}]", f"expected text, got {_show(label)}")
    return labels


def _output_count(cfg: dict[str, Any], labels: list[str]) -> int:
    from .tasks import TASK_NAMES, get_task

    task = cfg["task"]
    if task not in TASK_NAMES:
        raise _Bad("task", f"{_show(task)} is not one of {', '.join(TASK_NAMES)}")
    extra = cfg.get("task_extra")
    if extra is not None:
        _dict(extra, "task_extra")
    try:
        return get_task(task, extra).output_count(labels)
    except Exception as e:  # noqa: BLE001 - a task's own reading of its saved settings
        raise _Bad("task_extra", f"not usable ({type(e).__name__}: {e})") from None


_PRE_CHOICES = {
    "color": ("gray", "rgb"),
    "resize": ("auto", "linear", "area"),
    "fit": ("stretch", "keep_aspect"),
    "pad": ("edge",),
}


def _preprocess(pre: dict[str, Any]) -> dict[str, Any]:
    channels = _int(pre, "channels", "preprocess.channels", 1, 3)
    if channels == 2:
        raise _Bad("preprocess.channels", "expected 1 or 3, got 2")
    _int(pre, "height", "preprocess.height", 1, MAX_SIDE)
    _int(pre, "width", "preprocess.width", 1, MAX_SIDE, optional=True)
    _int(pre, "max_width", "preprocess.max_width", 1, 1 << 20, optional=True)
    if "color" not in pre:
        raise _Bad("preprocess.color", "missing")
    for key, choices in _PRE_CHOICES.items():
        if key in pre and pre[key] not in choices:
            raise _Bad(f"preprocess.{key}", f"expected one of {', '.join(choices)}, got {_show(pre[key])}")
    if "scale" in pre:
        _num(pre["scale"], "preprocess.scale", 1e-12, 1e12)
    for key, lo in (("mean", -1e12), ("std", 1e-12)):
        values = pre.get(key, [0.0] if key == "mean" else [1.0])
        if not isinstance(values, list) or len(values) != channels:
            raise _Bad(f"preprocess.{key}", f"expected {channels} number(s), got {_show(values)}")
        for i, v in enumerate(values):
            _num(v, f"preprocess.{key}[{i}]", lo, 1e12)
    from .preprocess import Preprocess

    try:
        Preprocess.from_dict(pre)
    except (TypeError, ValueError) as e:
        raise _Bad("preprocess", str(e)) from None
    return pre


def _model(model: dict[str, Any], pre: dict[str, Any], outputs: int) -> None:
    channels = _int(model, "in_channels", "model.in_channels", 1, 3)
    if channels != pre["channels"]:
        raise _Bad("model.in_channels", f"{channels}, but preprocess.channels is {pre['channels']}")
    n = _int(model, "num_outputs", "model.num_outputs", 1, MAX_OUTPUTS)
    if n != outputs:
        raise _Bad(
            "labels", f"{outputs} model outputs for these labels, but the model has {n} (model.num_outputs); refused"
        )
    size = model.get("image_size")
    if not isinstance(size, list) or len(size) != 2:
        raise _Bad("model.image_size", f"expected [height, width], got {_show(size)}")
    _int({"h": size[0]}, "h", "model.image_size[0]", 1, MAX_SIDE)
    _int({"w": size[1]}, "w", "model.image_size[1]", 1, MAX_SIDE, optional=True)
    if size[0] != pre["height"] or size[1] != pre.get("width"):
        raise _Bad("model.image_size", f"{size} does not match preprocess height/width")


def check_resume_config(stored: dict[str, Any], path: str | os.PathLike[str]) -> Any:
    """The :class:`~explorer.engine.RunConfig` of a stored run, errors naming ``path``."""
    from .config import ConfigError, RunConfig

    try:
        cfg = RunConfig.from_dict({k: stored[k] for k in ("arch", "params", "data", "train") if k in stored})
    except ConfigError as e:
        raise RunFolderError(f"{path}: {e}") from None
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        raise RunFolderError(f"{path}: unusable run settings ({e})") from None
    return cfg


# -- checkpoint metadata ---------------------------------------------------------------------


def check_checkpoint_meta(meta: Any, path: str | os.PathLike[str]) -> None:
    """Raises RunFolderError ``"<path>: <field>: <why>"`` for the first bad field."""
    try:
        _check_meta(_dict(meta, "meta"))
    except _Bad as e:
        raise RunFolderError(f"{path}: {e}") from None


def _check_meta(meta: dict[str, Any]) -> None:
    for key in ("state", "base_lrs", "optimizer"):
        if key not in meta:
            raise _Bad(key, "missing")
    _state(_dict(meta["state"], "state"))
    lrs = meta["base_lrs"]
    if not isinstance(lrs, list) or not lrs:
        raise _Bad("base_lrs", f"expected a list of learning rates, got {_show(lrs)}")
    for i, lr in enumerate(lrs):
        _num(lr, f"base_lrs[{i}]", 0.0, 1e3)
    if "epochs" in meta:
        _int(meta, "epochs", "epochs", 0, 10**9)
    if "world_size" in meta:  # the number of processes that trained it (distributed runs)
        _int(meta, "world_size", "world_size", 1, 10**6)
    _optimizer(_dict(meta["optimizer"], "optimizer"))


def _state(state: dict[str, Any]) -> None:
    from .session import Counters

    known = set(Counters.__dataclass_fields__)
    for key in state:
        if key not in known:
            raise _Bad(f"state.{key}", f"unknown counter; known: {', '.join(sorted(known))}")
    for key in _COUNTERS & state.keys():
        _int(state, key, f"state.{key}", 0, 2**62)
    if "best_val_loss" in state:
        _num(state["best_val_loss"], "state.best_val_loss", allow_inf=True)
    if "train_seconds" in state:
        _num(state["train_seconds"], "state.train_seconds", 0.0, 1e12)
    history = state.get("history", [])
    if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
        raise _Bad("state.history", "expected a list of epoch records")


_GROUP_NUMBERS = {"lr": (0.0, 1e3), "weight_decay": (0.0, 1e3), "momentum": (0.0, 1.0), "eps": (0.0, 1.0)}
_GROUP_NUMBERS.update({"dampening": (0.0, 1.0), "initial_lr": (0.0, 1e3)})


def _optimizer(opt: dict[str, Any]) -> None:
    groups = opt.get("param_groups")
    if not isinstance(groups, list) or not groups:
        raise _Bad("optimizer.param_groups", f"expected a list of groups, got {_show(groups)}")
    for g, group in enumerate(groups):
        field = f"optimizer.param_groups[{g}]"
        group = _dict(group, field)
        ids = group.get("params")
        if not isinstance(ids, list) or not all(_is_int(i) and i >= 0 for i in ids):
            raise _Bad(f"{field}.params", f"expected parameter numbers, got {_show(ids)}")
        for key, (lo, hi) in _GROUP_NUMBERS.items():
            if key in group:
                _num(group[key], f"{field}.{key}", lo, hi)
        betas = group.get("betas", [0.9, 0.999])
        if not isinstance(betas, list) or len(betas) != 2:
            raise _Bad(f"{field}.betas", f"expected two numbers, got {_show(betas)}")
        for i, b in enumerate(betas):
            _num(b, f"{field}.betas[{i}]", 0.0, 1.0)
    if "plain" not in opt:
        raise _Bad("optimizer.plain", "missing")
    plain = _dict(opt["plain"], "optimizer.plain")
    for pid, entries in plain.items():
        if not pid.isdigit():
            raise _Bad(f"optimizer.plain.{pid}", "expected a parameter number")
        for key, value in _dict(entries, f"optimizer.plain.{pid}").items():
            _num(value, f"optimizer.plain.{pid}.{key}", -1e30, 1e30)


def _kind(v: Any) -> str:
    if v is None or isinstance(v, bool):
        return "true/false"
    if _is_num(v):
        return "a number"
    if isinstance(v, list | tuple):
        return "a list"
    return type(v).__name__


def check_param_groups(saved: Any, fresh: list[dict[str, Any]], path: str | os.PathLike[str]) -> None:
    """The checkpoint's optimizer groups against those of the optimizer the run builds: same
    count, same keys, same kinds of values, same number of parameters."""
    if not isinstance(saved, list) or len(saved) != len(fresh):
        n = len(saved) if isinstance(saved, list) else "no"
        raise RunFolderError(f"{path}: optimizer.param_groups: {n} groups for an optimizer of {len(fresh)}")
    for i, (g, f) in enumerate(zip(saved, fresh)):
        field = f"optimizer.param_groups[{i}]"
        missing = sorted(set(f) - set(g))
        if missing:
            raise RunFolderError(f"{path}: {field}: missing {', '.join(missing)}")
        for key, value in f.items():
            if key == "params":
                if len(g[key]) != len(value):
                    raise RunFolderError(
                        f"{path}: {field}.params: {len(g[key])} parameters, the model has {len(value)}"
                    )
            elif _kind(g[key]) != _kind(value):
                raise RunFolderError(f"{path}: {field}.{key}: expected {_kind(value)}, got {_show(g[key])}")


def check_weights(config: dict[str, Any], state: dict[str, Any], config_path: Any, weights_path: Any) -> dict[str, Any]:
    """``state`` (the weights file's tensors) checked against the model ``config`` describes,
    built on the meta device (no memory): the first missing, unexpected or misshapen tensor is
    named with both files. Returns ``state``."""
    import torch

    from models import ParamError, build_model

    spec = config["model"]
    try:
        with torch.device("meta"):
            model = build_model(
                config["arch"],
                in_channels=spec["in_channels"],
                num_outputs=spec["num_outputs"],
                image_size=tuple(spec["image_size"]),
                **{k: v for k, v in config["params"].items() if k != "weights"},
            )
    except ParamError as e:
        raise RunFolderError(f"{config_path}: params.{e.param}: cannot rebuild the model ({e.message})") from None
    except Exception:  # noqa: BLE001 - a family the meta device cannot build: loading will tell
        return state
    from .weights import state_problems

    problem = state_problems(model, state)
    if problem:
        raise RunFolderError(
            f"{weights_path}: the weights do not fit the model {config_path} describes (arch, params, model); {problem}"
        )
    return state
