"""Evaluation details for the app's evaluation views: which images sit in each confusion cell,
the most confidently wrong images, per-class precision / recall / F1, and for text (CTC)
models the character confusion with the images behind every cell. Plain numpy and Python.

:func:`evaluate_details` runs the task's own evaluation (``Task.evaluate``, exactly what
``evaluate_run`` runs) once, with a forward hook on the model that keeps the outputs it
computed, and builds the details from those outputs; what they mean comes from the model's
declaration of its output (``output_info().kind``), not from the task's name:

- ``logits``: class probabilities = softmax of the first ``len(labels)`` outputs (a
  multi-task model's regression outputs follow them), prediction = their argmax;
- ``ctc_frames``: the best-path decoding (:func:`explorer.engine.ctc.greedy_decode`) of each
  image's valid frames, aligned to its text (:func:`explorer.engine.ctc.alignment_ops`).

Other outputs (captions) get the task's report only. The pure builders
(:func:`class_details`, :func:`char_details`) take the per-sample truths and predictions, so
a task that learns other outputs can feed them its own.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .ctc import alignment_ops, greedy_decode
from .metrics import confusion_matrix, precision_recall_f1

__all__ = [
    "Confusion",
    "ClassDetails",
    "CharDetails",
    "class_details",
    "char_details",
    "evaluate_details",
    "validation_details",
]

EMPTY = ""  # the row / column of insertions / deletions in the character confusion


@dataclass
class Confusion:
    """A confusion matrix (rows = truth, columns = prediction) with the samples of each cell.

    ``cells[(i, j)]`` lists the sample indices counted in ``counts[i, j]`` (each sample once
    per occurrence, in order; empty cells absent); ``paths`` maps an index to its file.
    """

    rows: list[str]
    columns: list[str]
    counts: np.ndarray  # int64 (R, C)
    cells: dict[tuple[int, int], list[int]]
    paths: list[str]

    def samples(self, i: int, j: int) -> list[str]:
        """The files in cell (i, j), each once, in sample order."""
        return [self.paths[k] for k in dict.fromkeys(self.cells.get((i, j), []))]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": list(self.rows),
            "columns": list(self.columns),
            "counts": self.counts.tolist(),
            "cells": [{"row": i, "column": j, "samples": v} for (i, j), v in sorted(self.cells.items())],
            "paths": list(self.paths),
        }


@dataclass
class ClassDetails:
    confusion: Confusion
    wrong: list[dict[str, Any]]  # most confident first: index, path, true, predicted, confidence
    per_class: dict[str, dict[str, float | int | None]]  # precision, recall, f1, support

    def to_dict(self) -> dict[str, Any]:
        return {"confusion": self.confusion.to_dict(), "wrong": self.wrong, "per_class": self.per_class}


@dataclass
class CharDetails:
    confusion: Confusion  # rows: reference characters + "" (insertions); columns: read ones + "" (deletions)
    wrong: list[dict[str, Any]] = field(default_factory=list)  # index, path, true, predicted, confidence

    def to_dict(self) -> dict[str, Any]:
        return {"confusion": self.confusion.to_dict(), "wrong": self.wrong}


def class_details(
    paths: Sequence[str],
    y_true: np.ndarray,
    y_pred: np.ndarray,
    confidence: np.ndarray,
    labels: Sequence[str],
    top: int | None = 50,
) -> ClassDetails:
    """Confusion with its cells' samples, the ``top`` most confidently wrong images (by the
    predicted class's probability, highest first; ties in sample order), per-class P/R/F1."""
    y_true, y_pred = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    counts = confusion_matrix(y_true, y_pred, len(labels))
    cells: dict[tuple[int, int], list[int]] = {}
    for k, (t, p) in enumerate(zip(y_true.tolist(), y_pred.tolist())):
        cells.setdefault((t, p), []).append(k)
    confusion = Confusion(list(labels), list(labels), counts, cells, [str(p) for p in paths])
    conf = np.asarray(confidence, np.float64)
    wrong_idx = [k for k in np.argsort(-conf, kind="stable").tolist() if y_true[k] != y_pred[k]]
    wrong = [
        {
            "index": k,
            "path": str(paths[k]),
            "true": labels[y_true[k]],
            "predicted": labels[y_pred[k]],
            "confidence": float(conf[k]),
        }
        for k in wrong_idx[:top]
    ]
    return ClassDetails(confusion, wrong, precision_recall_f1(counts, labels))


def char_details(
    paths: Sequence[str],
    refs: Sequence[str],
    hyps: Sequence[str],
    charset: Sequence[str],
    confidence: Sequence[float] | None = None,
    top: int | None = 50,
) -> CharDetails:
    """Character confusion from the minimal alignment of each reading to its text: a match or a
    substitution counts in (reference char, read char), a deletion in (char, ""), an insertion
    in ("", char). Rows and columns are ``charset`` then "". Wrong readings, most confident first."""
    axis = [*charset, EMPTY]
    index = {c: i for i, c in enumerate(axis)}
    counts = np.zeros((len(axis), len(axis)), np.int64)
    cells: dict[tuple[int, int], list[int]] = {}
    for k, (r, h) in enumerate(zip(refs, hyps)):
        for _, a, b in alignment_ops(r, h):
            cell = (index[a], index[b])
            counts[cell] += 1
            cells.setdefault(cell, []).append(k)
    conf = np.asarray(confidence if confidence is not None else np.zeros(len(refs)), np.float64)
    order = [k for k in np.argsort(-conf, kind="stable").tolist() if refs[k] != hyps[k]]
    wrong = [
        {"index": k, "path": str(paths[k]), "true": refs[k], "predicted": hyps[k], "confidence": float(conf[k])}
        for k in order[:top]
    ]
    return CharDetails(Confusion(axis, axis, counts, cells, [str(p) for p in paths]), wrong)


