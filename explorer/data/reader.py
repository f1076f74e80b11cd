"""Bounded random access to an encoded image, and what its header says decoding will allocate.

Header probes (:mod:`explorer.data.headers`, :mod:`explorer.data.tiff`) read through a
:class:`HeaderReader`: the first :data:`HEADER_BYTES` of a file, plus a bounded number of bounded
reads further in, so probing never costs more than :data:`MAX_PROBE_BYTES` whatever the file
claims, and :class:`ImageHeader` is their answer.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

__all__ = ["HEADER_BYTES", "MAX_PROBE_BYTES", "HeaderReader", "ImageHeader", "ProbeLimit"]

#: What a probe reads from the start of a file in one go: enough for every header but JPEG frame
#: headers behind large metadata segments, GIF images behind long extensions and TIFF directories
#: stored far into the file, which are found with further bounded reads.
HEADER_BYTES = 64 * 1024
#: Most bytes one probe reads beyond :data:`HEADER_BYTES`, in at most :data:`_MAX_FETCHES` reads.
MAX_PROBE_BYTES = 4 * 1024 * 1024
_MAX_FETCHES = 256
_FETCH_BYTES = 16 * 1024


class ProbeLimit(Exception):
    """A header walk needed more reads than a probe may make (the caller treats it as unknown size)."""


class HeaderReader:
    """Bounded random access to an encoded image, in memory or in an open file.

    ``read(offset, n)`` returns up to ``n`` bytes (fewer at the end). Beyond the first
    :data:`HEADER_BYTES`, reads of a file go through a small block cache and count against
    :data:`MAX_PROBE_BYTES`; going over raises :class:`ProbeLimit`.
    """

    def __init__(self, head: bytes, size: int, fetch: Callable[[int, int], bytes] | None = None) -> None:
        self.head = head
        self.size = size
        self._fetch = fetch
        self._block = (0, b"")
        self._fetched = 0
        self._fetches = 0

    @classmethod
    def of_bytes(cls, data: bytes) -> HeaderReader:
        return cls(data, len(data))

    @classmethod
    def of_file(cls, f: BinaryIO, size: int) -> HeaderReader:
        """Reads the first :data:`HEADER_BYTES` of ``f`` now, the rest on demand."""
        f.seek(0)
        head = f.read(HEADER_BYTES)

        def fetch(offset: int, n: int) -> bytes:
            f.seek(offset)
            return f.read(n)

        return cls(head, size, fetch if size > len(head) else None)

    def read(self, offset: int, n: int) -> bytes:
        if offset < 0 or n <= 0 or offset >= self.size:
            return b""
        end = offset + n
        if end <= len(self.head) or self._fetch is None:
            return self.head[offset:end]
        start, block = self._block
        if start <= offset and end <= start + len(block):
            return block[offset - start : end - start]
        want = max(n, _FETCH_BYTES)
        self._fetched += want
        self._fetches += 1
        if self._fetched > MAX_PROBE_BYTES or self._fetches > _MAX_FETCHES:
            raise ProbeLimit
        block = self._fetch(offset, want)
        self._block = (offset, block)
        return block[:n]

    def unpack(self, fmt: str, offset: int) -> tuple:
        """``struct.unpack`` at ``offset``; raises ``struct.error`` when the data ends first."""
        return struct.unpack(fmt, self.read(offset, struct.calcsize(fmt)))


@dataclass(frozen=True)
class ImageHeader:
    """What decoding an image will allocate, as its header declares it.

    Attributes:
        kind: The container format (a key of :data:`FORMAT_NAMES`).
        width, height: Stored size in pixels (before any EXIF rotation).
        channels: Channels of the decoded array (an upper estimate where the decoder may add alpha).
        sample_bytes: Bytes per channel value of the decoded array (1, 2 for 16-bit, 4 or 8 for float).
        buffer_pixels: Pixels of a working buffer the decoder allocates besides the image (a TIFF tile).
    """

    kind: str
    width: int
    height: int
    channels: int = 3
    sample_bytes: int = 1
    buffer_pixels: int = 0

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def decoded_bytes(self) -> int:
        """Bytes of the decoded array plus the decoder's working buffer."""
        return (self.pixels + self.buffer_pixels) * self.channels * self.sample_bytes
