"""The limits every decode obeys, declared in one place, and the check of a header against them.

* :data:`DEFAULT_MAX_PIXELS`: the largest ``width * height`` decoded (a setting: ``max_pixels``).
* :data:`BYTES_PER_PIXEL`: the decoded-array budget per allowed pixel. An image may need at most
  ``max_pixels * BYTES_PER_PIXEL`` bytes once decoded (8-bit RGBA at the pixel limit), so a
  16-bit RGB image (6 bytes a pixel) or a float TIFF is held to fewer pixels.
* :data:`MAX_FILE_BYTES`: the largest file read at all; below it, a file larger than its decoded
  budget plus :data:`FILE_SLACK_BYTES` (room for metadata) is refused too, so reading a file
  never costs more than decoding it may.

Sizes are checked from the file's ``stat`` before any read and from its header before OpenCV
sees it; see :mod:`explorer.data.decode`.
"""

from __future__ import annotations

from .errors import DecodeError
from .reader import ImageHeader

__all__ = [
    "BYTES_PER_PIXEL",
    "DEFAULT_MAX_PIXELS",
    "FILE_SLACK_BYTES",
    "MAX_FILE_BYTES",
    "check_header",
    "decoded_bytes_limit",
    "file_bytes_limit",
]

#: Largest image (width * height) that is decoded. Bigger ones are refused from their header alone,
#: so a hostile or broken file cannot make us allocate gigabytes.
DEFAULT_MAX_PIXELS = 40_000_000

#: Decoded bytes allowed per allowed pixel: ``max_pixels * BYTES_PER_PIXEL`` bounds the decoded array.
BYTES_PER_PIXEL = 4

#: Files larger than this are refused before they are read into memory.
MAX_FILE_BYTES = 256 * 1024 * 1024

#: How much a file may exceed its decoded budget (metadata, ICC profiles, poor compression).
FILE_SLACK_BYTES = 16 * 1024 * 1024


def decoded_bytes_limit(max_pixels: int) -> int:
    """Most bytes one decoded image may take."""
    return max_pixels * BYTES_PER_PIXEL


def file_bytes_limit(max_pixels: int, cap: int = MAX_FILE_BYTES) -> int:
    """Largest file read for a decode with ``max_pixels``: its decoded budget plus slack, at most ``cap``."""
    return min(cap, decoded_bytes_limit(max_pixels) + FILE_SLACK_BYTES)


def _mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB" if n >= 2**20 else f"{n} bytes"


def file_too_big(size: int | None, limit: int) -> DecodeError:
    """The refusal of a file over ``limit`` bytes (``size`` None when it grew while being read)."""
    if size is None:
        return DecodeError(f"file is over the limit of {_mib(limit)}")
    return DecodeError(f"file is {_mib(size)}, over the limit of {_mib(limit)}")


def check_header(header: ImageHeader, max_pixels: int) -> None:
    """Refuses an image whose header asks for more than the limits allow.

    Raises:
        DecodeError: When ``width * height`` exceeds ``max_pixels``, or the decoded array (channels,
            sample size and any decoder buffer included) exceeds :func:`decoded_bytes_limit`.
    """
    w, h = header.width, header.height
    if w * h > max_pixels:
        raise DecodeError(f"image is {w}x{h} pixels, over the limit of {max_pixels}")
    need, limit = header.decoded_bytes, decoded_bytes_limit(max_pixels)
    if need > limit:
        raise DecodeError(
            f"image is {w}x{h} pixels of {header.channels}x{8 * header.sample_bytes} bits, "
            f"{_mib(need)} decoded, over the limit of {_mib(limit)}"
        )
