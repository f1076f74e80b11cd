"""Run configuration: plain dataclasses with a JSON round trip and validation.

A :class:`RunConfig` says everything a run needs: which data, which model, how to
train. Every training and data field is declared once with
:func:`~explorer.engine.settings.setting` (type, default, range, choices, help); the CLI
flags, validation, the app's form and the README table are derived from those
declarations (see :mod:`explorer.engine.settings`). ``RunConfig.from_dict(json.load(f))``
refuses unknown keys and bad values with a :class:`ConfigError` that names the key path
(``train.lr``), so a typo in a hand-edited config never trains silently with defaults.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from explorer.data import DEFAULT_MAX_PIXELS, AugmentConfig

from .settings import ConfigError, Setting, check, check_all, coerce, describe, setting

__all__ = [
    "ConfigError",
    "DataConfig",
    "RunConfig",
    "TrainConfig",
    "OPTIMIZERS",
    "SCHEDULES",
    "DEVICES",
    "TASKS",
    "TRAIN_SETTINGS",
    "DATA_SETTINGS",
    "AUGMENT_SETTINGS",
    "all_settings",
    "augment_from_dict",
]

TASKS = ("auto", "classify", "sequence", "caption")
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("none", "step", "cosine", "onecycle")
DEVICES = ("auto", "cpu", "cuda", "mps")
COLORS = ("auto", "gray", "rgb")
RESIZES = ("auto", "linear", "area")

T = TypeVar("T")


@dataclass
class DataConfig:
    source: str = setting("", help="Folder, manifest (.csv) or sample:NAME.")
    task: str = setting("auto", help="What to learn; auto = detected from the data layout.", choices=TASKS, flag=True)
    height: int | None = setting(None, help="Model input height; empty = derived from the images.", min=4, max=4096)
    width: int | None = setting(None, help="Model input width; empty = derived from the images.", min=4, max=4096)
    color: str = setting(
        "auto", help="Input colour; auto = gray when every image is gray, else rgb.", choices=COLORS, flag=True
    )
    resize: str = setting(
        "auto", help="Resampling; auto = area when shrinking, linear when enlarging.", choices=RESIZES
    )
    val_fraction: float = setting(
        0.2,
        help="Share of each class held out to measure the model on images it never trained on (seeded, stratified).",
        min=0.0,
        max=0.9,
        step=0.05,
        label="Validation split",
        flag=True,
    )
    max_pixels: int = setting(
        DEFAULT_MAX_PIXELS, help="Files claiming more pixels than this are refused unread.", min=1
    )
    cache: bool = setting(
        True,
        help="Keep decoded, resized images in a memory-mapped cache on disk, so a later run on the same "
        "files and settings decodes nothing.",
        label="Decoded-image cache",
        flag=True,
    )
    cache_dir: str = setting(
        "",
        help="Folder of the decoded-image cache; empty = $MODEL_EXPLORER_CACHE/decoded, else "
        "~/.cache/model-explorer/decoded.",
        flag=True,
        metavar="DIR",
    )
    memory_budget: int = setting(
        0,
        help="RAM the run may take beyond the libraries (decoded images, bookkeeping, training steps); "
        "a data set larger than its share trains from the cache's memory map instead of a copy in memory. "
        "0 = half of the memory available when the run starts.",
        min=0,
        max=1 << 30,
        unit="MiB",
        flag=True,
        metavar="MIB",
    )
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    regression_columns: list[str] = setting(
        help="Multi-task: numeric manifest columns predicted next to the class.",
        default_factory=list,
        flag="--regress",
        metavar="COLUMN",
    )
    regression_weight: float = setting(
        1.0, help="Weight of the regression loss against the classification loss.", min=0.0, max=1000.0, flag=True
    )

    def validate(self) -> None:
        check_all(self, DATA_SETTINGS)
        check_all(self.augment, AUGMENT_SETTINGS)


@dataclass
class TrainConfig:
    epochs: int = setting(20, help="Passes over the training images.", min=1, max=100_000, flag=True)
    batch_size: int = setting(
        32,
        help="Images per step. Smaller uses less memory; larger is faster per image.",
        min=1,
        max=65_536,
        flag=True,
    )
    lr: float = setting(
        1e-3,
        help="Peak learning rate (the one-cycle maximum). 0.001 suits adam.",
        min=1e-8,
        max=10.0,
        label="Learning rate",
        log_scale=True,
        flag=True,
    )
    optimizer: str = setting(
        "adam",
        help="adam: a safe default. adamw: adam with proper weight decay. sgd: with momentum.",
        choices=OPTIMIZERS,
        flag=True,
    )
    momentum: float = setting(0.9, help="SGD momentum (sgd only).", min=0.0, max=0.999, step=0.01)
    weight_decay: float = setting(
        0.0, help="L2 penalty on the weights; 0 = none.", min=0.0, max=1.0, step=0.0005, flag=True
    )
    schedule: str = setting(
        "onecycle",
        help="How the learning rate changes: one-cycle warms up then decays, step divides it every "
        "few epochs, cosine decays smoothly, none keeps it constant.",
        choices=SCHEDULES,
        flag=True,
    )
    step_epochs: int = setting(10, help="Step schedule: decay every N epochs.", min=1, max=100_000)
    step_gamma: float = setting(0.1, help="Step schedule: multiply the learning rate by this.", min=1e-6, max=1.0)
    grad_clip: float = setting(
        0.0, help="Max global gradient norm; 0 = off.", min=0.0, max=1e6, zero_is_off=True, flag=True
    )
    early_stopping: int = setting(
        0,
        help="Stop after this many epochs without a better validation loss; 0 = off.",
        min=0,
        max=100_000,
        zero_is_off=True,
        flag=True,
        metavar="PATIENCE",
    )
    restore_best: bool = setting(True, help="Keep the weights of the best validation epoch.")
    seed: int = setting(
        0,
        help="Same seed, same data split and same initial weights: runs you can compare.",
        min=0,
        max=2**31 - 1,
        flag=True,
    )
    device: str = setting("auto", help="Where to train; auto = cuda, else mps, else cpu.", choices=DEVICES, flag=True)
    amp: bool = setting(True, help="Mixed precision on CUDA.", flag=True)
    probe_interval: float = setting(
        0.0,
        help="Seconds between snapshots of the model's insides during training; 0 = off.",
        min=0.0,
        max=3600.0,
        step=0.5,
        unit="s",
        zero_is_off=True,
        label="Live view every",
    )

    def validate(self) -> None:
        check_all(self, TRAIN_SETTINGS)


TRAIN_SETTINGS: list[Setting] = describe(TrainConfig, "train")
DATA_SETTINGS: list[Setting] = describe(DataConfig, "data")
AUGMENT_SETTINGS: list[Setting] = describe(AugmentConfig, "data.augment")


def all_settings() -> dict[str, Setting]:
    """Every declared setting by its dotted key (``"train.lr"``), in declaration order."""
    return {s.key: s for s in (*TRAIN_SETTINGS, *DATA_SETTINGS, *AUGMENT_SETTINGS)}


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


def augment_from_dict(d: Mapping[str, Any]) -> AugmentConfig:
    """An :class:`AugmentConfig` from native values or words (``{"hflip": "yes"}``), read
    and range-checked through the declarations.

    Raises:
        ConfigError: naming ``data.augment`` or the setting.
    """
    return _from_dict(AugmentConfig, d, "data.augment.")


# -- helpers ---------------------------------------------------------------------------


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
        if not isinstance(d, Mapping):
            raise ConfigError(prefix.rstrip("."), f"expected an object, got {type(d).__name__}")
        if isinstance(d, Mapping):  # declared values first, so an error names the setting
            declared = {s.name: s for s in describe(cls, prefix.rstrip("."))}
            d = {k: coerce(declared[k], v) if k in declared else v for k, v in d.items()}
            for key, value in d.items():
                if key in declared:
                    check(declared[key], value)
        try:
            return cls.from_dict(d)  # type: ignore[attr-defined]
        except ValueError as e:
            raise ConfigError(prefix.rstrip("."), str(e)) from None
    if not isinstance(d, Mapping):
        raise ConfigError(prefix.rstrip(".") or "config", f"expected an object, got {type(d).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    declared = {s.name: s for s in describe(cls, prefix.rstrip("."))}
    kwargs: dict[str, Any] = {}
    for key, value in d.items():
        path = f"{prefix}{key}"
        if key not in names:
            raise ConfigError(path, f"unknown key; valid keys: {', '.join(sorted(names))}")
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = _from_dict(tp, value, path + ".")
        elif key in declared:
            kwargs[key] = coerce(declared[key], value)
        else:
            kwargs[key] = _plain(path, tp, value)
    return cls(**kwargs)


def _plain(path: str, tp: Any, value: Any) -> Any:
    """The run's own fields (``arch``, ``params``), which are not settings."""
    if typing.get_origin(tp) is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(path, "must be an object")
        return dict(value)
    if value is None:
        raise ConfigError(path, "must not be null")
    return str(value)
