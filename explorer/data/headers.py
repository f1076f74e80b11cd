"""Image headers without decoding: container sniffing, bounded header reads and size probes.

Everything here reads a few bytes of an encoded file and never allocates pixels, so callers can
refuse oversized or truncated files before OpenCV sees them (:mod:`explorer.data.decode`) and
pick an input size from a thousand files in a moment (:mod:`explorer.data.loading`).

A probe reads through a :class:`~explorer.data.reader.HeaderReader`: the first
:data:`~explorer.data.reader.HEADER_BYTES` of the file, plus a bounded number of bounded reads
further in (a JPEG frame header behind large metadata segments, a TIFF directory at the end of the
file), so probing a file never costs more than :data:`~explorer.data.reader.MAX_PROBE_BYTES`
whatever the file claims. :func:`probe_header` answers what the decoder will allocate: size,
channels and bytes per sample, read from the same structure the decoder uses
(for TIFF the first directory, see :mod:`explorer.data.tiff`).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from .reader import HEADER_BYTES, HeaderReader, ImageHeader, ProbeLimit
from .tiff import probe_tiff, read_ifd0

__all__ = [
    "FORMAT_NAMES",
    "HEADER_BYTES",
    "HeaderReader",
    "ImageHeader",
    "jpeg_is_complete",
    "jpeg_segments",
    "probe_header",
    "probe_size",
    "sniff",
    "tiff_ifd0",
]

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
    if data.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
        return "tiff"
    if len(data) >= 3 and data[0:1] == b"P" and data[1:2] in b"1234567" and data[2:3].isspace():
        return "pnm"
    if data[4:8] == b"ftyp" and data[8:12] in (b"avif", b"avis"):
        return "avif"
    return None


def jpeg_segments(data: bytes) -> Iterator[tuple[int, int, int]]:
    """Yields ``(marker, payload_start, payload_end)`` for each JPEG header segment up to and including SOS.

    Stops early (without raising) when the structure is broken or the data ends; callers treat a
    short walk as "unknown" or "truncated" as appropriate.
    """
    reader = HeaderReader.of_bytes(data)
    for marker, start, length in _jpeg_walk(reader):
        yield marker, start, min(start + length, len(data))


def _jpeg_walk(reader: HeaderReader, max_segments: int = 4096) -> Iterator[tuple[int, int, int]]:
    """``(marker, payload_offset, payload_length)`` per segment up to SOS, reading through ``reader``."""
    i = 2
    for _ in range(max_segments):
        head = reader.read(i, 4)
        if len(head) < 4 or head[0] != 0xFF:
            return
        marker = head[1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length field
            i += 2
            continue
        if marker == 0xD9:  # EOI before any scan: nothing more to read
            return
        (length,) = struct.unpack_from(">H", head, 2)
        if length < 2:
            return
        yield marker, i + 4, length - 2
        if marker == 0xDA:  # start of scan: entropy-coded data follows, no more header segments
            return
        i += 2 + length


# SOFn markers carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but are not frames.
_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def _jpeg_header(reader: HeaderReader) -> ImageHeader | None:
    for marker, start, _length in _jpeg_walk(reader):
        if marker in _JPEG_SOF:
            precision, height, width, components = reader.unpack(">BHHB", start)
            if not (width and height and components):
                return None
            return ImageHeader("jpeg", width, height, max(3, components), 2 if precision > 8 else 1)
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
    """Reads the integer values of ``tags`` from the first IFD of a TIFF structure (TIFF files, EXIF blobs).

    A tag given more than once keeps its largest value.
    """
    try:
        return read_ifd0(HeaderReader.of_bytes(data), tags)
    except (struct.error, ProbeLimit):
        return {}


def _png_header(reader: HeaderReader) -> ImageHeader | None:
    ihdr = reader.read(8, 25)
    if len(ihdr) < 25 or ihdr[4:8] != b"IHDR":
        return None
    width, height, depth, color = struct.unpack_from(">IIBB", ihdr, 8)
    channels = {0: 1, 2: 3, 3: 4, 4: 2, 6: 4}.get(color, 4)  # a palette may decode with alpha
    return ImageHeader("png", width, height, channels, 2 if depth > 8 else 1)


def _bmp_header(reader: HeaderReader) -> ImageHeader | None:
    (header_size,) = reader.unpack("<I", 14)
    if header_size == 12:  # OS/2 BITMAPCOREHEADER: 16-bit unsigned sizes
        width, height, _planes, bits = reader.unpack("<HHHH", 18)
    elif header_size >= 16:  # BITMAPINFOHEADER, V4, V5, OS/2 2.x: signed 32-bit sizes
        width, height, _planes, bits = reader.unpack("<iiHH", 18)
    else:
        return None
    # Negative height means rows stored top-down; a negative width is invalid but must not hide a size.
    return ImageHeader("bmp", abs(width), abs(height), 4 if bits == 32 else 3)


def _gif_header(reader: HeaderReader, max_blocks: int = 100_000) -> ImageHeader | None:
    """The logical screen, grown to hold the first image descriptor (OpenCV decodes the first frame)."""
    width, height, flags = reader.unpack("<HHB", 6)
    i = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)  # skip the global color table
    for _ in range(max_blocks):
        introducer = reader.read(i, 1)
        if introducer == b"\x2c":  # image descriptor: left, top, width, height
            left, top, frame_w, frame_h = reader.unpack("<HHHH", i + 1)
            return ImageHeader("gif", max(width, left + frame_w), max(height, top + frame_h), 4)
        if introducer != b"\x21":  # no image at all (trailer, garbage, end of data): the screen is all
            return ImageHeader("gif", width, height, 4)
        i += 2  # introducer and label, then data sub-blocks until a zero-length one
        while (size := reader.read(i, 1)) not in (b"", b"\x00"):
            i += 1 + size[0]
            max_blocks -= 1
            if max_blocks < 0:
                return None
        i += 1
    return None


def _webp_header(reader: HeaderReader) -> ImageHeader | None:
    data = reader.read(0, 30)
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return ImageHeader("webp", width, height, 4)
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return ImageHeader("webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, 4)
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack_from("<HH", data, 26)
        return ImageHeader("webp", width & 0x3FFF, height & 0x3FFF, 3)
    return None


def _pnm_tokens(data: bytes, start: int, count: int) -> list[bytes]:
    """The first ``count`` whitespace-separated tokens from ``start``, ``#`` comments skipped."""
    tokens: list[bytes] = []
    i, n = start, len(data)
    while len(tokens) < count and i < n:
        c = data[i : i + 1]
        if c.isspace():
            i += 1
        elif c == b"#":
            j = data.find(b"\n", i)
            i = n if j == -1 else j + 1
        else:
            j = i
            while j < n and not data[j : j + 1].isspace() and data[j : j + 1] != b"#":
                j += 1
            tokens.append(data[i:j])
            i = j
    return tokens


