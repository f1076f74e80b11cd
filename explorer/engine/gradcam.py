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

**What is explained** is a list of :class:`Target`, each a ``score(output) -> scalar``. The
builders below make them from what the model declares its output to be, never from a task
name; task knowledge (which outputs are classes, the caption's START token) comes in as
arguments:

- :func:`class_targets` (output kind ``logits``): the predicted or a chosen class;
- :func:`ctc_targets` (``ctc_frames``): one target per decoded character; its score is the sum
  of that character's log-probability over the frames of the best path that emitted it;
- :func:`caption_targets` (``token_logits``): one target per emitted word of the greedy caption;
  its score is that step's logit of the emitted word, recomputed by a teacher-forced pass fed
  the emitted words (the same numbers greedy decoding produced, now with gradients).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from explorer.data.text import START

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
    "to_image",
]

#: ``forward(x) -> (output, intermediates)``; defaults to ``model.forward_intermediates``
Forward = Callable[[Tensor], tuple[Tensor, dict[str, Tensor]]]


@dataclass(frozen=True)
class Target:
    """One thing to explain.

    Attributes:
        label: human text (class name, character, word).
        index: class / character / word id in the output's class axis.
        score: the model's output (batch of one) -> the scalar to explain.
        position: the output token's position (caption word, decoded character), else None.
        frames: CTC frames ``[t0, t1)`` of the best path that emitted the character, else None.
    """

    label: str
    index: int
    score: Callable[[Tensor], Tensor]
    position: int | None = None
    frames: tuple[int, int] | None = None


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
            raw, scores = _cams(out, inter.get(layer), caught, targets)
    finally:
        model.train(was)
    maps = [
        CamMap(t.label, t.index, s, to_image(r, image_size), t.position, t.frames)
        for t, s, r in zip(targets, scores, raw)
    ]
    return GradCam(layer, info[layer].title, maps, raw)


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


# -- targets ---------------------------------------------------------------------------------------


def class_targets(
    out: Tensor, labels: Sequence[str], target: int | str | None = None, classes: int | None = None
) -> list[Target]:
    """The predicted class (argmax of the first ``classes`` outputs, default ``len(labels)``)
    or ``target`` (an index or a label); its score is that class's logit.

    Raises:
        ValueError: ``target`` is not one of the labels.
    """
    k = len(labels) if classes is None else classes
    if target is None:
        cls = int(out.detach()[0, :k].argmax())
    elif isinstance(target, str):
        if target not in labels:
            raise ValueError(f"{target!r} is not one of the classes: {', '.join(labels)}")
        cls = list(labels).index(target)
    else:
        cls = int(target)
        if not 0 <= cls < k:
            raise ValueError(f"class index {cls} is outside [0, {k})")
    return [Target(str(labels[cls]), cls, lambda o, c=cls: o[0, c])]


def ctc_segments(frame_classes: Sequence[int], blank: int = 0) -> list[tuple[int, int, int]]:
    """The best path's emitting runs: (class, t0, t1) per decoded character, ``[t0, t1)`` the
    frames of the run of that class (repeats merged, blanks dropped)."""
    runs: list[tuple[int, int, int]] = []
    for t, c in enumerate(frame_classes):
        c = int(c)
        if runs and runs[-1][0] == c and runs[-1][2] == t:
            runs[-1] = (c, runs[-1][1], t + 1)
        else:
            runs.append((c, t, t + 1))
    return [r for r in runs if r[0] != blank]


def ctc_targets(out: Tensor, charset: Sequence[str], frames: int | None = None, blank: int = 0) -> list[Target]:
    """One target per character of the best-path decoding of CTC frames ``out`` (1, T, classes),
    class ``i`` being ``charset[i - 1]`` (0 = blank); only the first ``frames`` frames count.

    Score of a character: sum over its run's frames of log_softmax(out)[t, class].
    """
    t_valid = out.shape[1] if frames is None else int(frames)
    best = out.detach()[0, :t_valid].argmax(-1).tolist()
    targets = []
    for pos, (c, t0, t1) in enumerate(ctc_segments(best, blank)):

        def score(o: Tensor, c: int = c, t0: int = t0, t1: int = t1) -> Tensor:
            return o[0].float().log_softmax(-1)[t0:t1, c].sum()

        targets.append(Target(str(charset[c - 1]), c, score, position=pos, frames=(t0, t1)))
    return targets


def caption_targets(model: nn.Module, x: Tensor, vocabulary: Sequence[str], start: int) -> tuple[list[Target], Forward]:
    """One target per word of the model's greedy caption of ``x`` (1, C, H, W), and the
    teacher-forced pass that scores them: ``model(x, [start, w1 .. wn])`` gives at step k the
    logits greedy decoding had when it emitted ``w_{k+1}``.

    Args:
        vocabulary: word of each token id.
        start: the START token id the decoder begins with (the task's vocabulary knows it).
    """
    image_size = (int(x.shape[-2]), int(x.shape[-1]))
    with torch.no_grad():
        _, inter = model.forward_intermediates(x)
    key = next(n for n, d in model.intermediate_info(image_size).items() if d.kind == "tokens")
    words = [int(i) for i in inter[key][0].tolist()]
    fed = torch.tensor([[start, *words]], dtype=torch.long, device=x.device)

    def forward(xx: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        logits, _ = model(xx, fed)  # (1, n, V)
        return logits, {}

    targets = [Target(str(vocabulary[w]), w, lambda o, k=k, w=w: o[0, k, w], position=k) for k, w in enumerate(words)]
    return targets, forward


def targets_for(
    model: nn.Module,
    x: Tensor,
    labels: Sequence[str],
    *,
    target: int | str | None = None,
    classes: int | None = None,
    frames: int | None = None,
    start: int | None = None,
) -> tuple[list[Target], Forward | None]:
    """The targets of one image by what the model declares its output to be: ``logits`` -> the
    predicted class or ``target`` (:func:`class_targets`); ``ctc_frames`` -> each decoded
    character (:func:`ctc_targets`, ``frames`` valid frames); ``token_logits`` -> each caption
    word (:func:`caption_targets`, needs the vocabulary's ``start`` token id). Returns the
    targets and the ``forward`` to hand :func:`grad_cam` (None: the default one).

    Raises:
        ValueError: an output kind without targets, a missing ``start``, an unknown ``target``.
    """
    kind = model.output_info((int(x.shape[-2]), int(x.shape[-1]))).kind
    if kind == "token_logits":
        if start is None:
            raise ValueError("per-word Grad-CAM needs the START token id of the vocabulary")
        return caption_targets(model, x, labels, start)
    if target is not None and kind != "logits":
        raise ValueError(f"a target class applies to class scores; this model's output is {kind}")
    with torch.no_grad():
        out = model(x)
    if kind == "logits":
        return class_targets(out, labels, target, classes), None
    if kind == "ctc_frames":
        return ctc_targets(out, labels, frames), None
    raise ValueError(f"no Grad-CAM targets for a model whose output is {kind}")


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
