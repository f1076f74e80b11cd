"""CTC decoding and text metrics against hand-worked cases and brute force."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from explorer.engine.ctc import (
    alignment_ops,
    cer,
    char_confusion,
    edit_distance,
    encode,
    greedy_decode,
    greedy_decode_batch,
    prefix_beam_search,
    required_frames,
)

CHARSET = ["a", "b", "c"]


def _frames(path: list[int], classes: int = 4, sharp: float = 0.9) -> np.ndarray:
    lp = np.full((len(path), classes), (1 - sharp) / (classes - 1))
    lp[np.arange(len(path)), path] = sharp
    return np.log(lp)


def test_greedy_merges_repeats_and_drops_blanks() -> None:
    text, conf = greedy_decode(_frames([1, 1, 0, 1, 2, 2, 0, 3]), CHARSET)
    assert text == "aabc"
    assert conf == pytest.approx(0.9**8)


def test_batch_greedy_equals_the_per_image_decoder() -> None:
    rng = np.random.default_rng(0)
    logits = torch.from_numpy(rng.normal(size=(6, 12, 4))).float()
    lengths = torch.tensor([12, 7, 1, 12, 3, 9])
    batch = greedy_decode_batch(logits, lengths)
    for i in range(6):
        expected = encode(greedy_decode(logits[i, : lengths[i]].log_softmax(-1).numpy(), CHARSET)[0], CHARSET)
        got = [int(v) for v in batch[i] if v != 0]
        assert got == expected


def _brute_force(lp: np.ndarray, charset: list[str]) -> dict[str, float]:
    """Sum of probabilities of every alignment, per collapsed text."""
    totals: dict[str, float] = {}
    for path in itertools.product(range(lp.shape[1]), repeat=lp.shape[0]):
        ids = [c for i, c in enumerate(path) if c != 0 and (i == 0 or c != path[i - 1])]
        text = "".join(charset[c - 1] for c in ids)
        totals[text] = totals.get(text, 0.0) + math.exp(sum(lp[t, c] for t, c in enumerate(path)))
    return totals


def test_prefix_beam_search_finds_the_most_probable_text() -> None:
    rng = np.random.default_rng(3)
    for _ in range(5):
        lp = torch.from_numpy(rng.normal(size=(5, 4)) * 1.5).log_softmax(-1).numpy()
        exact = _brute_force(lp, CHARSET)
        best_text = max(exact, key=exact.get)
        cands = prefix_beam_search(lp, CHARSET, beam=64, prune=-1e9)
        assert cands[0][0] == best_text
        assert cands[0][1] == pytest.approx(exact[best_text], rel=1e-6)


def test_beam_width_one_keeps_a_single_hypothesis() -> None:
    lp = _frames([1, 0, 2, 3])
    assert [t for t, _ in prefix_beam_search(lp, CHARSET, beam=1)] == ["abc"]


def test_edit_distance_cer_and_alignment() -> None:
    assert edit_distance("kitten", "sitting") == 3
    assert cer(["abc", "aa"], ["abd", "aa"]) == pytest.approx(1 / 5)
    assert cer(["abc"], ["abc"]) == 0.0
    ops = alignment_ops("abc", "axc")
    assert ("sub", "b", "x") in ops and sum(op == "=" for op, _, _ in ops) == 2
    conf = char_confusion(["38", "33"], ["88", "3"])
    assert conf["substitutions"] == {"3->8": 1}
    assert conf["deletions"] == {"3": 1}
    assert required_frames("aab") == 4 and required_frames("abc") == 3
