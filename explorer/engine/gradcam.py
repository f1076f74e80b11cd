"""Grad-CAM (Selvaraju et al., 2017) for every family with conv layers, per class or per output token.

For a target score ``y`` (a scalar of the model's output) and a conv activation ``A`` (C, h, w)::

    weights_c = mean_{y,x} d y / d A_c          cam = ReLU(sum_c weights_c * A_c) / max

The map is then resized (bilinear, half-pixel centres) to the input image's (H, W) and lies
in [0, 1] (all zeros when no channel speaks for the target).

**Which layer.** The model's declaration decides (``intermediate_info``): the last entry of
kind ``feature_map`` whose map has more than one cell in both directions (:func:`cam_layer`).
Nothing is guessed from names or ranks.

**Tile mosaics** (``patch_rnn``'s ``cnn.N``, ``conv_rnn``'s ``stem``): such an entry is the
tile CNN's per-tile maps laid out at their tiles' grid positions; the model reads the per-tile
tensor, not the mosaic. The gradient is taken at the module's own output (the per-tile
tensor the declaration's ``layer`` names, caught with a forward hook) and carried onto the
mosaic through the model's own mosaic function (a vector-Jacobian product of that function,
so no layout is assumed here). The channel weights are then averaged over the whole mosaic,
i.e. over every tile (the tile CNN's weights are shared by all tiles). The mosaic is stretched
over the input image, which places every tile exactly when the tiles cover the image without
padding and overlap (``stride == tile`` dividing the image); otherwise the map is approximate
by up to one tile's padding.

**What is explained** is a list of :class:`Target` (:mod:`.cam_targets`: per class, per CTC
character, per caption word, chosen by the model's declared output kind).

**Live probes** get the maps of every target of the probe image (:func:`probe_gradcam`);
:func:`probe_pass` makes a probe's forward pass and its Grad-CAM together: where the targets are
scored on the model's own pass (classes, CTC characters), that one pass runs with gradients and
serves both (one forward instead of two: a conv_rnn probe took 92 ms for the intermediates plus
142 ms for Grad-CAM's own pass and backward). :func:`explain_image` explains a saved run's image.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from explorer.data.text import START

from .cam_targets import (
    Forward,
    Target,
    caption_targets,
    class_targets,
    ctc_segments,
    ctc_targets,
    scores_own_pass,
    targets_for,
)

__all__ = [
    "Target",
    "CamMap",
    "GradCam",
    "Forward",
    "cam_layer",
    "grad_cam",
    "class_targets",
    "ctc_targets",
    "caption_targets",
    "ctc_segments",
    "targets_for",
    "explain_image",
    "probe_gradcam",
    "probe_pass",
    "GRADCAM_KEY",
    "to_image",
]

#: the probe reports' key (in ``intermediates`` and ``info``) of their Grad-CAM maps
GRADCAM_KEY = "gradcam"


@dataclass
class CamMap:
    """One Grad-CAM map (plain data: what crosses into the UI)."""

    label: str
    index: int
    score: float  # the target's score at this input
    cam: np.ndarray  # float32 (H, W) in [0, 1], at the input image's resolution
    position: int | None = None
    frames: tuple[int, int] | None = None


@dataclass
class GradCam:
    layer: str  # the explained entry of forward_intermediates (its declaration's key)
    title: str  # the declaration's title
    maps: list[CamMap]
    raw: np.ndarray  # float32 (n_targets, h, w): the maps at the activation's resolution, in [0, 1]


def cam_layer(model: nn.Module, image_size: tuple[int, int], shapes: dict[str, tuple[int, ...]]) -> str | None:
    """The last declared ``feature_map`` whose per-sample shape ``shapes[name]`` (C, h, w) has
    h > 1 and w > 1; None when the model declares none."""
    info = model.intermediate_info(image_size)
    spatial = [n for n, d in info.items() if d.kind == "feature_map" and n in shapes and min(shapes[n][-2:]) > 1]
    return spatial[-1] if spatial else None


def grad_cam(
    model: nn.Module,
    x: Tensor,
    targets: Sequence[Target],
    layer: str | None = None,
    forward: Forward | None = None,
) -> GradCam:
    """Grad-CAM maps of one normalised image ``x`` (1, C, H, W), one per target.

    Args:
        layer: the ``forward_intermediates`` key to explain; default :func:`cam_layer`.
        forward: the pass whose output the targets score (see :func:`caption_targets`).

    Raises:
        ValueError: the model declares no spatial feature map (or ``layer`` is not one).
    """
    image_size = (int(x.shape[-2]), int(x.shape[-1]))
    info = model.intermediate_info(image_size)
    was = model.training
    model.eval()
    try:
        with torch.enable_grad():
            if layer is None:
                layer = _default_layer(model, x, image_size)
            if layer not in info or info[layer].kind != "feature_map":
                raise ValueError(f"'{layer}' is not a declared feature map of this model")
            with _captured(model, info[layer].layer) as caught:
                # x needs grad so a frozen (requires_grad=False) encoder still passes gradients on
                out, inter = (forward or model.forward_intermediates)(x.detach().requires_grad_(True))
            return _from_pass(model, image_size, layer, out, inter, caught, targets)
    finally:
        model.train(was)


def _from_pass(
    model: nn.Module,
    image_size: tuple[int, int],
    layer: str,
    out: Tensor,
    inter: dict[str, Tensor],
    caught: list[Tensor],
    targets: Sequence[Target],
) -> GradCam:
    """:func:`grad_cam` on a pass already made with gradients (``out``, ``inter``, the layer's
    module outputs ``caught``)."""
    raw, scores = _cams(out, inter.get(layer), caught, targets)
    maps = [
        CamMap(t.label, t.index, sc, to_image(r, image_size), t.position, t.frames)
        for t, sc, r in zip(targets, scores, raw)
    ]
    return GradCam(layer, model.intermediate_info(image_size)[layer].title, maps, raw)


def _default_layer(model: nn.Module, x: Tensor, image_size: tuple[int, int]) -> str:
    with torch.no_grad():
        _, inter = model.forward_intermediates(x.detach())
    layer = cam_layer(model, image_size, {k: tuple(v.shape[1:]) for k, v in inter.items()})
    if layer is None:
        raise ValueError("this model declares no spatial feature map to explain")
    return layer


@contextmanager
def _captured(model: nn.Module, module_name: str) -> Iterator[list[Tensor]]:
    """The tensor outputs of the module ``module_name`` during the block (every call)."""
    caught: list[Tensor] = []
    module = dict(model.named_modules()).get(module_name)
    if module is None:
        yield caught
        return

    def hook(_m: nn.Module, _inp: Any, output: Any) -> None:
        if torch.is_tensor(output):
            caught.append(output)

    handle = module.register_forward_hook(hook)
    try:
        yield caught
    finally:
        handle.remove()


def _cams(
    out: Tensor, entry: Tensor | None, caught: list[Tensor], targets: Sequence[Target]
) -> tuple[np.ndarray, list[float]]:
    """(n, h, w) maps in [0, 1] at the activation's resolution, and each target's score."""
    act = entry if entry is not None else _single(caught)
    cams, scores = [], []
    for t in targets:
        score = t.score(out)
        grad = _gradient(score, act, entry, caught)  # (1, C, h, w)
        # float64: the channel sum can cancel, and the division by the peak magnifies rounding
        weights = grad[0].double().mean(dim=(1, 2), keepdim=True)  # (C, 1, 1)
        cam = torch.relu((weights * act[0].detach().double()).sum(0))  # (h, w)
        peak = float(cam.max()) if cam.numel() else 0.0
        cams.append((cam / peak if peak > 0 else cam).float().cpu().numpy())
        scores.append(float(score.detach()))
    h, w = act.shape[-2:]
    return (np.stack(cams).astype(np.float32) if cams else np.zeros((0, h, w), np.float32)), scores


def _single(caught: list[Tensor]) -> Tensor:
    if len(caught) != 1 or caught[0].dim() != 4 or caught[0].shape[0] != 1:
        raise ValueError("the explained layer's activation is not in the forward pass's intermediates")
    return caught[0]


def _gradient(score: Tensor, act: Tensor, entry: Tensor | None, caught: list[Tensor]) -> Tensor:
    """d score / d act. When ``act`` is a rendering (a tile mosaic) that the output does not
    depend on, the gradient at the module outputs it was made from, carried onto it."""
    (grad,) = torch.autograd.grad(score, act, retain_graph=True, allow_unused=True)
    if grad is not None:
        return grad
    if entry is None or not caught:
        return torch.zeros_like(act)
    grads = torch.autograd.grad(score, caught, retain_graph=True, allow_unused=True)
    pairs = [(m, g) for m, g in zip(caught, grads) if g is not None]
    if not pairs:
        return torch.zeros_like(act)
    # entry = f(m) with f linear (a layout); its Jacobian-vector product f(g) by a double vjp:
    # v(u) = J^T u is linear in u, so d<v(u), g>/du = J g.
    u = torch.zeros_like(entry, requires_grad=True)
    vs = torch.autograd.grad(entry, [m for m, _ in pairs], grad_outputs=u, create_graph=True, allow_unused=True)
    live = [(v, g) for v, (_, g) in zip(vs, pairs) if v is not None]
    if not live:
        return torch.zeros_like(act)
    (jg,) = torch.autograd.grad([v for v, _ in live], u, grad_outputs=[g for _, g in live], allow_unused=True)
    return jg if jg is not None else torch.zeros_like(act)


def to_image(cam: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """A (h, w) map resized (bilinear, half-pixel centres) to ``image_size`` (H, W), clipped to [0, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(cam, dtype=np.float32))[None, None]
    up = F.interpolate(t, size=image_size, mode="bilinear", align_corners=False)[0, 0]
    return up.clamp_(0.0, 1.0).numpy()


