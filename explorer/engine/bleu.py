"""Corpus BLEU (Papineni et al. 2002), as NLTK's ``corpus_bleu`` computes it.

Clipped n-gram precisions are summed over the corpus; the brevity penalty uses, per
hypothesis, the reference length closest to it (the shorter on ties). No smoothing:
a corpus without a single matching n-gram of some order scores 0. Scores here are
on a 0-100 scale.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

__all__ = ["corpus_bleu", "bleu_scores"]


def _ngrams(tokens: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def corpus_bleu(
    references: Sequence[Sequence[Sequence[str]]], hypotheses: Sequence[Sequence[str]], max_n: int = 4
) -> float:
    """BLEU-``max_n`` (uniform weights) of tokenised hypotheses against their references, 0-100."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} reference sets for {len(hypotheses)} hypotheses")
    matches = [0] * max_n
    totals = [0] * max_n
    hyp_len = ref_len = 0
    for refs, hyp in zip(references, hypotheses):
        hyp_len += len(hyp)
        ref_len += min((len(r) for r in refs), key=lambda rl: (abs(rl - len(hyp)), rl), default=0)
        for n in range(1, max_n + 1):
            counts = _ngrams(hyp, n)
            best: Counter[tuple[str, ...]] = Counter()
            for r in refs:
                best |= _ngrams(r, n)
            matches[n - 1] += sum(min(c, best[g]) for g, c in counts.items())
            totals[n - 1] += max(len(hyp) - n + 1, 1)  # as NLTK: a too-short hypothesis still counts one
    if hyp_len == 0 or any(m == 0 for m in matches):
        return 0.0
    log_p = sum(math.log(m / t) for m, t in zip(matches, totals)) / max_n
    bp = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return 100.0 * bp * math.exp(log_p)


def bleu_scores(references: Sequence[Sequence[Sequence[str]]], hypotheses: Sequence[Sequence[str]]) -> dict[str, float]:
    """``bleu1`` .. ``bleu4`` on a 0-100 scale."""
    return {f"bleu{n}": corpus_bleu(references, hypotheses, n) for n in range(1, 5)}
