"""Image headers without decoding: container sniffing, JPEG/TIFF structure walks and size probes.

Everything here reads a few bytes of an encoded file and never allocates pixels, so callers can
refuse oversized or truncated files before OpenCV sees them (:mod:`explorer.data.decode`) and
pick an input size from a thousand files in a moment (:mod:`explorer.data.loading`).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

__all__ = ["FORMAT_NAMES", "jpeg_is_complete", "jpeg_segments", "probe_size", "sniff", "tiff_ifd0"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FORMAT_NAMES = {
    "png": "PNG",
    "jpeg": "JPEG",
    "bmp": "BMP",
    "gif": "GIF",
    "webp": "WebP",
    "tiff": "TIFF",
    "pnm": "PNM",
    "avif": "AVIF",
}


def sniff(data: bytes) -> str | None:
    """Names the container format from its magic bytes, or None when unknown."""
    if data.startswith(_PNG_SIGNATURE):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"BM") and len(data) >= 26:
        return "bmp"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "webp"
    if data.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if len(data) >= 3 and data[0:1] == b"P" and data[1:2] in b"123456" and data[2:3].isspace():
        return "pnm"
    if data[4:8] == b"ftyp" and data[8:12] in (b"avif", b"avis"):
        return "avif"
    return None


def jpeg_segments(data: bytes) -> Iterator[tuple[int, int, int]]:
    """Yields ``(marker, payload_start, payload_end)`` for each JPEG header segment up to and including SOS.

    Stops early (without raising) when the structure is broken or the data ends; callers treat a
    short walk as "unknown" or "truncated" as appropriate.
    """
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length field
            i += 2
            continue
        if marker == 0xD9:  # EOI before any scan: nothing more to read
            return
        (length,) = struct.unpack_from(">H", data, i + 2)
        if length < 2:
            return
        yield marker, i + 4, min(i + 2 + length, n)
        if marker == 0xDA:  # start of scan: entropy-coded data follows, no more header segments
            return
        i += 2 + length


# SOFn markers carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but are not frames.
_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    for marker, start, end in jpeg_segments(data):
        if marker in _JPEG_SOF and end - start >= 5:
            height, width = struct.unpack_from(">HH", data, start + 1)
            return (width, height) if width and height else None
    return None


def jpeg_is_complete(data: bytes) -> bool:
    """True when the JPEG has its EOI marker after the first scan.

    libjpeg silently pads a truncated stream with gray, so a missing EOI is the reliable sign of a
    cut-off file. ``FF D9`` cannot occur inside entropy-coded data (0xFF is always stuffed), and we
    only search after the first SOS so that the EOI of an EXIF thumbnail does not count.
    """
    for marker, _start, end in jpeg_segments(data):
        if marker == 0xDA:
            return data.find(b"\xff\xd9", end) != -1
    return False  # the header ends before the first scan


def tiff_ifd0(data: bytes, tags: set[int]) -> dict[int, int]:
    """Reads the integer values of ``tags`` from the first IFD of a TIFF structure (TIFF files, EXIF blobs)."""
    if data[:4] == b"II*\x00":
        end = "<"
    elif data[:4] == b"MM\x00*":
        end = ">"
    else:
        return {}
    try:
        (offset,) = struct.unpack_from(end + "I", data, 4)
        (count,) = struct.unpack_from(end + "H", data, offset)
        found: dict[int, int] = {}
        for k in range(count):
            tag, kind, n = struct.unpack_from(end + "HHI", data, offset + 2 + 12 * k)
            if tag in tags and n >= 1:
                if kind == 3:  # SHORT, stored left-justified in the 4-byte value field
                    (found[tag],) = struct.unpack_from(end + "H", data, offset + 10 + 12 * k)
                elif kind == 4:  # LONG
                    (found[tag],) = struct.unpack_from(end + "I", data, offset + 10 + 12 * k)
        return found
    except struct.error:  # offsets pointing past the end: treat as no information
        return {}


def _pnm_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a netpbm (P1-P6) header: whitespace-separated tokens, ``#`` comments."""
    tokens: list[int] = []
    i, n = 2, min(len(data), 4096)
    while len(tokens) < 2 and i < n:
        c = data[i : i + 1]
        if c.isspace():
            i += 1
        elif c == b"#":
            j = data.find(b"\n", i)
            i = n if j == -1 else j + 1
        else:
            j = i
            while j < n and data[j : j + 1].isdigit():
                j += 1
            if j == i:
                return None
            tokens.append(int(data[i:j]))
            i = j
    return (tokens[0], tokens[1]) if len(tokens) == 2 else None


def _avif_size(data: bytes) -> tuple[int, int] | None:
    """The largest ``ispe`` (image spatial extents) property found near the start of an AVIF file."""
    best: tuple[int, int] | None = None
    head = data[: 1 << 16]
    i = head.find(b"ispe")
    while i != -1 and i + 16 <= len(head):
        width, height = struct.unpack_from(">II", head, i + 8)  # after the box type: version/flags, w, h
        if best is None or width * height > best[0] * best[1]:
            best = (width, height)
        i = head.find(b"ispe", i + 4)
    return best


def probe_size(data: bytes) -> tuple[int, int] | None:
    """Reads an image's size from its header alone, without decoding pixels.

    Understands PNG (IHDR), JPEG (SOFn), BMP, GIF, WebP (VP8, VP8L, VP8X), TIFF (both byte orders),
    netpbm and AVIF. The size is the stored one, before any EXIF rotation.

    Args:
        data: The file's bytes; the first few kilobytes are enough for every format but JPEG files
            with large metadata segments in front of the frame header.

    Returns:
        ``(width, height)``, or None when the format is unknown or the header is incomplete.
    """
    try:
        kind = sniff(data)
        if kind == "png":
            if data[12:16] != b"IHDR" or len(data) < 24:
                return None
            return struct.unpack_from(">II", data, 16)
        if kind == "jpeg":
            return _jpeg_size(data)
        if kind == "bmp":
            (header_size,) = struct.unpack_from("<I", data, 14)
            if header_size == 12:  # OS/2 BITMAPCOREHEADER: 16-bit unsigned sizes
                return struct.unpack_from("<HH", data, 18)
            width, height = struct.unpack_from("<ii", data, 18)
            return abs(width), abs(height)  # negative height means rows stored top-down
        if kind == "gif":
            return struct.unpack_from("<HH", data, 6)
        if kind == "webp":
            chunk = data[12:16]
            if chunk == b"VP8X":
                w = int.from_bytes(data[24:27], "little") + 1
                h = int.from_bytes(data[27:30], "little") + 1
                return (w, h) if len(data) >= 30 else None
            if chunk == b"VP8L":
                if data[20] != 0x2F:
                    return None
                bits = int.from_bytes(data[21:25], "little")
                return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            if chunk == b"VP8 ":
                if data[23:26] != b"\x9d\x01\x2a":
                    return None
                w, h = struct.unpack_from("<HH", data, 26)
                return w & 0x3FFF, h & 0x3FFF
            return None
        if kind == "tiff":
            tags = tiff_ifd0(data, {256, 257})
            return (tags[256], tags[257]) if len(tags) == 2 else None
        if kind == "pnm":
            return _pnm_size(data)
        if kind == "avif":
            return _avif_size(data)
    except (struct.error, IndexError):  # header shorter than it claims
        return None
    return None
