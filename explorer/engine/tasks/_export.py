"""What a task's model exports as: the graphs (ONNX / ``torch.export``) and their inputs.

:class:`ExportGraph` is the task's answer to "what is traced, with which named inputs and
outputs, and which axes stay free"; :mod:`explorer.engine.export` writes and checks them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["ExportGraph", "image_graph", "random_images"]


@dataclass
class ExportGraph:
    """One graph of an export.

    Attributes:
        part: "" when the model is one graph (``NAME.onnx``), else the graph's part of the
            file name (``"encoder"`` -> ``NAME.encoder.onnx``).
        module: what is traced (eval mode, CPU); ``module(*inputs(batch, width))`` runs.
        inputs: ``(batch, width) -> example inputs`` for images of that many pixels wide.
        input_names: one name per input.
        output_names: one name per output.
        dynamic: per input, ``{axis: name}`` of the axes left free ("batch", "width", "cells").
        output_axes: per output, a name for every axis (used for the axes that are free).
    """

    part: str
    module: nn.Module
    inputs: Callable[[int, int], tuple[torch.Tensor, ...]]
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    dynamic: tuple[dict[int, str], ...]
    output_axes: tuple[tuple[str, ...], ...]


def random_images(input_shape: tuple[int, int, int | None], seed: int = 0) -> Callable[[int, int], torch.Tensor]:
    """``(batch, width) -> float (batch, C, H, width)`` normal noise, the same for the same call."""
    c, h, _ = input_shape

    def make(batch: int, width: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed + 1000 * batch + width)
        return torch.randn(batch, c, h, width, generator=g)

    return make


def image_graph(
    model: nn.Module, input_shape: tuple[int, int, int | None], output_axes: tuple[str, ...]
) -> ExportGraph:
    """The whole model as one graph: ``image`` (B, C, H, W) -> ``logits``; the batch axis is
    free, and the width too for variable-width inputs (``input_shape[2]`` None)."""
    images = random_images(input_shape)
    dynamic = {0: "batch"} if input_shape[2] is not None else {0: "batch", 3: "width"}
    return ExportGraph(
        part="",
        module=model,
        inputs=lambda b, w: (images(b, w),),
        input_names=("image",),
        output_names=("logits",),
        dynamic=(dynamic,),
        output_axes=(output_axes,),
    )
