"""Seeded train/validation splits (explorer.data.split)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from explorer.data import random_split, stratified_split


def _targets() -> list[str]:
    return ["a"] * 50 + ["b"] * 10 + ["c"] * 2 + ["d"] + ["e"] * 3


def test_partition_and_per_class_properties() -> None:
    targets = _targets()
    train, val = stratified_split(targets, 0.2, seed=0)
    assert train.dtype == np.int64 and val.dtype == np.int64
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(len(targets)))
    assert not set(train.tolist()) & set(val.tolist())
    assert (np.diff(train) > 0).all() and (np.diff(val) > 0).all()
    val_counts = Counter(targets[i] for i in val)
    train_counts = Counter(targets[i] for i in train)
    assert val_counts == {"a": 10, "b": 2, "c": 1, "e": 1}  # round(n * 0.2), at least 1 for n >= 2
    assert train_counts["d"] == 1  # a single sample stays in train
    assert all(train_counts[c] >= 1 for c in set(targets))  # every class is learned


def test_deterministic_and_seed_dependent() -> None:
    targets = _targets()
    first = stratified_split(targets, 0.3, seed=7)
    again = stratified_split(targets, 0.3, seed=7)
    other = stratified_split(targets, 0.3, seed=8)
    assert all(np.array_equal(x, y) for x, y in zip(first, again, strict=True))
    assert not np.array_equal(first[1], other[1])


def test_class_order_of_appearance_does_not_matter() -> None:
    targets = ["x", "y"] * 10
    swapped = ["y", "x"] * 10  # same classes, other first appearance
    _, val = stratified_split(targets, 0.5, seed=1)
    _, val_swapped = stratified_split([{"x": "y", "y": "x"}[t] for t in swapped], 0.5, seed=1)
    assert np.array_equal(val, val_swapped)


def test_zero_fraction_and_tiny_classes() -> None:
    train, val = stratified_split(["a", "a", "b"], 0.0, seed=0)
    assert train.tolist() == [0, 1, 2] and val.size == 0
    train, val = stratified_split(["a", "a"], 0.01, seed=0)
    assert len(train) == 1 and len(val) == 1
    train, val = stratified_split([], 0.2, seed=0)
    assert train.size == 0 and val.size == 0


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan"), "x"])
def test_invalid_fraction(bad: object) -> None:
    with pytest.raises(ValueError, match="val_fraction"):
        stratified_split(["a", "a"], bad, seed=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="val_fraction"):
        random_split(4, bad, seed=0)  # type: ignore[arg-type]


def test_random_split() -> None:
    train, val = random_split(10, 0.25, seed=3)
    assert len(val) == 2 and sorted(np.concatenate([train, val]).tolist()) == list(range(10))
    assert np.array_equal(val, random_split(10, 0.25, seed=3)[1])
    assert random_split(1, 0.5, seed=0)[1].size == 0
    assert random_split(5, 0.0, seed=0)[1].size == 0
    with pytest.raises(ValueError, match="n must be"):
        random_split(-1, 0.2, seed=0)
