"""Probes of a loaded run (after training, or a reopened run): the same :class:`ProbeReport` the
trainer's live probes send (:func:`explorer.engine.hooks.probe`), from a
:class:`~explorer.engine.api.Run` instead of a training session, so the app's views draw both alike.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch

from .events import ProbeReport
from .hooks import probe_report

__all__ = ["probe_run", "probe_image", "validation_paths"]


def probe_run(run: Any, path: str | os.PathLike[str], epoch: int = 0, with_gradcam: bool = True) -> ProbeReport:
    """The intermediates, declarations, outputs and (where the model has conv maps) Grad-CAM of
    one image file, as the run's model sees it.

    Raises:
        DecodeError: the file cannot be used.
    """
    img = run.input_spec.load_uint8(path)  # (H, W, C) uint8, the model's input before normalisation
    return probe_image(run, np.asarray(img), str(path), epoch, with_gradcam)


def probe_image(run: Any, image: np.ndarray, path: str, epoch: int = 0, with_gradcam: bool = True) -> ProbeReport:
    """:func:`probe_run` of an already decoded uint8 (H, W, C) image. Holds the run's ``lock``
    (where it has one) so a prediction on another thread never runs into the probe's hooks."""
    with getattr(run, "lock", None) or nullcontext():
        return _probe_image(run, image, path, epoch, with_gradcam)


def _probe_image(run: Any, image: np.ndarray, path: str, epoch: int, with_gradcam: bool) -> ProbeReport:
    img = torch.from_numpy(np.ascontiguousarray(image)).unsqueeze(0).to(run.device)
    return probe_report(
        run.model,
        run.task_object,
        run.input_spec.to_tensor,
        list(run.labels),
        img,
        path=str(path),
        epoch=epoch,
        with_gradcam=with_gradcam,
        ranked=MAX_CLASSES,  # what the model used for any of its likely classes, not only the predicted
    )


MAX_CLASSES = 20  # Grad-CAM maps of a classifier's probe: the most probable classes, predicted first


def validation_paths(run: Any) -> list[str]:
    """The run's validation images (its data source split again with its seed, as
    :func:`explorer.engine.evaluation.validation_details` does); the training images when it has
    no validation split.

    Raises:
        DataError: the run's data source cannot be opened.
    """
    from explorer.data import open_source

    from .config import RunConfig

    cfg = RunConfig.from_dict({"arch": run.arch, "data": run.config["data"], "train": run.config["train"]})
    source = open_source(cfg.data.source)
    extra = run.config.get("task_extra") or {}
    prepared = run.task_object.prepare(
        source, cfg.data, seed=cfg.train.seed, labels=run.labels, preprocess=run.input_spec, extra=extra
    )
    split = prepared.val if len(prepared.val) else prepared.train
    return [str(p) for p in split.paths]
