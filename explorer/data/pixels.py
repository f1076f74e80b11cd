"""Decoded pixels of any depth and layout -> 8-bit gray or RGB.

OpenCV's ``IMREAD_UNCHANGED`` result may be 8/16-bit or float, gray, gray + alpha, BGR or BGRA;
:func:`normalize_pixels` brings all of them to the two layouts the rest of the data layer knows.

Memory: the only full-size arrays made here are the uint8 results. Float arithmetic (min-max
scaling, alpha compositing) runs over bands of about :data:`_BAND_VALUES` values at a time, so a
decode at the pixel limit does not add several float copies of the image to its peak memory.
"""

from __future__ import annotations

import cv2
import numpy as np

from .errors import DecodeError

__all__ = ["normalize_pixels"]


#: Values processed per step by the banded float conversions (a few MB of temporaries at most).
_BAND_VALUES = 1 << 20


def _bands(x: np.ndarray) -> list[slice]:
    """Row slices of ``x`` covering about :data:`_BAND_VALUES` values each."""
    row = max(1, x.size // max(1, x.shape[0]))
    step = max(1, _BAND_VALUES // row)
    return [slice(i, i + step) for i in range(0, x.shape[0], step)]


def _finite_range(x: np.ndarray) -> tuple[float, float] | None:
    """(min, max) of the finite values of ``x``, band by band; None when there are none."""
    lo, hi = np.inf, -np.inf
    for band in _bands(x):
        f = x[band].astype(np.float64)
        f = f[np.isfinite(f)]
        if f.size:
            lo, hi = min(lo, float(f.min())), max(hi, float(f.max()))
    return None if lo > hi else (lo, hi)


def _color_to_uint8(x: np.ndarray) -> np.ndarray:
    """Any depth -> uint8. 16-bit is scaled exactly (x * 255 / 65535, rounded); anything else is min-max scaled."""
    if x.dtype == np.uint8:
        return x
    if x.dtype == np.uint16:
        # x * 255 / 65535 = x / 257, which is never halfway between two integers, so OpenCV's float
        # rounding gives exactly round(x * 255 / 65535) (checked for all 65536 values), without temporaries.
        return cv2.convertScaleAbs(x, alpha=1 / 257)
    if x.dtype == np.bool_:
        return x.astype(np.uint8) * 255
    # Float (HDR, float TIFF) and unusual integer depths have no fixed white point: stretch the
    # image's own range. NaN/inf are mapped to the finite extremes first so they cannot spread.
    out = np.zeros(x.shape, np.uint8)
    span = _finite_range(x)
    if span is None or span[1] <= span[0]:
        return out
    lo, hi = span
    for band in _bands(x):
        f = np.nan_to_num(x[band].astype(np.float64), nan=lo, posinf=hi, neginf=lo)
        f -= lo
        f *= 255.0 / (hi - lo)
        out[band] = np.rint(f, out=f)
    return out


def _alpha_to_unit(a: np.ndarray) -> np.ndarray:
    """Alpha of any depth as float32 in [0, 1]."""
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535.0
    if np.issubdtype(a.dtype, np.floating):
        return np.clip(np.nan_to_num(a.astype(np.float32), nan=1.0), 0.0, 1.0)
    return _color_to_uint8(a).astype(np.float32) / 255.0


def _opaque(alpha: np.ndarray) -> bool:
    """True when every alpha value is at its maximum (checked without a full-size temporary)."""
    if alpha.dtype in (np.uint8, np.uint16):
        return int(alpha.min()) == np.iinfo(alpha.dtype).max
    return all(_alpha_to_unit(alpha[band]).min() >= 1.0 for band in _bands(alpha))


def _composite_over_white(color: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Blends uint8 color over a white background, band by band; ``color`` may be overwritten.

    White because transparent parts of icons, scans and drawings are meant to be paper; black
    would invent dark shapes the eye never saw.
    """
    if _opaque(alpha):  # fully opaque: skip the float round trip
        return color
    out = color if color.flags.writeable and color.base is None else color.copy()
    for band in _bands(color):
        a = _alpha_to_unit(alpha[band])
        if out.ndim == 3:
            a = a[..., None]
        f = out[band].astype(np.float32)
        f *= a
        f += 255.0 * (1.0 - a)
        out[band] = np.rint(f, out=f)
    return out


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
