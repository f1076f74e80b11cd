"""ONNX: torch.onnx's dynamo exporter, then a check in onnxruntime on another input size."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_write
from ..tasks import ExportGraph
from ._common import ExportError
from .graphs import CHECK_BATCH, TRACE_BATCH, compare, describe, dynamic_shapes, run_torch

__all__ = ["write_onnx"]


def _export(graph: ExportGraph, args: tuple[torch.Tensor, ...]) -> Any:
    what = f"the {graph.part} graph" if graph.part else "the model"
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the exporter prints its progress
            return torch.onnx.export(
                graph.module,
                args,
                None,
                dynamo=True,
                dynamic_shapes=dynamic_shapes(graph),
                input_names=list(graph.input_names),
                output_names=list(graph.output_names),
                verbose=False,
            )
    except Exception as e:  # the exporter raises many types; the user needs the reason
        raise ExportError(f"ONNX export of {what} failed: {str(e).strip().splitlines()[0]}") from e


def _run_onnx(path: Path, graph: ExportGraph, args: tuple[torch.Tensor, ...]) -> list[Any]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(list(graph.output_names), {n: a.numpy() for n, a in zip(graph.input_names, args)})


def write_onnx(graph: ExportGraph, path: Path, widths: tuple[int, int], verify: bool) -> dict[str, Any]:
    """Export ``graph`` to ``path`` (atomically: a graph that fails its check is not written).

    Returns:
        ``{"file", "inputs", "outputs", "check": {"inputs": shapes, "max_abs_diff"}}``
        (``check`` None when ``verify`` is off).

    Raises:
        ExportError: the exporter failed, or onnxruntime disagrees with PyTorch beyond the tolerance.
    """
    trace_args = graph.inputs(TRACE_BATCH, widths[0])
    check_args = graph.inputs(CHECK_BATCH, widths[1])
    program = _export(graph, trace_args)
    want = run_torch(graph, check_args)
    result: dict[str, Any] = {"file": path.name}
    result.update(describe(graph, trace_args, check_args, run_torch(graph, trace_args), want))

    def write(tmp: Path) -> None:
        program.save(str(tmp), external_data=False)
        if verify:
            diff = compare(graph.part, _run_onnx(tmp, graph, check_args), want, check_args)
            result["check"] = {"inputs": [list(a.shape) for a in check_args], "max_abs_diff": diff}

    result["check"] = None
    atomic_write(path, write, parents=False)
    return result
