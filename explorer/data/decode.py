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

Bounds (declared in :mod:`~explorer.data.limits`), in the order they apply to a file:

1. ``stat`` first: special files are refused unopened, and a file over
   :func:`~explorer.data.limits.file_bytes_limit` is refused unread (a 6 GB sparse file costs nothing).
2. The header is probed with bounded reads (:mod:`~explorer.data.headers`, :mod:`~explorer.data.tiff`)
   and checked against ``max_pixels`` and the decoded-bytes budget before the rest is read.
3. :func:`decode_image` probes the in-memory bytes again and refuses before OpenCV sees them. A
   file whose container is not one of PNG, JPEG, BMP, GIF, WebP, TIFF/BigTIFF, netpbm (P1-P7) or
   AVIF is refused as "not a decodable image" even if OpenCV could decode it (Sun raster, HDR, PFM,
   JPEG 2000...): their headers are not probed, so their size could not be bounded beforehand.
   The same goes for a known container whose header cannot be read.

Compressed metadata (PNG iTXt/zTXt/iCCP) is left to libpng, which stops inflating a chunk at its
8 MB user-chunk limit; ``tests/data/test_hostile.py`` measures that a 600 MB zlib bomb in each of
them leaves the peak memory of a decode flat.

The parts live beside this module and are re-exported here: header probes in
:mod:`~explorer.data.headers`, EXIF orientation in :mod:`~explorer.data.exif`, depth and alpha
handling in :mod:`~explorer.data.pixels`, model-input preparation in :mod:`~explorer.data.prepare`.
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

import cv2
import numpy as np

from .errors import DecodeError
from .exif import apply_orientation, exif_orientation, probe_display_size
from .headers import FORMAT_NAMES, jpeg_is_complete, probe_header, probe_size, sniff
from .limits import DEFAULT_MAX_PIXELS, MAX_FILE_BYTES, check_header, file_bytes_limit, file_too_big
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
from .reader import HeaderReader, ImageHeader

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "MAX_FILE_BYTES",
    "RESIZE_MODES",
    "DecodeError",
    "check_file",
    "decode_image",
    "probe_file",
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

# OpenCV logs a warning or error line on stderr for every broken file it is given (and libpng
# prints its own). Those files are reported to the user as problems by this layer, so the extra
# lines are only noise, and they would interleave with a CLI's output. A user who wants OpenCV's
# logging can still set OPENCV_LOG_LEVEL, which we then leave alone.
if "OPENCV_LOG_LEVEL" not in os.environ:
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def decode_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decodes an encoded image into 8-bit gray or RGB pixels.

    The header is checked against ``max_pixels`` and the decoded-bytes budget before OpenCV sees
    the data (unknown containers and unreadable headers are refused), JPEG files must end
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
    if kind is None:  # OpenCV might decode it, but nothing bounds its size beforehand
        raise DecodeError(_undecodable(None))
    header = probe_header(HeaderReader.of_bytes(data))
    if header is not None:
        check_header(header, max_pixels)
    if kind == "jpeg" and not jpeg_is_complete(data):
        raise DecodeError("truncated JPEG data")
    if header is None:
        raise DecodeError(_undecodable(kind))

    # IMREAD_UNCHANGED keeps alpha and 16-bit depth, and (except inside TIFF, whose decoder always
    # honours its orientation tag) leaves EXIF orientation to us, so every format is handled alike.
    try:
        img, types, blobs = cv2.imdecodeWithMetadata(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:  # OpenCV raises on some malformed input instead of returning None
        raise DecodeError(_undecodable(kind)) from exc
    if img is None or img.size == 0:
        raise DecodeError(_undecodable(kind))
    height, width = img.shape[:2]
    if height * width > max_pixels:  # a decoder that disagrees with the header it was given
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


def _open_checked(path: str, max_pixels: int) -> tuple[BinaryIO, int, ImageHeader | None]:
    """Opens ``path`` after the size check and probes its header with bounded reads.

    Returns the open file, the most bytes that may be read from it, and the header (None when it
    could not be probed: :func:`decode_image` then decides on the bytes). Raises DecodeError (the
    file is closed) for every refusal.
    """
    st = check_file(path)
    limit = file_bytes_limit(max_pixels, MAX_FILE_BYTES)
    if st.st_size > limit:
        raise file_too_big(st.st_size, limit)
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise DecodeError(f"cannot read file: {exc.strerror or exc}") from exc
    try:
        header = probe_header(HeaderReader.of_file(f, st.st_size))
        if header is not None:
            check_header(header, max_pixels)
    except OSError as exc:
        f.close()
        raise DecodeError(f"cannot read file: {exc.strerror or exc}") from exc
    except BaseException:
        f.close()
        raise
    return f, limit, header


def probe_file(path: str | os.PathLike, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageHeader | None:
    """Checks a file as :func:`read_image` does before decoding, reading its header only.

    Returns:
        The header (stored size, before EXIF rotation), or None when the header cannot be read
        without decoding.

    Raises:
        DecodeError: For everything :func:`read_image` refuses before reading the whole file.
    """
    f, _limit, header = _open_checked(os.fspath(path), max_pixels)
    f.close()
    return header


def read_image(path: str | os.PathLike, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Reads and decodes one image file (any file name, including non-ASCII ones).

    Nothing is read before the file's size passed the check, and only its header (bounded reads)
    before its image size passed the limits; see the module docstring.

    Args:
        path: The file to read.
        max_pixels: Largest accepted ``width * height``.

    Returns:
        The same as :func:`decode_image`.

    Raises:
        DecodeError: For missing files, broken symbolic links, directories, special files (a FIFO
            would block forever), files over :func:`~explorer.data.limits.file_bytes_limit`,
            unreadable files, and everything :func:`decode_image` refuses.
    """
    f, limit, _header = _open_checked(os.fspath(path), max_pixels)
    try:
        with f:
            f.seek(0)
            data = f.read(limit + 1)  # bounded even if the file grew since stat()
    except OSError as exc:
        raise DecodeError(f"cannot read file: {exc.strerror or exc}") from exc
    if len(data) > limit:
        raise file_too_big(None, limit)
    return decode_image(data, max_pixels=max_pixels)
