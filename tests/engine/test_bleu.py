"""BLEU equals the reference implementation (NLTK's corpus_bleu) on random corpora."""

from __future__ import annotations

import random
import warnings

import pytest

from explorer.engine.bleu import bleu_scores, corpus_bleu

nltk_bleu = pytest.importorskip("nltk.translate.bleu_score")


def test_equals_nltk_on_random_corpora() -> None:
    rng = random.Random(0)
    words = "a b c d e f g h".split()
    for _ in range(300):
        refs = [
            [[rng.choice(words) for _ in range(rng.randint(1, 9))] for _ in range(rng.randint(1, 3))]
            for _ in range(rng.randint(1, 6))
        ]
        hyps = [[rng.choice(words) for _ in range(rng.randint(1, 9))] for _ in refs]
        for n in range(1, 5):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # NLTK warns when an order has no overlap (score 0)
                expected = 100 * nltk_bleu.corpus_bleu(refs, hyps, weights=tuple([1 / n] * n))
            assert corpus_bleu(refs, hyps, n) == pytest.approx(expected, abs=1e-9)


def test_perfect_and_hopeless() -> None:
    refs = [[["three", "one", "four", "one"]], [["one", "five", "nine", "two"]]]
    assert bleu_scores(refs, [r[0] for r in refs])["bleu4"] == pytest.approx(100.0)
    assert corpus_bleu(refs, [["x"], ["y"]], 1) == 0.0
