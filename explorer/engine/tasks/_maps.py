"""Maps at the input image's resolution for the tasks' ``inspect`` (Grad-CAM itself is
:mod:`explorer.engine.gradcam`'s)."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["to_size", "normalise01", "sum_to_one"]


def to_size(m: np.ndarray, height: int, width: int) -> np.ndarray:
    """A 2-D map resized (bilinear) to (height, width), float32."""
    return cv2.resize(m.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)


def normalise01(m: np.ndarray) -> np.ndarray:
    """Scaled to [0, 1] by its own range (zeros when flat)."""
    lo, hi = float(m.min()), float(m.max())
    return ((m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)).astype(np.float32)


def sum_to_one(m: np.ndarray) -> np.ndarray:
    """Clipped at 0 and scaled to sum to 1 (uniform when empty)."""
    m = np.clip(m, 0, None)
    s = float(m.sum())
    return m / s if s > 0 else np.full_like(m, 1.0 / m.size)
