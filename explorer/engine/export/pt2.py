"""``torch.export`` programs (``.pt2``, opened with ``torch.export.load``).

``torch.export`` keeps the batch axis free for every family, but it may fix an axis the
task asked to keep free: the sequence length of ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` layers
is specialised, so a variable-width text model's program accepts only the traced width. Such
an axis is found in the program's input shapes and named in ``limits`` (the message and the
JSON), and the check runs at the width the program accepts.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..atomic import atomic_write
from ..tasks import ExportGraph
from ._common import ExportError
from .graphs import CHECK_BATCH, TRACE_BATCH, compare, describe, dynamic_shapes, run_torch

__all__ = ["write_pt2"]

_WIDTH_AXES = ("width", "cells")  # the axes that follow the image width


def _pinned(program: torch.export.ExportedProgram, graph: ExportGraph) -> list[tuple[str, str, int]]:
    """(input, axis name, fixed size) of every axis asked free that the program's input shapes fix."""
    user = list(program.graph_signature.user_inputs)
    nodes = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    out = []
    for i, name in enumerate(graph.input_names):
        shape = nodes[user[i]].meta["val"].shape
        for axis, axis_name in graph.dynamic[i].items():
            if not isinstance(shape[axis], torch.SymInt):
                out.append((name, axis_name, int(shape[axis])))
    return out


def _width_guarded(program: torch.export.ExportedProgram, graph: ExportGraph, trace_args: tuple, other: tuple) -> list:
    """The width-like axes when the program refuses another width although its shapes are free
    (a guard such as ``x.size()[3] // 4 == 32`` in the graph pins it)."""
    try:
        with torch.no_grad():
            program.module()(*other)
        return []
    except Exception:  # a failed guard: AssertionError or RuntimeError, depending on the version
        return [
            (name, axis_name, int(trace_args[i].shape[axis]))
            for i, name in enumerate(graph.input_names)
            for axis, axis_name in graph.dynamic[i].items()
            if axis_name in _WIDTH_AXES
        ]


def _limit_text(graph: ExportGraph, pinned: list[tuple[str, str, int]]) -> list[str]:
    recurrent = any(isinstance(m, nn.RNNBase) for m in graph.module.modules())
    why = " (torch.export fixes the sequence length of LSTM/GRU/RNN layers)" if recurrent else ""
    where = f"{graph.part} graph" if graph.part else "program"
    return [f"{where}: input '{n}' axis {axis_name} fixed at {size}{why}" for n, axis_name, size in pinned]


def write_pt2(graph: ExportGraph, path: Path, widths: tuple[int, int], verify: bool) -> dict[str, Any]:
    """Export ``graph`` with ``torch.export`` to ``path`` (atomically, after its check).

    Returns:
        ``{"file", "inputs", "outputs", "check", "limits": [text...]}``.

    Raises:
        ExportError: torch.export failed, or the program disagrees with PyTorch.
    """
    trace_args = graph.inputs(TRACE_BATCH, widths[0])
    what = f"the {graph.part} graph" if graph.part else "the model"
    try:
        program = torch.export.export(graph.module, trace_args, dynamic_shapes=dynamic_shapes(graph))
    except Exception as e:  # torch.export raises many types; the user needs the reason
        raise ExportError(f"torch.export of {what} failed: {str(e).strip().splitlines()[0]}") from e
    pinned = _pinned(program, graph)
    check_args = graph.inputs(CHECK_BATCH, widths[1])
    if widths[0] != widths[1] and not any(axis in _WIDTH_AXES for _, axis, _ in pinned):
        pinned += _width_guarded(program, graph, trace_args, check_args)
    if any(axis in _WIDTH_AXES for _, axis, _ in pinned):
        check_args = graph.inputs(CHECK_BATCH, widths[0])
    want = run_torch(graph, check_args)
    result: dict[str, Any] = {
        "file": path.name,
        **describe(graph, trace_args, check_args, run_torch(graph, trace_args), want),
    }
    result["limits"] = _limit_text(graph, pinned)
    result["check"] = None
    if verify:
        try:
            with torch.no_grad():
                got = program.module()(*check_args)
        except Exception as e:  # a guard the exporter added refuses these shapes
            raise ExportError(
                f"check failed: the torch.export program of {what} refuses inputs {[list(a.shape) for a in check_args]} "
                f"({str(e).strip().splitlines()[0]})"
            ) from e
        got_list = [t.detach().numpy() for t in (got if isinstance(got, (tuple, list)) else (got,))]
        result["check"] = {
            "inputs": [list(a.shape) for a in check_args],
            "max_abs_diff": compare(graph.part, got_list, want, check_args),
        }
    buf = io.BytesIO()
    torch.export.save(program, buf)
    atomic_write(path, lambda tmp: tmp.write_bytes(buf.getvalue()), parents=False)
    return result
