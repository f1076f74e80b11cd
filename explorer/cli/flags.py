"""The ``train`` command's setting flags, generated from the settings declarations.

Each declared setting with a ``flag`` (see :mod:`explorer.engine.settings`) becomes one option
whose type, choices and help come from its declaration; its ``dest`` is the setting's dotted
key (``"train.lr"``) and its default ``None`` ("not given": a ``--config`` file's value stays).
Two options are composites over declared settings: ``--image-size HxW`` (``data.height`` and
``data.width``) and ``--augment KEY=VALUE`` (the ``data.augment`` group). Ranges are checked
once, by the engine's validation, so a flag can never accept what the config refuses.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any

from explorer.engine.config import AUGMENT_SETTINGS, DATA_SETTINGS, TRAIN_SETTINGS, all_settings
from explorer.engine.settings import ConfigError, Setting, describe_range, format_default, markdown_table

from .common import key_value

__all__ = [
    "add_setting_flags",
    "apply_composites",
    "apply_flags",
    "flag_kwargs",
    "flag_settings",
    "given",
    "readme_table",
]

_TYPES = {"int": int, "float": float}


def flag_settings() -> list[Setting]:
    """The declared settings that are ``train`` flags, in declaration order."""
    return [s for s in all_settings().values() if s.flag]


def _help(s: Setting) -> str:
    rng = describe_range(s)
    if s.kind == "bool":
        text = f"{'switch off' if s.default else 'switch on'}: {s.help[:1].lower()}{s.help[1:]}"
    elif s.kind == "str_list":
        text = f"{s.help} (repeatable)"
    else:
        text = f"{s.help} ({rng + '; ' if rng and not s.choices else ''}default {format_default(s)})"
    return text.replace("%", "%%")


def flag_kwargs(s: Setting) -> dict[str, Any]:
    """``add_argument`` keywords for setting ``s``: all of them derived from its declaration."""
    kw: dict[str, Any] = {"dest": s.key, "default": None, "help": _help(s)}
    if s.kind == "bool":
        kw.update(action="store_const", const=not s.default)
    elif s.kind == "str_list":
        kw.update(action="append", metavar=s.metavar or "VALUE")
    else:
        if s.kind != "str":
            kw["type"] = _TYPES[s.kind]
        if s.choices is not None:
            kw["choices"] = list(s.choices)
        else:
            kw["metavar"] = s.metavar or s.name.upper()
    return kw


def _add(group: Any, settings: Iterable[Setting]) -> None:
    for s in settings:
        if s.flag:
            group.add_argument(s.flag, **flag_kwargs(s))


def add_setting_flags(parser: argparse.ArgumentParser) -> None:
    """Adds the data and training setting flags to the ``train`` parser, in two help groups."""
    settings = all_settings()
    data = parser.add_argument_group("data settings")
    _add(data, DATA_SETTINGS)
    height = settings["data.height"]
    data.add_argument(
        "--image-size",
        metavar="HxW",
        help=f"model input size, e.g. 32x32, each side {describe_range(height)} (default: from the data)",
    )
    keys = ", ".join(f"{s.name} ({describe_range(s)})" for s in AUGMENT_SETTINGS)
    data.add_argument(
        "--augment",
        action="append",
        default=[],
        type=key_value,
        metavar="KEY=VALUE",
        help=f"augmentation (repeatable; all off by default): {keys}".replace("%", "%%"),
    )
    _add(parser.add_argument_group("training settings"), TRAIN_SETTINGS)


def readme_table() -> str:
    """The README's settings table (between ``<!-- settings:begin -->`` and ``<!-- settings:end -->``),
    with the composite flags in the CLI column."""
    cli = {"data.source": "DATA", "data.height": "--image-size HxW", "data.width": "--image-size HxW"}
    cli.update({s.key: f"--augment {s.name}=..." for s in AUGMENT_SETTINGS})
    return markdown_table(all_settings().values(), cli)


def given(args: argparse.Namespace) -> dict[str, Any]:
    """The setting flags given on the command line, by dotted key."""
    return {s.key: getattr(args, s.key) for s in flag_settings() if getattr(args, s.key, None) is not None}


def apply_flags(cfg: Any, values: dict[str, Any]) -> None:
    """Sets dotted-key ``values`` on a :class:`~explorer.engine.RunConfig` (not validated here)."""
    for key, value in values.items():
        *path, name = key.split(".")
        obj = cfg
        for part in path:
            obj = getattr(obj, part)
        setattr(obj, name, list(value) if isinstance(value, list) else value)


def apply_composites(cfg: Any, args: argparse.Namespace) -> None:
    """``--image-size`` and ``--augment``; errors name the flag."""
    if args.image_size:
        try:
            h, w = (int(v) for v in args.image_size.lower().split("x"))
        except ValueError:
            raise ConfigError("--image-size", f"expected HxW such as 32x32, got {args.image_size!r}") from None
        cfg.data.height, cfg.data.width = h, w
    if args.augment:
        from explorer.engine.config import augment_from_dict

        merged = {**cfg.data.augment.to_dict(), **dict(args.augment)}
        try:
            cfg.data.augment = augment_from_dict(merged)
        except ValueError as e:
            raise ConfigError("--augment", str(e)) from None
