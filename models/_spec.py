"""Typed, documented parameter specs for model families.

Every family declares a dataclass derived from :class:`Params`. Its fields carry
their range, choices and help text in ``dataclasses.field`` metadata (use
:func:`param`), and the CLI's ``--set KEY=VALUE``, ``archs --json`` and the UI's
generated form are all derived from :meth:`Params.describe`.

Example::

    @dataclass
    class CNNParams(Params):
        channels: tuple[int, ...] = param((32, 64), help="Output channels per conv block.", min=1, max=1024)
        dropout: float = param(0.25, help="Dropout before the head.", min=0.0, max=0.9)
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

__all__ = ["FALSE_WORDS", "TRUE_WORDS", "ParamError", "ParamInfo", "Params", "param", "parse_bool"]

P = TypeVar("P", bound="Params")

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def parse_bool(value: Any) -> bool:
    """The project's one reader of yes/no: a bool, 0/1, or a word of :data:`TRUE_WORDS` /
    :data:`FALSE_WORDS` (case and surrounding spaces ignored). It lives in the lowest layer so
    that model parameters, training settings, the CLI and the app's forms all read alike.

    Raises:
        ValueError: for anything else (``"maybe"``, ``2``, ``None``).
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in TRUE_WORDS:
            return True
        if text in FALSE_WORDS:
            return False
    raise ValueError(f"cannot read {value!r} as true/false")


class ParamError(ValueError):
    """An invalid model parameter. ``param`` names it, the message says what is valid."""

    def __init__(self, param: str, message: str) -> None:
        self.param = param
        self.message = message
        super().__init__(f"parameter '{param}': {message}")


def param(
    default: Any,
    *,
    help: str,
    min: float | None = None,
    max: float | None = None,
    choices: tuple[Any, ...] | None = None,
) -> Any:
    """A dataclass field with the metadata the CLI and the UI are generated from.

    For tuple fields, ``min``/``max`` bound each element.
    """
    if isinstance(default, list):
        default = tuple(default)
    return dataclasses.field(
        default=default,
        metadata={"help": help, "min": min, "max": max, "choices": choices},
    )


@dataclass(frozen=True)
class ParamInfo:
    """Plain description of one parameter (JSON-friendly)."""

    name: str
    kind: str  # "int" | "float" | "bool" | "str" | "int_list"
    default: Any
    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if isinstance(d["default"], tuple):
            d["default"] = list(d["default"])
        if d["choices"] is not None:
            d["choices"] = list(d["choices"])
        return d


def _kind_of(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (tuple, list):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        if args and args[0] is int:
            return "int_list"
        raise TypeError(f"unsupported list element type {args}")
    if tp is bool:
        return "bool"
    if tp is int:
        return "int"
    if tp is float:
        return "float"
    if tp is str:
        return "str"
    raise TypeError(f"unsupported parameter type {tp!r}")


@dataclass
class Params:
    """Base class of every family's parameter dataclass.

    Subclasses add fields with :func:`param` and may override :meth:`check` for
    rules that involve several fields or the input shape.
    """

    family: ClassVar[str] = ""

    # -- description -----------------------------------------------------------------
    @classmethod
    def describe(cls) -> list[ParamInfo]:
        hints = typing.get_type_hints(cls)
        out = []
        for f in dataclasses.fields(cls):
            md = f.metadata
            out.append(
                ParamInfo(
                    name=f.name,
                    kind=_kind_of(hints[f.name]),
                    default=f.default,
                    help=md.get("help", ""),
                    min=md.get("min"),
                    max=md.get("max"),
                    choices=md.get("choices"),
                )
            )
        return out

    # -- construction ----------------------------------------------------------------
    @classmethod
    def from_dict(cls: type[P], values: Mapping[str, Any]) -> P:
        """Build from a mapping of native values or strings (as given to ``--set``).

        Raises:
            ParamError: unknown name, unparsable value, out of range, bad choice.
        """
        infos = {i.name: i for i in cls.describe()}
        kwargs: dict[str, Any] = {}
        for key, raw in values.items():
            if key not in infos:
                valid = ", ".join(sorted(infos))
                raise ParamError(key, f"unknown parameter for {cls.family or cls.__name__}; valid: {valid}")
            kwargs[key] = _coerce(infos[key], raw)
        obj = cls(**kwargs)
        obj.validate()
        return obj

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    # -- validation ------------------------------------------------------------------
    def validate(self) -> None:
        """Check every field against its declared range and choices."""
        for info in self.describe():
            value = getattr(self, info.name)
            items = value if isinstance(value, tuple) else (value,)
            if info.kind == "int_list" and not items:
                raise ParamError(info.name, "needs at least one value")
            for v in items:
                if info.choices is not None and v not in info.choices:
                    raise ParamError(info.name, f"{v!r} is not one of {', '.join(map(str, info.choices))}")
                if info.min is not None and v < info.min:
                    raise ParamError(
                        info.name, f"{v} is below the minimum {info.min}; valid range [{info.min}, {info.max}]"
                    )
                if info.max is not None and v > info.max:
                    raise ParamError(
                        info.name, f"{v} is above the maximum {info.max}; valid range [{info.min}, {info.max}]"
                    )

    def check(self, *, in_channels: int, image_size: tuple[int, int | None]) -> None:
        """Cross-field and input-shape rules; override in families. Raise ParamError."""


def _coerce(info: ParamInfo, raw: Any) -> Any:
    try:
        if info.kind == "int_list":
            if isinstance(raw, str):
                parts = [p for p in raw.replace(" ", "").strip("()[]").split(",") if p]
                return tuple(int(p) for p in parts)
            if isinstance(raw, (list, tuple)):
                return tuple(_as_int(v) for v in raw)
            return (_as_int(raw),)
        if info.kind == "bool":
            return parse_bool(raw)
        if info.kind == "int":
            return _as_int(raw)
        if info.kind == "float":
            if isinstance(raw, bool):
                raise ValueError
            return float(raw)
        return str(raw)
    except (TypeError, ValueError):
        expected = {"int_list": "comma-separated integers", "bool": "true/false"}.get(info.kind, info.kind)
        raise ParamError(info.name, f"cannot read {raw!r} as {expected}") from None


def _as_int(v: Any) -> int:
    if isinstance(v, bool):
        raise ValueError
    if isinstance(v, float):
        if not v.is_integer():
            raise ValueError
        return int(v)
    return int(str(v).strip())