def explain_image(run: Any, image: str | os.PathLike[str] | np.ndarray, target: int | str | None = None) -> GradCam:
    """Grad-CAM of a trained run (:class:`explorer.engine.api.Run`) for one image file or uint8
    (H, W, C) image as the model sees it: per class, character or word (:func:`targets_for`);
    the maps are at the resolution of the model's input (the file after the run's preprocessing).
    """
    img = image if isinstance(image, np.ndarray) else run.input_spec.load_uint8(image)
    x = run.input_spec.to_tensor(torch.from_numpy(np.ascontiguousarray(img))[None].to(run.device))
    labels = list(run.labels)
    start = labels.index(START) if START in labels else None  # the caption vocabulary's START word
    targets, forward = targets_for(run.model, x, labels, target=target, start=start)
    return grad_cam(run.model, x, targets, forward=forward)


def probe_pass(
    model: nn.Module, x: Tensor, forward: Forward, labels: Sequence[str], *, with_gradcam: bool = True, ranked: int = 0
) -> tuple[Tensor, dict[str, Tensor], tuple[np.ndarray, dict[str, Any]] | None]:
    """A probe's ``forward(x)`` (the task's ``forward_intermediates``) and, with
    ``with_gradcam``, its Grad-CAM (:func:`probe_gradcam`'s result, or None). Where the targets
    are scored on that very pass (:func:`scores_own_pass`), it runs once, with gradients, and the
    maps are taken from it; the outputs and intermediates returned are detached. ``model`` is
    expected in eval mode."""
    image_size = (int(x.shape[-2]), int(x.shape[-1]))
    if not with_gradcam or not hasattr(model, "intermediate_info") or not scores_own_pass(model, image_size):
        with torch.no_grad():
            out, inter = forward(x)
        cam = probe_gradcam(model, x, out, inter, labels, ranked=ranked) if with_gradcam else None
        return out, inter, cam
    info = model.intermediate_info(image_size)
    modules = {n: d.layer for n, d in info.items() if d.kind == "feature_map" and d.layer}
    with torch.enable_grad(), _captured_each(model, modules) as caught:
        out, inter = forward(x.detach().requires_grad_(True))  # grad at x: a frozen encoder still passes it
        cam = probe_gradcam(model, x, out, inter, labels, caught=caught, ranked=ranked)
    return out.detach(), {k: v.detach() for k, v in inter.items()}, cam


