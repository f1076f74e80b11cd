"""Bytes -> pixels: robust image decoding and the single preprocessing path.

Everything that turns an image file into model input goes through this module, so
training, evaluation, prediction and ``inspect`` see exactly the same pixels:

* :func:`read_image` / :func:`decode_image` turn a file or its bytes into a uint8 array,
  ``(H, W)`` for gray sources or ``(H, W, 3)`` in **RGB** order. 16-bit and float data are
  brought to 8 bits, alpha is composited over white, EXIF orientation is applied.
  Anything unusable raises :class:`DecodeError` whose message is a short reason for the user.
* :func:`prepare_image` turns such an array into the model's ``(H, W, C)`` uint8 input.

Decoding is done by OpenCV from an in-memory buffer (``cv2.imdecodeWithMetadata``), never
by ``cv2.imread``: reading the bytes ourselves works with any file name (``imread`` fails on
non-ASCII paths on Windows) and lets us check sizes and headers before OpenCV allocates.

The parts live beside this module and are re-exported here: header probes in
:mod:`~explorer.data.headers`, EXIF orientation in :mod:`~explorer.data.exif`, depth and alpha
handling in :mod:`~explorer.data.pixels`, model-input preparation in :mod:`~explorer.data.prepare`.
"""

from __future__ import annotations

import os
import stat

import cv2
import numpy as np

from .errors import DecodeError
from .exif import apply_orientation, exif_orientation, probe_display_size
from .headers import FORMAT_NAMES, jpeg_is_complete, probe_size, sniff
from .pixels import normalize_pixels
from .prepare import (
    RESIZE_MODES,
    fit_width,
    is_gray,
    pad_right,
    prepare_image,
    prepare_line_image,
    resize_image,
    to_channels,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "MAX_FILE_BYTES",
    "RESIZE_MODES",
    "DecodeError",
    "check_file",
    "decode_image",
    "fit_width",
    "is_gray",
    "pad_right",
    "prepare_image",
    "prepare_line_image",
    "probe_display_size",
    "probe_size",
    "read_image",
    "resize_image",
    "to_channels",
]

#: File suffixes (lower case) that are treated as images when scanning folders. All of them are
#: decoded by the OpenCV build this project requires; the decoder itself goes by content, not name.
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".tif", ".tiff", ".webp", ".gif",
        ".pbm", ".pgm", ".ppm", ".pnm", ".avif",
    }
)  # fmt: skip

#: Largest image (width * height) that is decoded. Bigger ones are refused from their header alone,
#: so a hostile or broken file cannot make us allocate gigabytes.
DEFAULT_MAX_PIXELS = 40_000_000

#: Files larger than this are refused before they are read into memory.
MAX_FILE_BYTES = 512 * 1024 * 1024

# OpenCV logs a warning or error line on stderr for every broken file it is given (and libpng
# prints its own). Those files are reported to the user as problems by this layer, so the extra
# lines are only noise, and they would interleave with a CLI's output. A user who wants OpenCV's
# logging can still set OPENCV_LOG_LEVEL, which we then leave alone.
if "OPENCV_LOG_LEVEL" not in os.environ:
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def decode_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decodes an encoded image into 8-bit gray or RGB pixels.

    The header is checked against ``max_pixels`` before OpenCV sees the data, JPEG files must end
    with their EOI marker (libjpeg would silently gray-fill a truncated file), 16-bit data is scaled
    to 8 bits, float data is min-max scaled, alpha is composited over white, and the EXIF
    orientation is applied.

    Args:
        data: The encoded file content.
        max_pixels: Largest accepted ``width * height``.

    Returns:
        A C-contiguous uint8 array, ``(H, W)`` for gray sources or ``(H, W, 3)`` in RGB order.

    Raises:
        DecodeError: If the data is empty, not a known image, truncated, corrupt or too large.
    """
    if not data:
        raise DecodeError("empty file")
    kind = sniff(data)
    size = probe_size(data)
    if size is not None and size[0] * size[1] > max_pixels:
        raise DecodeError(f"image is {size[0]}x{size[1]} pixels, over the limit of {max_pixels}")
    if kind == "jpeg" and not jpeg_is_complete(data):
        raise DecodeError("truncated JPEG data")

    # IMREAD_UNCHANGED keeps alpha and 16-bit depth, and (except inside TIFF, whose decoder always
    # honours its orientation tag) leaves EXIF orientation to us, so every format is handled alike.
    try:
        img, types, blobs = cv2.imdecodeWithMetadata(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:  # OpenCV raises on some malformed input instead of returning None
        raise DecodeError(_undecodable(kind)) from exc
    if img is None or img.size == 0:
        raise DecodeError(_undecodable(kind))
    height, width = img.shape[:2]
    if height * width > max_pixels:  # formats whose header we could not probe
        raise DecodeError(f"image is {width}x{height} pixels, over the limit of {max_pixels}")

    img = normalize_pixels(img)
    if kind != "tiff":
        for kind_code, blob in zip(types, blobs, strict=False):
            if kind_code == cv2.IMAGE_METADATA_EXIF:
                img = apply_orientation(img, exif_orientation(np.asarray(blob, np.uint8).tobytes()))
                break
    return np.ascontiguousarray(img)


def _undecodable(kind: str | None) -> str:
    if kind is None:
        return "not a decodable image (unknown or corrupt format)"
    return f"truncated or corrupt {FORMAT_NAMES[kind]} data"


def check_file(path: str) -> os.stat_result:
    """Checks, without reading it, that ``path`` is a regular file that can be opened as an image.

    The one place that words why a path is no file at all; folder scans report it per file and
    :func:`read_image` raises it.

    Returns:
        The file's ``os.stat`` result (symbolic links followed).

    Raises:
        DecodeError: For missing files, broken symbolic links, directories, special files (a FIFO
            would block a read forever) and paths that cannot be stat'ed.
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        if os.path.islink(path):
            raise DecodeError("broken symbolic link") from exc
        if isinstance(exc, FileNotFoundError):
            raise DecodeError("file not found") from exc
        raise DecodeError(f"cannot read file: {exc.strerror or exc}") from exc
    if stat.S_ISDIR(st.st_mode):
        raise DecodeError("is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise DecodeError("not a regular file")
    return st


def read_image(path: str | os.PathLike, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Reads and decodes one image file (any file name, including non-ASCII ones).

    Args:
        path: The file to read.
        max_pixels: Largest accepted ``width * height``.

    Returns:
        The same as :func:`decode_image`.

    Raises:
        DecodeError: For missing files, broken symbolic links, directories, special files (a FIFO
            would block forever), files over :data:`MAX_FILE_BYTES`, unreadable files, and everything
            :func:`decode_image` refuses.
    """
    p = os.fspath(path)
    st = check_file(p)
    if st.st_size > MAX_FILE_BYTES:
        raise DecodeError(f"file is {st.st_size / 2**20:.0f} MiB, over the limit of {MAX_FILE_BYTES // 2**20} MiB")
    try:
        with open(p, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)  # bounded even if the file grew since stat()
    except OSError as exc:
        raise DecodeError(f"cannot read file: {exc.strerror or exc}") from exc
    if len(data) > MAX_FILE_BYTES:
        raise DecodeError(f"file is over the limit of {MAX_FILE_BYTES // 2**20} MiB")
    return decode_image(data, max_pixels=max_pixels)
