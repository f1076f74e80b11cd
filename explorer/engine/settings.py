"""Training, data and augmentation settings, each declared once where its config field is made.

A config dataclass declares each field with :func:`setting` (type from the annotation; default,
range, choices and help in the field's metadata), in the shape of the model parameter specs of
``models/_spec.py``. Everything else is derived from :func:`describe`:

- the CLI's ``train`` flags (``explorer/cli/flags.py``: names, types, choices, help),
- validation (:func:`check`: one place that checks ranges and choices and names the setting,
  ``ConfigError("train.lr", ...)``),
- the app's training form (``explorer/ui/train_settings.py``: widget ranges and choices),
- the README's options table (:func:`markdown_table`, checked by a test).

Example::

    @dataclass
    class TrainConfig:
        lr: float = setting(1e-3, help="Peak learning rate.", min=1e-8, max=10.0, flag=True)

``explorer.data.AugmentConfig`` declares its fields the same way (``min``/``max``/``help``
metadata), so :func:`describe` reads it too.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from models import parse_bool

__all__ = [
    "ConfigError",
    "Setting",
    "check",
    "check_all",
    "coerce",
    "describe",
    "describe_range",
    "format_default",
    "markdown_table",
    "setting",
]

_MISSING: Any = dataclasses.MISSING


class ConfigError(ValueError):
    """A bad configuration value; ``key`` is the dotted path of the offending entry."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(f"{key}: {message}")


def setting(
    default: Any = _MISSING,
    *,
    help: str,
    min: float | None = None,
    max: float | None = None,
    choices: tuple[Any, ...] | None = None,
    label: str | None = None,
    flag: bool | str = False,
    metavar: str | None = None,
    unit: str = "",
    step: float | None = None,
    zero_is_off: bool = False,
    log_scale: bool = False,
    default_factory: Callable[[], Any] | None = None,
) -> Any:
    """A dataclass field carrying its declaration.

    Args:
        default: The default value (or ``default_factory`` for lists).
        help: One sentence for ``--help``, tooltips and the README.
        min: Smallest valid value (inclusive); for lists, of each element.
        max: Largest valid value (inclusive).
        choices: The only valid values.
        label: The form's row label; default: the name, capitalised.
        flag: A ``train`` CLI flag: ``True`` derives ``--name-with-dashes`` (``--no-name`` for a
            bool that defaults to true), a string names the flag; ``False``: config/app only.
        metavar: The flag's value placeholder in ``--help``.
        unit: Shown after the value (form suffix, README).
        step: The natural increment of a number (form stepping and decimals).
        zero_is_off: 0 switches the feature off (the form shows "off").
        log_scale: The value spans decades (the form steps 1-2-3-5 per decade).
        default_factory: For mutable defaults.
    """
    md = {
        "help": help,
        "min": min,
        "max": max,
        "choices": choices,
        "label": label,
        "flag": flag,
        "metavar": metavar,
        "unit": unit,
        "step": step,
        "zero_is_off": zero_is_off,
        "log_scale": log_scale,
    }
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=md)
    return dataclasses.field(default=default, metadata=md)


@dataclass(frozen=True)
class Setting:
    """Plain description of one declared setting (JSON-friendly apart from ``default``)."""

    key: str  # dotted path in config.json: "train.lr"
    name: str  # the config attribute: "lr"
    kind: str  # "int" | "float" | "bool" | "str" | "str_list"
    default: Any
    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    optional: bool = False  # None is valid (e.g. "derived from the data")
    label: str = ""
    flag: str | None = None  # "--lr"; None = not a CLI flag
    metavar: str | None = None
    unit: str = ""
    step: float | None = None
    zero_is_off: bool = False
    log_scale: bool = False


_KINDS = {bool: "bool", int: "int", float: "float", str: "str"}


def _kind_of(tp: Any) -> tuple[str, bool]:
    args = typing.get_args(tp)
    optional = type(None) in args
    if optional:
        tp = next(a for a in args if a is not type(None))
    if typing.get_origin(tp) is list:
        return "str_list", optional
    if tp not in _KINDS:
        raise TypeError(f"unsupported setting type {tp!r}")
    return _KINDS[tp], optional


def _flag_name(name: str, kind: str, default: Any, flag: bool | str) -> str | None:
    if isinstance(flag, str):
        return flag
    if not flag:
        return None
    dashed = name.replace("_", "-")
    return f"--no-{dashed}" if kind == "bool" and default is True else f"--{dashed}"