# -- from a run ---------------------------------------------------------------------------------


def evaluate_details(run: Any, data: str | os.PathLike[str] | Any, top: int | None = 50) -> dict[str, Any]:
    """The task's evaluation of ``run`` on ``data`` (as :func:`explorer.engine.api.evaluate_run`)
    plus ``details``: a :class:`ClassDetails` (class outputs), a :class:`CharDetails` (CTC
    frames) or None (other outputs).

    Returns:
        ``{"report": the task's report dict, "problems": [...], "details": ..., "paths": [...]}``.

    Raises:
        DataError: the data cannot be opened, or holds no usable labelled image.
    """
    from explorer.data import DEFAULT_MAX_PIXELS, DataError, open_source

    from .tasks import get_task

    source = data if hasattr(data, "samples") else open_source(str(data))
    task = get_task(run.task, run.config.get("task_extra"))
    max_pixels = run.config.get("data", {}).get("max_pixels", DEFAULT_MAX_PIXELS)
    extra = run.config.get("task_extra") or {}
    split, problems = task.prepare_eval(source, run.input_spec, run.labels, extra, max_pixels)
    if len(split) == 0:
        raise DataError(f"{getattr(source, 'origin', data)}: no usable labelled image to evaluate")
    return {**_details(run, task, split, source, top), "problems": problems}


def validation_details(run: Any, top: int | None = 50) -> dict[str, Any]:
    """:func:`evaluate_details` on the run's own validation images: its data source split again
    with its seed (the split depends only on the samples and the seed, so these are the images
    the run was validated on, as long as the source holds the same files).

    Raises:
        DataError: the run's data source cannot be opened, or its validation split is empty.
    """
    from explorer.data import DataError, open_source

    from .config import RunConfig
    from .tasks import get_task

    cfg = RunConfig.from_dict({"arch": run.arch, "data": run.config["data"], "train": run.config["train"]})
    source = open_source(cfg.data.source)
    task = get_task(run.task, run.config.get("task_extra"))
    extra = run.config.get("task_extra") or {}
    prepared = task.prepare(
        source, cfg.data, seed=cfg.train.seed, labels=run.labels, preprocess=run.input_spec, extra=extra
    )
    if len(prepared.val) == 0:
        raise DataError(f"{cfg.data.source}: the run has no validation images")
    return {**_details(run, task, prepared.val, source, top), "problems": prepared.problems}


def _details(run: Any, task: Any, split: Any, source: Any, top: int | None) -> dict[str, Any]:
    """The task's evaluation of ``split`` with the model's outputs kept, and the details."""
    outputs: list[torch.Tensor] = []

    def keep(_m: Any, _i: Any, out: Any) -> None:
        if torch.is_tensor(out):  # a caption model's teacher-forced pass returns a tuple: not needed
            outputs.append(out.detach().float().cpu())

    handle = run.model.register_forward_hook(keep)
    try:
        ev = task.evaluate(run.model, split, run.input_spec, run.device, nullcontext, run.labels)
    finally:
        handle.remove()
    truth = _truths(source, split.paths)
    kind = run.model.output_info((run.input_spec.height, run.input_spec.width or split.x.shape[2])).kind
    build = _BUILDERS.get(kind)
    details = build(run, split, outputs, truth, top) if build is not None else None
    return {"report": task.report(ev, run.labels), "details": details, "paths": list(split.paths)}


def _truths(source: Any, paths: Sequence[str]) -> list[str]:
    """Each evaluated file's target as the data source gives it (a class name or a text)."""
    target = {}
    for s in source.samples:
        target.setdefault(str(s.path), s.target)
    return [target[p] for p in paths]


def _logits_details(run: Any, split: Any, outputs: list[torch.Tensor], truth: list[str], top: int | None) -> Any:
    k = len(run.labels)
    probs = torch.softmax(torch.cat(outputs)[:, :k], dim=1).numpy()  # (N, K) in sample order
    pred = probs.argmax(1)
    index = {c: i for i, c in enumerate(run.labels)}
    y_true = np.array([index[t] for t in truth], np.int64)
    return class_details(split.paths, y_true, pred, probs[np.arange(len(pred)), pred], run.labels, top)


def _ctc_details(run: Any, split: Any, outputs: list[torch.Tensor], truth: list[str], top: int | None) -> Any:
    widths = split.widths.cpu() if split.widths is not None else torch.full((len(truth),), split.x.shape[2])
    lengths_fn = getattr(run.model, "output_lengths", None)
    hyps, conf = [], []
    k = 0
    for batch in outputs:  # (b, T, classes) per evaluated batch, in sample order
        lp = batch.log_softmax(-1).numpy()
        frames = lengths_fn(widths[k : k + len(lp)]).clamp(max=lp.shape[1]) if lengths_fn else None
        for j in range(len(lp)):
            text, p = greedy_decode(lp[j, : int(frames[j]) if frames is not None else lp.shape[1]], run.labels)
            hyps.append(text)
            conf.append(p)
        k += len(lp)
    return char_details(split.paths, truth, hyps, run.labels, conf, top)


_BUILDERS = {"logits": _logits_details, "ctc_frames": _ctc_details}
