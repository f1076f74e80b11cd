"""Export a trained run: safetensors bundle, ONNX, or a ``torch.export`` program.

Every export writes a JSON beside the model file (same stem) holding ``arch``,
``params``, ``task``, ``labels`` and ``preprocess``, so any client can rebuild the
input from an image file alone. A ``.safetensors`` export with its JSON is itself a
bundle that :func:`explorer.load_run` opens.

Formats:

- ``safetensors``: weights only (rebuilt through the registry); any model.
- ``onnx``: the default (dynamo) exporter, batch axis dynamic; width dynamic too for
  variable-width runs where the model allows it. The file is checked with onnxruntime
  on an input of another batch size (and width) than the example, when onnxruntime is
  installed (``pip install model-explorer[export]``).
- ``pt2``: ``torch.export`` program (``torch.export.load``); TorchScript is deprecated
  upstream and not offered.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import runfolder
from .api import Run
from .atomic import atomic_write, write_json, write_safetensors

__all__ = ["EXPORT_FORMATS", "ExportError", "export_run"]

EXPORT_FORMATS = ("safetensors", "onnx", "pt2")
_SUFFIX = {"safetensors": ".safetensors", "onnx": ".onnx", "pt2": ".pt2"}


class ExportError(RuntimeError):
    """The model cannot be exported in that format; the message says why."""


def _sidecar(run: Run, fmt: str, extra: dict[str, Any]) -> dict[str, Any]:
    cfg = run.config
    return {
        "format": runfolder.RUN_FORMAT,
        "version": cfg.get("version", 1),
        "export_format": fmt,
        "arch": cfg["arch"],
        "params": cfg["params"],
        "task": cfg["task"],
        "labels": cfg["labels"],
        "preprocess": cfg["preprocess"],
        "task_extra": cfg.get("task_extra", {}),
        "model": cfg["model"],
        "data": cfg.get("data", {}),
        **extra,
    }


def _example(run: Run, batch: int = 2, width: int | None = None) -> torch.Tensor:
    c, h, w = run.input_shape
    w = width or w or 4 * h
    return torch.randn(batch, c, h, w)


def export_run(run: Run, fmt: str, out: str | os.PathLike[str], *, verify: bool = True) -> dict[str, Any]:
    """Write ``out`` (and ``out`` with suffix ``.json``). Returns a summary dict.

    Raises:
        ExportError: unsupported task/format combination, or the exporter failed.
    """
    if fmt not in EXPORT_FORMATS:
        raise ExportError(f"unknown format {fmt!r}; available: {', '.join(EXPORT_FORMATS)}")
    out = Path(out)
    if out.suffix != _SUFFIX[fmt]:
        out = out.with_suffix(_SUFFIX[fmt])
    model = run.model.cpu().eval()
    summary: dict[str, Any] = {"format": fmt, "file": str(out), "json": str(out.with_suffix(".json"))}
    if fmt == "safetensors":
        write_safetensors(out, model.state_dict(), {"meta": json.dumps({"arch": run.arch})})
    elif (problem := run.task_object.graph_export_problem()) is not None:
        raise ExportError(problem)
    elif fmt == "onnx":
        summary.update(_export_onnx(run, model, out, verify))
    else:
        summary.update(_export_pt2(run, model, out))
    write_json(
        out.with_suffix(".json"), _sidecar(run, fmt, {k: v for k, v in summary.items() if k.startswith("dynamic")})
    )
    return summary


def _dynamic_shapes(run: Run) -> tuple[dict[int, Any], bool]:
    from torch.export import Dim

    dims: dict[int, Any] = {0: Dim.DYNAMIC}
    variable = run.input_shape[2] is None
    if variable:
        dims[3] = Dim.DYNAMIC
    return dims, variable


def _export_onnx(run: Run, model: torch.nn.Module, out: Path, verify: bool) -> dict[str, Any]:
    dims, variable = _dynamic_shapes(run)
    x = _example(run)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp_file = Path(tmp) / "model.onnx"
            torch.onnx.export(
                model,
                (x,),
                str(tmp_file),
                dynamo=True,
                dynamic_shapes=({k: v for k, v in dims.items()},),
                input_names=["image"],
                output_names=["output"],
                external_data=False,
            )
            atomic_write(out, lambda p: p.write_bytes(tmp_file.read_bytes()))
    except Exception as e:  # the exporter raises many types; the user needs the reason
        raise ExportError(f"ONNX export of '{run.arch}' failed: {str(e).splitlines()[0]}") from e
    result: dict[str, Any] = {"dynamic_batch": True, "dynamic_width": variable}
    if verify:
        result["verified"] = _verify_onnx(run, model, out, variable)
    return result


def _verify_onnx(run: Run, model: torch.nn.Module, path: Path, variable: bool) -> dict[str, Any] | str:
    try:
        import onnxruntime as ort
    except ImportError:
        return "skipped: onnxruntime not installed"
    x = _example(run, batch=3, width=(run.input_shape[1] * 5 + 3) if variable else None)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        want = model(x).numpy()
    if got.shape != want.shape:
        raise ExportError(f"ONNX check failed: output {got.shape} != PyTorch {want.shape} for input {tuple(x.shape)}")
    err = float(np.abs(got - want).max())
    if err > 1e-3:
        raise ExportError(f"ONNX check failed: max difference {err:.2e} from PyTorch for input {tuple(x.shape)}")
    return {"input": list(x.shape), "max_abs_diff": err}


def _export_pt2(run: Run, model: torch.nn.Module, out: Path) -> dict[str, Any]:
    dims, variable = _dynamic_shapes(run)
    try:
        program = torch.export.export(model, (_example(run),), dynamic_shapes=({k: v for k, v in dims.items()},))
    except Exception as e:
        raise ExportError(f"torch.export of '{run.arch}' failed: {str(e).splitlines()[0]}") from e
    with tempfile.TemporaryDirectory() as tmp:  # torch.export.save wants a .pt2 name
        tmp_file = Path(tmp) / "model.pt2"
        torch.export.save(program, str(tmp_file))
        atomic_write(out, lambda p: p.write_bytes(tmp_file.read_bytes()))
    return {"dynamic_batch": True, "dynamic_width": variable}
