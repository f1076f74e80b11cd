"""Seeded train/validation splits."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["random_split", "stratified_split"]


def _check_fraction(val_fraction: float) -> float:
    try:
        value = float(val_fraction)
    except (TypeError, ValueError):
        raise ValueError(f"val_fraction must be a number in [0, 1), got {val_fraction!r}") from None
    if not 0.0 <= value < 1.0:  # also rejects NaN
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    return value


def stratified_split(targets: Sequence[str], val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Splits sample indices into train and validation, class by class.

    Each class contributes ``round(n * val_fraction)`` samples to validation, but at least one when
    it has two or more samples (so every class is measured) and never all of them (so every class
    is learned). Classes with a single sample stay in train. The overall validation share can
    therefore differ a little from ``val_fraction`` when there are many small classes.

    Args:
        targets: One class name per sample.
        val_fraction: Share of each class for validation, ``0 <= val_fraction < 1``.
        seed: Random seed; the same inputs and seed always give the same split.

    Returns:
        ``(train, val)`` sorted int64 index arrays that together cover ``range(len(targets))``.

    Raises:
        ValueError: If ``val_fraction`` is out of range.
    """
    fraction = _check_fraction(val_fraction)
    targets = list(targets)
    if fraction == 0.0:
        return np.arange(len(targets), dtype=np.int64), np.empty(0, np.int64)
    by_class: dict[str, list[int]] = {}
    for i, t in enumerate(targets):
        by_class.setdefault(t, []).append(i)
    rng = np.random.default_rng(seed)
    val: list[np.ndarray] = []
    # Sorted class order: the split must not depend on the order classes first appear in.
    for cls in sorted(by_class):
        members = np.asarray(by_class[cls], np.int64)
        n = len(members)
        if n < 2:
            continue
        n_val = min(max(round(n * fraction), 1), n - 1)
        val.append(rng.permutation(members)[:n_val])
    val_idx = np.sort(np.concatenate(val)) if val else np.empty(0, np.int64)
    train_mask = np.ones(len(targets), bool)
    train_mask[val_idx] = False
    return np.flatnonzero(train_mask).astype(np.int64), val_idx


def random_split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Splits ``range(n)`` at random, for targets that are not classes (texts, captions).

    Args:
        n: Number of samples.
        val_fraction: Share for validation, ``0 <= val_fraction < 1``; at least one validation
            sample when ``val_fraction > 0`` and ``n >= 2``, never all of them.
        seed: Random seed.

    Returns:
        ``(train, val)`` sorted int64 index arrays.

    Raises:
        ValueError: If ``val_fraction`` is out of range or ``n`` is negative.
    """
    fraction = _check_fraction(val_fraction)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    n_val = 0 if fraction == 0.0 or n < 2 else min(max(round(n * fraction), 1), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]).astype(np.int64), np.sort(order[:n_val]).astype(np.int64)
