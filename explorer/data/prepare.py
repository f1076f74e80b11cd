"""Decoded pixels -> model input: channel conversion, resizing and the variable-width rules.

This is the one preprocessing path shared by training, evaluation, prediction and ``inspect``;
its order (channels first at full resolution, then a stretch to the target size) is documented
in :func:`prepare_image` so that other clients can reproduce it.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = [
    "RESIZE_MODES",
    "fit_width",
    "is_gray",
    "pad_right",
    "prepare_image",
    "prepare_line_image",
    "resize_image",
    "to_channels",
]

#: Interpolation choices for :func:`resize_image` / :func:`prepare_image`.
RESIZE_MODES: tuple[str, ...] = ("auto", "area", "linear")


def is_gray(img: np.ndarray) -> bool:
    """True for a 2-D image, a single-channel image, or three identical channels."""
    if img.ndim == 2 or img.shape[2] == 1:
        return True
    return bool(np.array_equal(img[:, :, 0], img[:, :, 1]) and np.array_equal(img[:, :, 1], img[:, :, 2]))


def to_channels(img: np.ndarray, channels: int) -> np.ndarray:
    """Converts a uint8 gray or RGB image to ``(H, W, channels)``.

    Gray -> RGB replicates the plane; RGB -> gray uses OpenCV's luminance weights
    (0.299 R + 0.587 G + 0.114 B), which keeps an image with three equal channels unchanged.

    Args:
        img: uint8 ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` (RGB).
        channels: 1 or 3.

    Returns:
        uint8 ``(H, W, channels)``; the input itself when nothing needs converting.
    """
    _check_channels(channels)
    img = _as_hwc(img)
    have = img.shape[2]
    if have == channels:
        return img
    if channels == 3:
        return np.repeat(img, 3, axis=2)
    return cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)[:, :, None]


def _interpolation(src_h: int, src_w: int, height: int, width: int, mode: str) -> int:
    if mode == "area":
        return cv2.INTER_AREA
    if mode == "linear":
        return cv2.INTER_LINEAR
    if mode == "auto":
        # INTER_AREA averages all covered pixels, which is what shrinking needs (no aliasing);
        # when either side grows it degenerates to nearest-neighbour-like blocks, so use linear.
        return cv2.INTER_AREA if height <= src_h and width <= src_w else cv2.INTER_LINEAR
    raise ValueError(f"resize mode must be one of {', '.join(RESIZE_MODES)}, got {mode!r}")


def resize_image(img: np.ndarray, height: int, width: int, mode: str = "auto") -> np.ndarray:
    """Stretches an image to ``(height, width)``, keeping its channel axis.

    Args:
        img: ``(H, W)`` or ``(H, W, C)`` image.
        height: Target height in pixels (>= 1).
        width: Target width in pixels (>= 1).
        mode: ``"area"`` (cv2.INTER_AREA), ``"linear"`` (cv2.INTER_LINEAR) or ``"auto"``:
            area when no side grows, else linear.

    Returns:
        The resized image with the same number of dimensions (a size-1 channel axis is kept);
        the input itself when it already has the target size.
    """
    if height < 1 or width < 1:
        raise ValueError(f"target size must be at least 1x1, got {height}x{width}")
    src_h, src_w = img.shape[:2]
    interpolation = _interpolation(src_h, src_w, height, width, mode)
    if (src_h, src_w) == (height, width):
        return img
    out = cv2.resize(np.ascontiguousarray(img), (width, height), interpolation=interpolation)
    if img.ndim == 3 and out.ndim == 2:  # OpenCV drops a size-1 channel axis
        out = out[:, :, None]
    return out


def prepare_image(img: np.ndarray, *, channels: int, height: int, width: int, resize: str = "auto") -> np.ndarray:
    """Turns a decoded image into the model's uint8 ``(height, width, channels)`` input.

    This is the one preprocessing path shared by training and prediction. The order is fixed and
    documented so that other clients can reproduce it: first convert channels (RGB -> gray by
    luminance, at full resolution), then stretch to the target size with :func:`resize_image`
    (no crop, aspect ratio not kept). Gray -> RGB is done after resizing, which gives identical
    pixels at a third of the work.

    Args:
        img: Output of :func:`decode_image`: uint8 ``(H, W)`` or ``(H, W, 3)`` RGB.
        channels: 1 or 3.
        height: Target height.
        width: Target width.
        resize: ``"auto"``, ``"area"`` or ``"linear"``, see :func:`resize_image`.

    Returns:
        A C-contiguous uint8 array ``(height, width, channels)``.
    """
    _check_channels(channels)
    img = _as_hwc(img)
    if channels == 1:
        out = resize_image(to_channels(img, 1), height, width, resize)
    else:
        out = to_channels(resize_image(img, height, width, resize), 3)
    return np.ascontiguousarray(out)


def fit_width(src_height: int, src_width: int, height: int, *, min_width: int = 1, max_width: int | None = None) -> int:
    """Width of an image scaled to ``height`` with its aspect ratio kept, clamped."""
    w = max(min_width, round(src_width * height / max(src_height, 1)))
    return min(w, max_width) if max_width is not None else w


def prepare_line_image(
    img: np.ndarray,
    *,
    channels: int,
    height: int,
    min_width: int = 1,
    max_width: int | None = None,
    resize: str = "auto",
) -> np.ndarray:
    """Like :func:`prepare_image` for variable-width inputs (text lines, digit strings):
    scaled to ``height`` keeping the aspect ratio, the width clamped to
    ``[min_width, max_width]`` (an over-long line is squeezed, never cut).

    Returns:
        A C-contiguous uint8 array ``(height, w, channels)``.
    """
    img = _as_hwc(img)
    width = fit_width(img.shape[0], img.shape[1], height, min_width=min_width, max_width=max_width)
    return prepare_image(img, channels=channels, height=height, width=width, resize=resize)


def pad_right(img: np.ndarray, width: int) -> np.ndarray:
    """Right-pad an (H, w, C) image to ``width`` by repeating its last column.

    This is the padding rule of variable-width runs (``preprocess["pad"] == "edge"``):
    the background simply continues, so the padded frames look like empty space.
    """
    w = img.shape[1]
    if w >= width:
        return img
    return np.ascontiguousarray(np.concatenate([img, np.repeat(img[:, -1:], width - w, axis=1)], axis=1))


def _check_channels(channels: int) -> None:
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")


def _as_hwc(img: np.ndarray) -> np.ndarray:
    """Validates a uint8 gray/RGB image and returns it as an (H, W, C) view."""
    if img.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {img.dtype}")
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3 or img.shape[2] not in (1, 3) or img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"expected an (H, W), (H, W, 1) or (H, W, 3) image, got shape {img.shape}")
    return img
