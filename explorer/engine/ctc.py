"""CTC decoding and text metrics.

Index 0 is the CTC blank; character ``charset[i]`` is class ``i + 1``. Decoders take
per-frame probabilities or log-probabilities of one image, ``(T, classes)``, already
cut to the image's own number of frames.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np
import torch

__all__ = [
    "BLANK",
    "encode",
    "decode_indices",
    "greedy_decode",
    "greedy_decode_batch",
    "prefix_beam_search",
    "edit_distance",
    "alignment_ops",
    "cer",
    "required_frames",
    "char_confusion",
]

BLANK = 0


def encode(text: str, charset: Sequence[str]) -> list[int]:
    index = {c: i + 1 for i, c in enumerate(charset)}
    return [index[c] for c in text]


def decode_indices(ids: Sequence[int], charset: Sequence[str]) -> str:
    return "".join(charset[i - 1] for i in ids if i != BLANK)


def required_frames(text: str) -> int:
    """Fewest CTC frames that can emit ``text``: one per character plus a blank
    between each pair of equal neighbours."""
    return len(text) + sum(1 for a, b in zip(text, text[1:]) if a == b)


def greedy_decode(log_probs: np.ndarray, charset: Sequence[str]) -> tuple[str, float]:
    """Best path: argmax per frame, merge repeats, drop blanks.

    Returns the text and the best path's probability (product of the frame maxima).
    """
    lp = np.asarray(log_probs, dtype=np.float64)
    if lp.size == 0:
        return "", 1.0
    if lp.max() > 0:  # probabilities were given
        lp = np.log(np.clip(lp, 1e-30, None))
    best = lp.argmax(axis=1)
    ids = [int(c) for i, c in enumerate(best) if c != BLANK and (i == 0 or c != best[i - 1])]
    return decode_indices(ids, charset), float(math.exp(lp.max(axis=1).sum()))


@torch.no_grad()
def greedy_decode_batch(logits: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Vectorised best path for a batch, on the logits' device, with no host sync.

    Args:
        logits: (B, T, classes).
        lengths: (B,) valid frames per sample.

    Returns:
        (B, T) int64: the decoded class ids left-aligned, 0 (blank) after the end.
    """
    b, t, _ = logits.shape
    best = logits.argmax(-1)  # (B, T)
    frame = torch.arange(t, device=logits.device).expand(b, t)
    prev = torch.cat([torch.full_like(best[:, :1], -1), best[:, :-1]], dim=1)
    keep = (best != BLANK) & (best != prev) & (frame < lengths.view(-1, 1))
    pos = keep.long().cumsum(1) - 1  # target slot of each kept frame
    out = torch.zeros_like(best)
    out.scatter_(
        1, torch.where(keep, pos, torch.full_like(pos, t - 1)), torch.where(keep, best, torch.zeros_like(best))
    )
    # A non-kept frame writes 0 into slot t-1; a kept frame written there would be the t-th
    # symbol, which needs every frame kept, so nothing real is lost.
    return out


def _logsumexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))


def prefix_beam_search(
    log_probs: np.ndarray, charset: Sequence[str], beam: int = 8, prune: float = -12.0
) -> list[tuple[str, float]]:
    """CTC prefix beam search (Hannun et al. 2014), without a language model.

    Args:
        log_probs: (T, classes) log-probabilities of one image.
        charset: characters of classes 1..N.
        beam: prefixes kept per frame.
        prune: characters whose frame log-probability is below this are not extended.

    Returns:
        Up to ``beam`` (text, probability) pairs, best first; the probability sums over
        every alignment of the text.
    """
    lp = np.asarray(log_probs, dtype=np.float64)
    # prefix -> (log P ending in blank, log P ending in non-blank)
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, -math.inf)}
    for t in range(lp.shape[0]):
        frame = lp[t]
        candidates = [c for c in range(1, frame.shape[0]) if frame[c] >= prune] or [int(frame[1:].argmax()) + 1]
        nxt: dict[tuple[int, ...], list[float]] = defaultdict(lambda: [-math.inf, -math.inf])
        for prefix, (pb, pnb) in beams.items():
            total = _logsumexp(pb, pnb)
            e = nxt[prefix]  # stay on the same prefix through a blank
            e[0] = _logsumexp(e[0], total + frame[BLANK])
            last = prefix[-1] if prefix else None
            for c in candidates:
                p = frame[c]
                if c == last:
                    e[1] = _logsumexp(e[1], pnb + p)  # repeated symbol without blank: collapses
                    ext = nxt[prefix + (c,)]
                    ext[1] = _logsumexp(ext[1], pb + p)  # blank in between: a new symbol
                else:
                    ext = nxt[prefix + (c,)]
                    ext[1] = _logsumexp(ext[1], total + p)
        ranked = sorted(nxt.items(), key=lambda kv: -_logsumexp(*kv[1]))[:beam]
        beams = {k: (v[0], v[1]) for k, v in ranked}
    out = [(decode_indices(list(k), charset), math.exp(_logsumexp(*v))) for k, v in beams.items()]
    return sorted(out, key=lambda kv: -kv[1])


def edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Levenshtein distance (insertions, deletions, substitutions all cost 1)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def alignment_ops(ref: str, hyp: str) -> list[tuple[str, str, str]]:
    """One minimal edit script: ("=", r, h), ("sub", r, h), ("del", r, ""), ("ins", "", h)."""
    n, m = len(ref), len(hyp)
    d = np.zeros((n + 1, m + 1), dtype=np.int64)
    d[:, 0] = np.arange(n + 1)
    d[0, :] = np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i, j] = min(d[i - 1, j] + 1, d[i, j - 1] + 1, d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]))
    ops: list[tuple[str, str, str]] = []
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and d[i, j] == d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]):
            ops.append(("=" if ref[i - 1] == hyp[j - 1] else "sub", ref[i - 1], hyp[j - 1]))
            i, j = i - 1, j - 1
        elif i > 0 and d[i, j] == d[i - 1, j] + 1:
            ops.append(("del", ref[i - 1], ""))
            i -= 1
        else:
            ops.append(("ins", "", hyp[j - 1]))
            j -= 1
    return ops[::-1]


def cer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Character error rate: total edit distance over total reference characters."""
    errors = sum(edit_distance(r, h) for r, h in zip(refs, hyps))
    chars = sum(len(r) for r in refs)
    return errors / chars if chars else float(errors > 0)


def char_confusion(refs: Sequence[str], hyps: Sequence[str], top: int = 10) -> dict[str, object]:
    """Which characters are confused: the most frequent substitutions ("3->8"),
    deletions and insertions, and the error rate per reference character."""
    subs: Counter[str] = Counter()
    dels: Counter[str] = Counter()
    ins: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    wrong: Counter[str] = Counter()
    for r, h in zip(refs, hyps):
        for op, a, b in alignment_ops(r, h):
            if a:
                seen[a] += 1
            if op == "sub":
                subs[f"{a}->{b}"] += 1
                wrong[a] += 1
            elif op == "del":
                dels[a] += 1
                wrong[a] += 1
            elif op == "ins":
                ins[b] += 1
    return {
        "substitutions": dict(subs.most_common(top)),
        "deletions": dict(dels.most_common(top)),
        "insertions": dict(ins.most_common(top)),
        "per_char_error": {c: wrong[c] / n for c, n in sorted(seen.items())},
    }