def describe(cls: type, prefix: str) -> list[Setting]:
    """The declared settings of config dataclass ``cls``, keys prefixed ``prefix.`` (nested groups
    and undeclared fields are skipped)."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        md = f.metadata
        if "help" not in md or dataclasses.is_dataclass(hints[f.name]):
            continue
        kind, optional = _kind_of(hints[f.name])
        default = f.default_factory() if f.default is _MISSING else f.default  # type: ignore[misc]
        out.append(
            Setting(
                key=f"{prefix}.{f.name}",
                name=f.name,
                kind=kind,
                default=default,
                help=md["help"],
                min=md.get("min"),
                max=md.get("max"),
                choices=md.get("choices"),
                optional=optional,
                label=md.get("label") or f.name.replace("_", " ").capitalize(),
                flag=_flag_name(f.name, kind, default, md.get("flag", False)),
                metavar=md.get("metavar"),
                unit=md.get("unit", ""),
                step=md.get("step"),
                zero_is_off=md.get("zero_is_off", False),
                log_scale=md.get("log_scale", False),
            )
        )
    return out


# -- values ----------------------------------------------------------------------------------------


def coerce(s: Setting, raw: Any) -> Any:
    """``raw`` (a native value or the text of a flag / JSON) as the setting's type.

    Raises:
        ConfigError: naming the setting when ``raw`` cannot be read as its type.
    """
    if raw is None and s.optional:
        return None
    try:
        if s.kind == "bool":
            return parse_bool(raw)
        if s.kind == "str_list":
            if not isinstance(raw, (list, tuple)):
                raise ValueError
            return [str(v) for v in raw]
        if raw is None or isinstance(raw, bool):
            raise ValueError
        if s.kind == "int":
            if isinstance(raw, float) and not raw.is_integer():
                raise ValueError
            return int(raw)
        if s.kind == "float":
            return float(raw)
        return str(raw)
    except (TypeError, ValueError):
        expected = {"str_list": "a list", "bool": "true/false"}.get(s.kind, s.kind)
        raise ConfigError(s.key, f"cannot read {raw!r} as {expected}") from None


def check(s: Setting, value: Any) -> None:
    """The one place where a value is checked against its declared range and choices.

    Raises:
        ConfigError: naming the setting and what is valid.
    """
    if value is None:
        if s.optional:
            return
        raise ConfigError(s.key, "must not be null")
    if s.kind == "str_list":
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(s.key, "must be a list of non-empty names")
        return
    if s.kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(s.key, f"must be true or false, got {value!r}")
        return
    if s.kind in ("int", "float") and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ConfigError(s.key, f"must be a number, got {value!r}")
    if s.choices is not None and value not in s.choices:
        raise ConfigError(s.key, f"{value!r} is not one of {', '.join(map(str, s.choices))}")
    if s.kind == "str":
        if not isinstance(value, str):
            raise ConfigError(s.key, f"must be text, got {value!r}")
        return
    lo = -math.inf if s.min is None else s.min
    hi = math.inf if s.max is None else s.max
    if not lo <= value <= hi:  # also refuses NaN
        raise ConfigError(s.key, f"{value} is outside the valid range [{_fmt(s.min)}, {_fmt(s.max)}]")


def check_all(obj: Any, settings: Iterable[Setting]) -> None:
    """:func:`check` every declared setting of ``obj`` (a config dataclass instance)."""
    for s in settings:
        check(s, getattr(obj, s.name))


# -- text ------------------------------------------------------------------------------------------


def _fmt(v: Any) -> str:
    if v is None:
        return "..."
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def describe_range(s: Setting) -> str:
    """``"1e-08 to 10"``, ``"one of adam, adamw, sgd"``, ``"at least 1"`` or ``""``."""
    if s.choices is not None:
        return "one of " + ", ".join(map(str, s.choices))
    if s.kind == "bool":
        return "true or false"
    if s.min is not None and s.max is not None:
        return f"{_fmt(s.min)} to {_fmt(s.max)}"
    if s.min is not None:
        return f"at least {_fmt(s.min)}"
    if s.max is not None:
        return f"at most {_fmt(s.max)}"
    return ""


def format_default(s: Setting) -> str:
    if s.default is None:
        return "from the data"
    if isinstance(s.default, bool):
        return "true" if s.default else "false"
    if isinstance(s.default, list):
        return "none" if not s.default else ", ".join(s.default)
    if s.default == "":
        return "empty"
    return _fmt(s.default)


def markdown_table(settings: Iterable[Setting], cli: Mapping[str, str] | None = None) -> str:
    """The README's options table: one row per setting (config key, CLI flag, default, valid, help).

    Args:
        settings: The rows, in order.
        cli: The CLI column for settings set through something other than their own flag
            (``{"data.height": "--image-size HxW"}``).
    """
    cli = cli or {}
    rows = ["| setting | CLI | default | valid | meaning |", "|---|---|---|---|---|"]
    for s in settings:
        flag = cli.get(s.key) or (s.flag and s.flag + (f" {s.metavar}" if s.metavar else ""))
        shown = f"`{flag}`" if flag else ""
        unit = f" {s.unit}" if s.unit else ""
        rows.append(
            f"| `{s.key}` | {shown} | {format_default(s)}{unit} | {describe_range(s)} | {s.help.replace('|', '/')} |"
        )
    return "\n".join(rows) + "\n"