@contextmanager
def _captured_each(model: nn.Module, modules: dict[str, str]) -> Iterator[dict[str, list[Tensor]]]:
    """:func:`_captured` for several entries at once: entry -> its module's outputs."""
    with ExitStack() as stack:
        yield {name: stack.enter_context(_captured(model, module)) for name, module in modules.items()}


def probe_gradcam(
    model: nn.Module,
    x: Tensor,
    out: Tensor,
    inter: dict[str, Tensor],
    labels: Sequence[str],
    *,
    caught: dict[str, list[Tensor]] | None = None,
    ranked: int = 0,
) -> tuple[np.ndarray, dict[str, Any]] | None:
    """The live probe's Grad-CAM of one image: (maps (n, H, W) float32 in [0, 1], one per target
    of :func:`targets_for`, and their description as a plain dict in the form of a declaration:
    kind ``"gradcam"``, axes (target, y, x), the explained ``layer``, ``extra`` = per map its
    ``labels``, ``indices``, ``positions``, ``frames`` and ``scores``), or None when the model
    has no declared spatial feature map or no targets (e.g. an empty reading).

    ``caught``: ``out`` and ``inter`` come from a pass made with gradients (:func:`probe_pass`),
    with each feature map's module outputs; the maps are taken from that pass when the targets
    are scored on it. ``ranked``: see :func:`targets_for`."""
    image_size = (int(x.shape[-2]), int(x.shape[-1]))
    try:
        layer = cam_layer(model, image_size, {k: tuple(v.shape[1:]) for k, v in inter.items()})
        if layer is None:
            return None
        start = list(labels).index(START) if START in labels else None
        plain = {k: v.detach() for k, v in inter.items()}
        targets, forward = targets_for(model, x, labels, start=start, out=out.detach(), inter=plain, ranked=ranked)
    except (NotImplementedError, ValueError):
        return None
    if not targets:
        return None
    if caught is not None and forward is None and inter[layer].requires_grad:
        result = _from_pass(model, image_size, layer, out, inter, caught.get(layer, []), targets)
    else:
        result = grad_cam(model, x, targets, layer=layer, forward=forward)
    maps = np.stack([m.cam for m in result.maps])
    extra = {
        "labels": [m.label for m in result.maps],
        "indices": [m.index for m in result.maps],
        "positions": [m.position for m in result.maps],
        "frames": [list(m.frames) if m.frames else None for m in result.maps],
        "scores": [m.score for m in result.maps],
    }
    title = f"Grad-CAM of {result.title}"
    info = {"kind": "gradcam", "axes": ["target", "y", "x"], "layer": layer, "title": title, "range": [0.0, 1.0]}
    return maps, {**info, "extra": extra}
