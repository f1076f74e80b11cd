"""Export a trained run: a safetensors bundle, ONNX graphs checked in onnxruntime, or
``torch.export`` programs.

Every export writes a JSON beside the model file (``NAME.json``) holding ``arch``,
``params``, ``task``, ``labels`` and ``preprocess`` (with ``preprocess_steps``, the recipe in
words), what the task adds to read the outputs (CTC models: ``blank``; the captioner:
``vocabulary``, ``start``, ``end``, ``grid``, ``max_length``), the graphs' input and output
names and shapes (``graphs``), each graph's check against PyTorch (``max_abs_diff``) and the
exporter's ``limits``. A ``.safetensors`` export with its JSON is a bundle that
:func:`explorer.load_run` opens again.

Formats:

- ``safetensors``: the weights (rebuilt through the registry on load); any model.
- ``onnx``: torch.onnx's dynamo exporter; the batch axis is free, and the width too for
  variable-width models. Each graph is run in onnxruntime on another batch size (and width)
  than it was traced with and must agree with PyTorch within 1e-4, else it is not written.
- ``pt2``: ``torch.export`` programs (``torch.export.load``), checked the same way; an axis
  that ``torch.export`` fixes (the sequence length of LSTM/GRU layers) is named in ``limits``.

What a model exports as (one graph ``image -> logits``, or the captioner's encoder and one
decoder step) is the task's answer (:meth:`Task.export_graphs`); where files may go is
:mod:`.target`'s.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from safetensors.torch import save_file

from .. import runfolder
from ..api import Run
from ..atomic import atomic_write
from ._common import EXPORT_FORMATS, TOLERANCE, ExportError, ExportTargetError, Progress
from .graphs import widths
from .onnx import write_onnx
from .pt2 import write_pt2
from .target import ExportFiles, plan_files

__all__ = [
    "EXPORT_FORMATS",
    "TOLERANCE",
    "ExportError",
    "ExportResult",
    "ExportTargetError",
    "Progress",
    "export_files",
    "export_run",
]

PREPROCESS_STEPS = (
    "decode the file (EXIF orientation applied; alpha composited on white; 16-bit scaled to 8-bit); "
    "channels 1: RGB -> gray by luminance 0.299 R + 0.587 G + 0.114 B; "
    "width null (text lines): width = round(image width * height / image height), at most max_width; "
    "resize to (height, width) with OpenCV: resize 'area' = INTER_AREA, 'linear' = INTER_LINEAR, "
    "'auto' = INTER_AREA when no side grows, else INTER_LINEAR; "
    "x = pixels * scale; x = (x - mean[c]) / std[c]; layout (1, channels, height, width) float32"
)


@dataclass
class ExportResult:
    """What :func:`export_run` wrote and measured.

    Attributes:
        format: "safetensors", "onnx" or "pt2".
        files: every file written, model files first, the JSON last.
        json: the JSON beside the model.
        graphs: per graph: ``file``, ``inputs``, ``outputs`` and ``check`` (``inputs``,
            ``max_abs_diff``) or None when not checked.
        max_abs_diff: the largest difference from PyTorch over all graphs (None: not checked).
        limits: what the exporter could not keep free (pt2), one line each.
    """

    format: str
    files: list[str]
    json: str
    graphs: list[dict[str, Any]] = field(default_factory=list)
    max_abs_diff: float | None = None
    limits: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_format(fmt: str) -> None:
    if fmt not in EXPORT_FORMATS:
        raise ExportTargetError(f"unknown format {fmt!r}; available: {', '.join(EXPORT_FORMATS)}")


def export_files(run: Run, fmt: str, out: str | os.PathLike[str]) -> list[Path]:
    """The files an export of ``run`` to ``out`` would write (JSON last), for a dialog to show
    before exporting.

    Raises:
        ExportTargetError: the destination is refused; the message says why.
    """
    _check_format(fmt)
    parts = [""] if fmt == "safetensors" else [g.part for g in _graphs(run)]
    return plan_files(fmt, out, parts, run.sources).all()


def _graphs(run: Run) -> list[Any]:
    model = copy.deepcopy(run.model).cpu().eval()  # the run's own model stays where it is
    return run.task_object.export_graphs(model, run.input_shape)


def export_run(
    run: Run, fmt: str, out: str | os.PathLike[str], *, verify: bool = True, progress: Progress | None = None
) -> ExportResult:
    """Export ``run`` as ``fmt`` to ``out`` (the suffix is added when missing) plus its JSON.

    Works on a CPU copy of the model. ``progress(step, steps, what)`` is called before each step.

    Raises:
        ExportTargetError: the destination is refused (nothing written).
        ExportError: the exporter failed, or a graph disagrees with PyTorch beyond 1e-4.
    """
    _check_format(fmt)
    report = progress or (lambda step, steps, what: None)
    if fmt == "safetensors":
        files = plan_files(fmt, out, [""], run.sources)
        steps = 2
        report(0, steps, "writing the weights")
        state = {k: v.detach().cpu().contiguous().clone() for k, v in run.model.state_dict().items()}
        meta = {"meta": json.dumps({"arch": run.arch})}
        atomic_write(files.models[""], lambda p: save_file(state, str(p), metadata=meta), parents=False)
        result = ExportResult(fmt, [str(files.models[""])], str(files.json))
    else:
        graphs = _graphs(run)
        files = plan_files(fmt, out, [g.part for g in graphs], run.sources)
        steps = len(graphs) + 1
        result = _export_graphs(run, fmt, graphs, files, verify, report)
    report(steps - 1, steps, "writing the JSON")
    text = json.dumps(sidecar(run, result), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    atomic_write(files.json, lambda p: p.write_text(text, encoding="utf-8"), parents=False)
    result.files.append(str(files.json))
    return result


def _export_graphs(
    run: Run, fmt: str, graphs: list[Any], files: ExportFiles, verify: bool, report: Progress
) -> ExportResult:
    write = write_onnx if fmt == "onnx" else write_pt2
    result = ExportResult(fmt, [], str(files.json))
    w = widths(run.input_shape)
    for i, g in enumerate(graphs):
        name = f"the {g.part} graph" if g.part else "the model"
        report(i, len(graphs) + 1, f"exporting and checking {name}")
        info = write(g, files.models[g.part], w, verify)
        result.limits += info.pop("limits", [])
        result.graphs.append(info)
        result.files.append(str(files.models[g.part]))
    diffs = [g["check"]["max_abs_diff"] for g in result.graphs if g["check"] is not None]
    result.max_abs_diff = max(diffs) if diffs and len(diffs) == len(result.graphs) else None
    return result


def sidecar(run: Run, result: ExportResult) -> dict[str, Any]:
    """The JSON written beside an export (a run config plus what a client needs)."""
    cfg = run.config
    model = run.model
    info = run.task_object.export_info(model, run.labels, run.input_shape)
    return {
        "format": runfolder.RUN_FORMAT,
        "version": cfg.get("version", 1),
        "export_format": result.format,
        "arch": cfg["arch"],
        "params": cfg["params"],
        "task": cfg["task"],
        "labels": cfg["labels"],
        "preprocess": cfg["preprocess"],
        "preprocess_steps": PREPROCESS_STEPS,
        **info,
        "graphs": result.graphs,
        "max_abs_diff": result.max_abs_diff,
        "tolerance": TOLERANCE,
        "limits": result.limits,
        "task_extra": cfg.get("task_extra", {}),
        "model": cfg["model"],
        "data": cfg.get("data", {}),
    }
