"""What Grad-CAM explains: :class:`Target` (a label and a ``score(output) -> scalar``) and the
builders that make them from what the model declares its output to be (never from a task
name; task knowledge such as the caption vocabulary's START id comes in as an argument).

- :func:`class_targets` (output kind ``logits``): the predicted or a chosen class; its logit;
- :func:`ctc_targets` (``ctc_frames``): one target per decoded character; its score is the sum
  of that character's log-probability over the frames of the best path that emitted it;
- :func:`caption_targets` (``token_logits``): one target per emitted word of the greedy caption;
  its score is that step's logit of the emitted word, recomputed by a teacher-forced pass fed
  the emitted words (the same numbers greedy decoding produced, now with gradients);
- :func:`targets_for`: the one of these the model's ``output_info().kind`` calls for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

__all__ = [
    "Target",
    "Forward",
    "class_targets",
    "ctc_segments",
    "ctc_targets",
    "caption_targets",
    "targets_for",
    "scores_own_pass",
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


def caption_targets(
    model: nn.Module, x: Tensor, vocabulary: Sequence[str], start: int, inter: dict[str, Tensor] | None = None
) -> tuple[list[Target], Forward]:
    """One target per word of the model's greedy caption of ``x`` (1, C, H, W), and the
    teacher-forced pass that scores them: ``model(x, [start, w1 .. wn])`` gives at step k the
    logits greedy decoding had when it emitted ``w_{k+1}``.

    Args:
        vocabulary: word of each token id.
        start: the START token id the decoder begins with (the task's vocabulary knows it).
        inter: the intermediates of ``model.forward_intermediates(x)`` when already at hand.
    """
    image_size = (int(x.shape[-2]), int(x.shape[-1]))
    if inter is None:
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
    out: Tensor | None = None,
    inter: dict[str, Tensor] | None = None,
    ranked: int = 0,
) -> tuple[list[Target], Forward | None]:
    """The targets of one image by what the model declares its output to be: ``logits`` -> the
    predicted class or ``target`` (:func:`class_targets`); ``ctc_frames`` -> each decoded
    character (:func:`ctc_targets`, ``frames`` valid frames); ``token_logits`` -> each caption
    word (:func:`caption_targets`, needs the vocabulary's ``start`` token id). ``out`` /
    ``inter``: the model's ``forward_intermediates(x)`` when already at hand. ``ranked`` > 0:
    a classifier's ``ranked`` most probable classes, the predicted one first (other outputs
    ignore it). Returns the targets and the ``forward`` to hand :func:`grad_cam` (None: the
    default one, see :func:`scores_own_pass`).

    Raises:
        ValueError: an output kind without targets, a missing ``start``, an unknown ``target``.
    """
    kind = model.output_info((int(x.shape[-2]), int(x.shape[-1]))).kind
    if kind == "token_logits":
        if start is None:
            raise ValueError("per-word Grad-CAM needs the START token id of the vocabulary")
        return caption_targets(model, x, labels, start, inter)
    if target is not None and kind != "logits":
        raise ValueError(f"a target class applies to class scores; this model's output is {kind}")
    if out is None:
        with torch.no_grad():
            out = model(x)
    if kind == "logits" and ranked > 0 and target is None:
        k = len(labels) if classes is None else classes
        order = torch.argsort(out.detach()[0, :k].float(), descending=True)[:ranked].tolist()
        return [class_targets(out, labels, target=int(c), classes=k)[0] for c in order], None
    if kind == "logits":
        return class_targets(out, labels, target, classes), None
    if kind == "ctc_frames":
        return ctc_targets(out, labels, frames), None
    raise ValueError(f"no Grad-CAM targets for a model whose output is {kind}")


def scores_own_pass(model: nn.Module, image_size: tuple[int, int]) -> bool:
    """Whether :func:`targets_for` scores its targets on the model's own
    ``forward_intermediates`` pass (classes, CTC characters: ``forward`` None), so that one
    pass with gradients serves both the intermediates and Grad-CAM; a caption's words are scored
    by a teacher-forced pass of their own."""
    return model.output_info(image_size).kind in ("logits", "ctc_frames")
