"""Tracing a task's :class:`~explorer.engine.tasks.ExportGraph` and checking the result.

Every graph is traced on a batch of 2 and checked on a batch of 3; a variable-width model
(``preprocess.width`` null) is traced at 4 x its height and checked at another width, so an
axis that the exporter silently fixed shows up as a failed check instead of a broken client.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..tasks import ExportGraph
from ._common import TOLERANCE, ExportError

__all__ = ["TRACE_BATCH", "CHECK_BATCH", "widths", "dynamic_shapes", "run_torch", "compare", "describe"]

TRACE_BATCH, CHECK_BATCH = 2, 3


def widths(input_shape: tuple[int, int, int | None]) -> tuple[int, int]:
    """(tracing width, checking width): the model's width twice, or two widths of a text line."""
    _, h, w = input_shape
    if w is not None:
        return w, w
    return 4 * h, 5 * h + 3


def dynamic_shapes(graph: ExportGraph) -> tuple[dict[int, Any], ...]:
    # Dim.DYNAMIC, not named Dims: named ones silently froze bidirectional RNN lengths
    return tuple({axis: torch.export.Dim.DYNAMIC for axis in d} for d in graph.dynamic)


@torch.no_grad()
def run_torch(graph: ExportGraph, args: tuple[torch.Tensor, ...]) -> list[np.ndarray]:
    out = graph.module(*args)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [o.detach().cpu().numpy() for o in outs]


def compare(part: str, got: Sequence[np.ndarray], want: Sequence[np.ndarray], args: tuple[torch.Tensor, ...]) -> float:
    """Max abs difference over all outputs (equal infinities count 0).

    Raises:
        ExportError: a shape differs, or the difference exceeds :data:`TOLERANCE`.
    """
    shapes = [tuple(a.shape) for a in args]
    what = f"{part} graph" if part else "graph"
    if len(got) != len(want):
        raise ExportError(f"check failed: the {what} returns {len(got)} outputs, PyTorch {len(want)}")
    worst = 0.0
    for g, w in zip(got, want):
        if g.shape != w.shape:
            raise ExportError(
                f"check failed: the {what} gives {g.shape} where PyTorch gives {w.shape} for inputs {shapes}"
            )
        g64, w64 = g.astype(np.float64), w.astype(np.float64)
        same = (g64 == w64) | (np.isnan(g64) & np.isnan(w64))
        diff = np.where(same, 0.0, np.abs(g64 - w64))
        worst = max(worst, float(np.nan_to_num(diff, nan=np.inf).max(initial=0.0)))
    if not worst <= TOLERANCE:
        raise ExportError(
            f"check failed: the exported {what} differs from PyTorch by {worst:.3g} (more than {TOLERANCE:g}) "
            f"on inputs {shapes}; that file is not written"
        )
    return worst


def _dims(trace: tuple[int, ...], check: tuple[int, ...], names: Sequence[str]) -> list[int | str]:
    return [t if t == c else (names[i] if i < len(names) else "dynamic") for i, (t, c) in enumerate(zip(trace, check))]


def describe(
    graph: ExportGraph,
    trace_args: tuple[torch.Tensor, ...],
    check_args: tuple[torch.Tensor, ...],
    trace_out: Sequence[np.ndarray],
    check_out: Sequence[np.ndarray],
) -> dict[str, Any]:
    """Names, dtypes and shapes of a graph's inputs and outputs; a free axis by its name."""
    inputs = {}
    for i, (name, a, b) in enumerate(zip(graph.input_names, trace_args, check_args)):
        names = [graph.dynamic[i].get(k, "") for k in range(a.dim())]
        inputs[name] = {"dtype": str(a.dtype).replace("torch.", ""), "shape": _dims(a.shape, b.shape, names)}
    outputs = {}
    for name, a, b, names in zip(graph.output_names, trace_out, check_out, graph.output_axes):
        outputs[name] = {"dtype": str(a.dtype), "shape": _dims(a.shape, b.shape, names)}
    return {"inputs": inputs, "outputs": outputs}
