"""Decoded pixels of any depth and layout -> 8-bit gray or RGB.

OpenCV's ``IMREAD_UNCHANGED`` result may be 8/16-bit or float, gray, gray + alpha, BGR or BGRA;
:func:`normalize_pixels` brings all of them to the two layouts the rest of the data layer knows.
"""

from __future__ import annotations

import cv2
import numpy as np

from .errors import DecodeError

__all__ = ["normalize_pixels"]


def _color_to_uint8(x: np.ndarray) -> np.ndarray:
    """Any depth -> uint8. 16-bit is scaled exactly (x * 255 / 65535, rounded); anything else is min-max scaled."""
    if x.dtype == np.uint8:
        return x
    if x.dtype == np.uint16:
        # Integer arithmetic gives round(x * 255 / 65535) without float error.
        return ((x.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if x.dtype == np.bool_:
        return x.astype(np.uint8) * 255
    # Float (HDR, float TIFF) and unusual integer depths have no fixed white point: stretch the
    # image's own range. NaN/inf are mapped to the finite extremes first so they cannot spread.
    f = x.astype(np.float64)
    finite = np.isfinite(f)
    if not finite.any():
        return np.zeros(x.shape, np.uint8)
    lo, hi = float(f[finite].min()), float(f[finite].max())
    f = np.nan_to_num(f, nan=lo, posinf=hi, neginf=lo)
    if hi <= lo:
        return np.zeros(x.shape, np.uint8)
    return np.rint((f - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def _alpha_to_unit(a: np.ndarray) -> np.ndarray:
    """Alpha of any depth as float32 in [0, 1]."""
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535.0
    if np.issubdtype(a.dtype, np.floating):
        return np.clip(np.nan_to_num(a.astype(np.float32), nan=1.0), 0.0, 1.0)
    return _color_to_uint8(a).astype(np.float32) / 255.0


def _composite_over_white(color: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Blends uint8 color over a white background.

    White because transparent parts of icons, scans and drawings are meant to be paper; black
    would invent dark shapes the eye never saw.
    """
    a = _alpha_to_unit(alpha)
    if a.min() >= 1.0:  # fully opaque: skip the float round trip
        return color
    if color.ndim == 3:
        a = a[..., None]
    out = color.astype(np.float32) * a + 255.0 * (1.0 - a)
    return np.rint(out).astype(np.uint8)


def normalize_pixels(img: np.ndarray) -> np.ndarray:
    """OpenCV's IMREAD_UNCHANGED result -> uint8 gray (H, W) or RGB (H, W, 3)."""
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 2:
        return _color_to_uint8(img)
    if img.ndim != 3:
        raise DecodeError(f"unsupported image layout {img.shape}")
    channels = img.shape[2]
    if channels == 2:  # gray + alpha
        return _composite_over_white(_color_to_uint8(img[:, :, 0]), img[:, :, 1])
    if channels == 3:
        return cv2.cvtColor(_color_to_uint8(img), cv2.COLOR_BGR2RGB)
    if channels == 4:
        rgb = cv2.cvtColor(_color_to_uint8(np.ascontiguousarray(img[:, :, :3])), cv2.COLOR_BGR2RGB)
        return _composite_over_white(rgb, img[:, :, 3])
    raise DecodeError(f"unsupported number of channels: {channels}")
