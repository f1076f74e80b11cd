"""The model registry: families are registered by name, built by name.

The CLI's ``archs`` and the UI's family picker are filled from here, never from
if-chains elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from ._spec import ParamError, Params

__all__ = [
    "ModelInfo",
    "build_model",
    "list_models",
    "model_info",
    "model_params",
    "register_model",
]

ImageSize = tuple[int, "int | None"]
Builder = Callable[..., nn.Module]


@dataclass(frozen=True)
class ModelInfo:
    name: str
    params: type[Params]
    builder: Builder
    description: str
    tasks: tuple[str, ...]


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(
    name: str, *, params: type[Params], description: str, tasks: tuple[str, ...] = ("classify",)
) -> Callable[[Builder], Builder]:
    """Register ``builder(p, *, in_channels, num_outputs, image_size) -> nn.Module``.

    Raises:
        ValueError: the name is already registered.
    """

    def deco(builder: Builder) -> Builder:
        if name in _REGISTRY:
            raise ValueError(f"model family '{name}' is already registered")
        params.family = name
        _REGISTRY[name] = ModelInfo(name, params, builder, description, tuple(tasks))
        return builder

    return deco


def list_models(task: str | None = None) -> list[str]:
    """Registered family names (optionally only those supporting ``task``), sorted."""
    return sorted(n for n, i in _REGISTRY.items() if task is None or task in i.tasks)


def model_info(name: str) -> ModelInfo:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ParamError("arch", f"unknown architecture '{name}'; available: {', '.join(list_models())}") from None


def model_params(name: str) -> type[Params]:
    """The parameter dataclass of a family (``.describe()`` lists its fields)."""
    return model_info(name).params


def build_model(
    name: str,
    *,
    in_channels: int,
    num_outputs: int,
    image_size: tuple[int, int | None],
    **params: Any,
) -> nn.Module:
    """Build a registered family with validated parameters.

    Args:
        name: family name, see :func:`list_models`.
        in_channels: image channels (1 gray, 3 RGB).
        num_outputs: classes (or output symbols for sequence heads).
        image_size: (H, W) of the model input; W is None for variable-width models.
        **params: family parameters, native values or strings.

    Raises:
        ParamError: naming the offending parameter and the valid range.
    """
    info = model_info(name)
    if in_channels not in (1, 3):
        raise ParamError("in_channels", f"{in_channels} is not supported; use 1 (gray) or 3 (RGB)")
    if num_outputs < 1:
        raise ParamError("num_outputs", f"needs at least 1 output, got {num_outputs}")
    h, w = image_size
    if h < 1 or (w is not None and w < 1):
        raise ParamError("image_size", f"{image_size} is not a valid (height, width)")
    p = info.params.from_dict(params)
    p.check(in_channels=in_channels, image_size=(int(h), None if w is None else int(w)))
    return info.builder(p, in_channels=in_channels, num_outputs=num_outputs, image_size=(h, w))
