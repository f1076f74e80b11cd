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

from . import gradcam
from .events import ProbeReport
from .hooks import _declarations

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


@torch.no_grad()
def _probe_image(run: Any, image: np.ndarray, path: str, epoch: int, with_gradcam: bool) -> ProbeReport:
    model = run.model.eval()
    img = torch.from_numpy(np.ascontiguousarray(image)).unsqueeze(0).to(run.device)
    x = run.input_spec.to_tensor(img)
    out, inter = run.task_object.forward_intermediates(model, x)
    probs, text = run.task_object.probe_output(out, run.labels)
    info, output_info = _declarations(model, (int(x.shape[-2]), int(x.shape[-1])))
    arrays = {k: v[0].detach().float().cpu().numpy().copy() for k, v in inter.items()}
    cam = gradcam.probe_gradcam(model, x, out, inter, run.labels) if with_gradcam and info else None
    if cam is not None:
        if (output_info or {}).get("kind") == "logits":
            cam = _every_class(model, x, out, run.labels, cam)
        arrays[gradcam.GRADCAM_KEY], info[gradcam.GRADCAM_KEY] = cam
    token_keys = [k for k, d in info.items() if d["kind"] == "tokens" and k in inter]
    tokens = [run.labels[int(i)] for i in inter[token_keys[0]][0].tolist()] if token_keys else None
    return ProbeReport(
        epoch=epoch,
        global_step=0,
        path=str(path),
        image=np.asarray(image).copy(),
        probabilities=probs,
        text=text,
        intermediates=arrays,
        info=info,
        output_info=output_info,
        tokens=tokens,
        candidates=run.task_object.probe_candidates(model, x, run.labels),
    )


MAX_CLASSES = 20  # Grad-CAM maps of a classifier's probe: the most probable classes, predicted first


def _every_class(model: Any, x: torch.Tensor, out: torch.Tensor, labels: list[str], cam: tuple) -> tuple:
    """A classifier's Grad-CAM for its most probable classes (the predicted one first), not
    only the predicted one, so the view can show what the model used for any class; in the
    probe's form (maps (n, H, W), description with ``extra``)."""
    k = len(labels)
    order = torch.argsort(out[0, :k].float(), descending=True)[:MAX_CLASSES].tolist()
    targets = [gradcam.class_targets(out, labels, target=int(c))[0] for c in order]
    result = gradcam.grad_cam(model, x, targets, layer=cam[1]["layer"])
    maps = np.stack([m.cam for m in result.maps])
    extra = {
        "labels": [m.label for m in result.maps],
        "indices": [m.index for m in result.maps],
        "positions": [None] * len(order),
        "frames": [None] * len(order),
        "scores": [m.score for m in result.maps],
    }
    return maps, {**cam[1], "extra": extra}


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
