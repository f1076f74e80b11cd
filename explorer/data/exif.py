"""EXIF orientation: reading it from an EXIF blob or a JPEG header, and turning pixels upright.

Cameras and phones store portrait photos landscape and say so in the EXIF orientation tag;
:func:`apply_orientation` gives the pixels a viewer shows, and :func:`probe_display_size` the size
they will have, from the header alone.
"""

from __future__ import annotations

import numpy as np

from .headers import jpeg_segments, probe_size, sniff, tiff_ifd0

__all__ = ["apply_orientation", "exif_orientation", "jpeg_orientation", "probe_display_size"]


def probe_display_size(data: bytes) -> tuple[int, int] | None:
    """The size an image is shown at, from its header alone: ``(width, height)`` or None.

    Like :func:`~explorer.data.headers.probe_size`, but width and height are swapped when a JPEG's EXIF orientation turns
    the image by 90 degrees (phones store portrait photos landscape). Only JPEG headers are searched
    for EXIF, as that is where cameras put it; this is what :func:`~explorer.data.decode.decode_image` returns the shape of.
    """
    size = probe_size(data)
    if size is None or sniff(data) != "jpeg":
        return size
    return (size[1], size[0]) if jpeg_orientation(data) >= 5 else size


def jpeg_orientation(data: bytes) -> int:
    """The EXIF orientation (1-8) of a JPEG from its first APP1 Exif segment within ``data``, 1 when absent."""
    for marker, start, end in jpeg_segments(data):
        if marker == 0xE1 and data[start : start + 6] == b"Exif\x00\x00":
            return exif_orientation(data[start:end])
    return 1


def exif_orientation(blob: bytes) -> int:
    """The EXIF orientation (1-8) stored in an EXIF blob, 1 when absent or unreadable."""
    if blob.startswith(b"Exif\x00\x00"):  # JPEG APP1 style prefix; PNG eXIf and OpenCV omit it
        blob = blob[6:]
    value = tiff_ifd0(blob, {274}).get(274, 1)
    return value if 1 <= value <= 8 else 1


def apply_orientation(img: np.ndarray, orientation: int) -> np.ndarray:
    """Turns stored pixels into display orientation (same transforms as OpenCV's own EXIF handling)."""
    if orientation >= 5:  # 5-8 swap the axes first
        img = img.swapaxes(0, 1)
    if orientation in (2, 6):
        img = img[:, ::-1]
    elif orientation in (3, 7):
        img = img[::-1, ::-1]
    elif orientation in (4, 8):
        img = img[::-1]
    return img
