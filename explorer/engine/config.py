"""Run configuration: plain dataclasses with a JSON round trip and validation.

A :class:`RunConfig` says everything a run needs: which data, which model, how to
train. ``RunConfig.from_dict(json.load(f))`` refuses unknown keys and bad values
with a :class:`ConfigError` that names the key path (``train.lr``), so a typo in a
hand-edited config never trains silently with defaults.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from explorer.data import DEFAULT_MAX_PIXELS, AugmentConfig

__all__ = [
    "ConfigError",
    "DataConfig",
    "RunConfig",
    "TrainConfig",
    "OPTIMIZERS",
    "SCHEDULES",
    "DEVICES",
    "TASKS",
]

TASKS = ("auto", "classify", "sequence", "caption")
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("none", "step", "cosine", "onecycle")
DEVICES = ("auto", "cpu", "cuda", "mps")
COLORS = ("auto", "gray", "rgb")
RESIZES = ("auto", "linear", "area")

T = TypeVar("T")


class ConfigError(ValueError):
    """A bad configuration value; ``key`` is the dotted path of the offending entry."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(f"{key}: {message}")


@dataclass
class DataConfig:
    source: str = ""  # folder, manifest (.csv) or "sample:NAME"
    task: str = "auto"  # auto = detected from the data layout
    height: int | None = None  # model input height; None = derived from the images
    width: int | None = None  # model input width; None = derived from the images
    color: str = "auto"  # auto = gray when every image is gray, else rgb
    resize: str = "auto"  # auto = area when shrinking, linear when enlarging
    val_fraction: float = 0.2  # stratified, seeded hold-out for validation
    max_pixels: int = DEFAULT_MAX_PIXELS  # files claiming more pixels are refused unread
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    regression_columns: list[str] = field(default_factory=list)  # numeric manifest columns predicted next to the class
    regression_weight: float = 1.0  # weight of the regression loss against the classification loss

    def validate(self) -> None:
        _choice("data.task", self.task, TASKS)
        _choice("data.color", self.color, COLORS)
        _choice("data.resize", self.resize, RESIZES)
        for key in ("height", "width"):
            v = getattr(self, key)
            if v is not None and not 4 <= v <= 4096:
                raise ConfigError(f"data.{key}", f"{v} is outside the valid range [4, 4096]")
        if not 0.0 <= self.val_fraction < 0.9:
            raise ConfigError("data.val_fraction", f"{self.val_fraction} is outside the valid range [0, 0.9)")
        if not isinstance(self.regression_columns, list) or not all(
            isinstance(c, str) and c for c in self.regression_columns
        ):
            raise ConfigError("data.regression_columns", "must be a list of column names")
        _range("data.regression_weight", self.regression_weight, 0.0, 1000.0)
        if self.max_pixels < 1:
            raise ConfigError("data.max_pixels", "must be positive")
        try:
            self.augment.validate()
        except ValueError as e:
            raise ConfigError("data.augment", str(e)) from None


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-3  # peak learning rate (the one-cycle maximum)
    optimizer: str = "adam"  # adam | adamw | sgd (with momentum)
    momentum: float = 0.9  # sgd only
    weight_decay: float = 0.0
    schedule: str = "onecycle"  # none | step | cosine | onecycle
    step_epochs: int = 10  # step schedule: decay every N epochs
    step_gamma: float = 0.1  # step schedule: multiply the LR by this
    grad_clip: float = 0.0  # max global gradient norm; 0 = off
    early_stopping: int = 0  # stop after N epochs without a better validation loss; 0 = off
    restore_best: bool = True  # keep the weights of the best validation epoch
    seed: int = 0
    device: str = "auto"  # auto = cuda, else mps, else cpu
    amp: bool = True  # mixed precision, CUDA only
    probe_interval: float = 0.0  # seconds between probe snapshots; 0 = no probes

    def validate(self) -> None:
        _range("train.epochs", self.epochs, 1, 100_000)
        _range("train.batch_size", self.batch_size, 1, 65_536)
        _range("train.lr", self.lr, 1e-8, 10.0)
        _choice("train.optimizer", self.optimizer, OPTIMIZERS)
        _range("train.momentum", self.momentum, 0.0, 0.999)
        _range("train.weight_decay", self.weight_decay, 0.0, 1.0)
        _choice("train.schedule", self.schedule, SCHEDULES)
        _range("train.step_epochs", self.step_epochs, 1, 100_000)
        _range("train.step_gamma", self.step_gamma, 1e-6, 1.0)
        _range("train.grad_clip", self.grad_clip, 0.0, 1e6)
        _range("train.early_stopping", self.early_stopping, 0, 100_000)
        _choice("train.device", self.device, DEVICES)
        _range("train.probe_interval", self.probe_interval, 0.0, 3600.0)


@dataclass
class RunConfig:
    arch: str = "cnn"
    params: dict[str, Any] = field(default_factory=dict)  # family parameters (see `archs`)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> None:
        if not isinstance(self.params, dict):
            raise ConfigError("params", "must be a mapping of parameter names to values")
        self.data.validate()
        self.train.validate()

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunConfig:
        cfg = _from_dict(cls, d, "")
        cfg.validate()
        return cfg


# -- helpers ---------------------------------------------------------------------------


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(key, f"{value!r} is not one of {', '.join(choices)}")


def _range(key: str, value: float, lo: float, hi: float) -> None:
    if not lo <= value <= hi:
        raise ConfigError(key, f"{value} is outside the valid range [{lo}, {hi}]")


def _to_dict(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple):
        return [_to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _to_dict(v) for k, v in obj.items()}
    return obj


def _from_dict(cls: type[T], d: Any, prefix: str) -> T:
    if hasattr(cls, "from_dict") and prefix and not issubclass(cls, RunConfig):
        try:
            return cls.from_dict(d)  # type: ignore[attr-defined]
        except ValueError as e:
            raise ConfigError(prefix.rstrip("."), str(e)) from None
    if not isinstance(d, Mapping):
        raise ConfigError(prefix.rstrip(".") or "config", f"expected an object, got {type(d).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in d.items():
        path = f"{prefix}{key}"
        if key not in names:
            raise ConfigError(path, f"unknown key; valid keys: {', '.join(sorted(names))}")
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = _from_dict(tp, value, path + ".")
        else:
            kwargs[key] = _coerce(path, tp, value)
    return cls(**kwargs)


def _coerce(path: str, tp: Any, value: Any) -> Any:
    args = typing.get_args(tp)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), tp) if optional else tp
    if value is None:
        if optional:
            return None
        raise ConfigError(path, "must not be null")
    if typing.get_origin(base) is list or base is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(path, "must be a list")
        return [str(v) for v in value]
    if typing.get_origin(base) is dict or base is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(path, "must be an object")
        return dict(value)
    try:
        if base is bool:
            if isinstance(value, bool):
                return value
            s = str(value).strip().lower()
            if s in ("1", "true", "yes", "on"):
                return True
            if s in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if base is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if base is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if base is str:
            return str(value)
    except (TypeError, ValueError):
        raise ConfigError(path, f"cannot read {value!r} as {getattr(base, '__name__', base)}") from None
    return value