def _pnm_header(reader: HeaderReader) -> ImageHeader | None:
    """Netpbm P1-P6 (width, height, maxval after the magic) and PAM P7 (``KEY value`` lines up to ENDHDR)."""
    data = reader.read(0, 4096)
    magic = data[1:2]
    if magic == b"7":
        tokens = _pnm_tokens(data, 2, 64)
        tokens = tokens[: tokens.index(b"ENDHDR")] if b"ENDHDR" in tokens else tokens
        keys = (b"WIDTH", b"HEIGHT", b"DEPTH", b"MAXVAL")
        fields: dict[bytes, int] = {}
        for key, value in zip(tokens, tokens[1:]):
            if key in keys and value.isdigit():  # a repeated key counts with its largest value
                fields[key] = max(fields.get(key, 0), int(value))
        if len(fields) < len(keys):
            return None
        width, height, depth, maxval = (fields[k] for k in keys)
        return ImageHeader("pnm", width, height, max(1, depth), 2 if maxval > 255 else 1)
    bitmap = magic in b"14"
    tokens = _pnm_tokens(data, 2, 2 if bitmap else 3)
    if len(tokens) < (2 if bitmap else 3) or not all(t.isdigit() for t in tokens):
        return None
    maxval = 1 if bitmap else int(tokens[2])
    return ImageHeader("pnm", int(tokens[0]), int(tokens[1]), 3 if magic in b"36" else 1, 2 if maxval > 255 else 1)


def _avif_header(reader: HeaderReader) -> ImageHeader | None:
    """The largest ``ispe`` (image spatial extents) property near the start of the file; 16-bit if ``pixi`` says so."""
    head = reader.read(0, HEADER_BYTES)
    best: tuple[int, int] | None = None
    i = head.find(b"ispe")
    while i != -1 and i + 16 <= len(head):
        width, height = struct.unpack_from(">II", head, i + 8)  # after the box type: version/flags, w, h
        if best is None or width * height > best[0] * best[1]:
            best = (width, height)
        i = head.find(b"ispe", i + 4)
    if best is None:
        return None
    j = head.find(b"pixi")
    deep = j != -1 and any(b > 8 for b in head[j + 9 : j + 9 + head[j + 8]]) if j + 9 <= len(head) else False
    return ImageHeader("avif", best[0], best[1], 4, 2 if deep else 1)


_PROBES = {
    "png": _png_header,
    "jpeg": _jpeg_header,
    "bmp": _bmp_header,
    "gif": _gif_header,
    "webp": _webp_header,
    "tiff": probe_tiff,
    "pnm": _pnm_header,
    "avif": _avif_header,
}


def probe_header(reader: HeaderReader) -> ImageHeader | None:
    """What decoding the image will allocate, from its header alone (bounded reads, no pixels).

    Understands PNG (IHDR), JPEG (the first SOFn, after any number of other segments), BMP (all
    header versions, top-down rows), GIF (logical screen and first image descriptor), WebP (VP8,
    VP8L, VP8X), classic TIFF and BigTIFF (the first directory, both byte orders), netpbm P1-P7 and
    AVIF.

    Returns:
        The header, or None when the format is unknown, the header is incomplete or corrupt, or
        finding it would read more than the reader allows.
    """
    kind = sniff(reader.read(0, 32))
    probe = _PROBES.get(kind or "")
    if probe is None:
        return None
    try:
        return probe(reader)
    except (struct.error, IndexError, ValueError, ProbeLimit):  # header shorter than it claims
        return None


def probe_size(data: bytes) -> tuple[int, int] | None:
    """Reads an image's size from its header alone, without decoding pixels.

    The formats of :func:`probe_header`; the size is the stored one, before any EXIF rotation.

    Args:
        data: The file's bytes (or its start: a few kilobytes are enough for most files).

    Returns:
        ``(width, height)``, or None when the format is unknown or the header is incomplete.
    """
    header = probe_header(HeaderReader.of_bytes(data))
    return None if header is None else (header.width, header.height)
