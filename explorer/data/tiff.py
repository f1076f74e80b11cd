"""TIFF and BigTIFF headers: the first image directory (IFD0), read with bounded reads.

OpenCV's TIFF decoder (libtiff) decodes the first directory of a file, so that is the one whose
size is checked. The directory may sit anywhere in the file (often at its end): it is reached with
one seek and read with one bounded read through :class:`~explorer.data.reader.HeaderReader`.

Hostile files are met on their own terms: both byte orders; classic (16-bit entry count, 12-byte
entries, 32-bit offsets) and BigTIFF (64-bit count, 20-byte entries, 64-bit offsets); values typed
BYTE, SHORT, LONG or LONG8 (and their signed forms), inline or out of line; and a tag given more
than once, or with several values, counts with its largest value, so a second ImageWidth cannot
hide a bigger first one.
"""

from __future__ import annotations

import struct

from .reader import HeaderReader, ImageHeader

__all__ = ["probe_tiff", "read_ifd0"]

# type code -> struct letter (BYTE, SHORT, LONG, SBYTE, SSHORT, SLONG, LONG8, SLONG8, IFD, IFD8)
_TYPES = {1: "B", 3: "H", 4: "I", 6: "b", 8: "h", 9: "i", 13: "I", 16: "Q", 17: "q", 18: "Q"}
_MAX_ENTRIES = 65535  # a classic directory cannot hold more; a BigTIFF claiming more is refused
_MAX_VALUES = 64  # values looked at per tag (BitsPerSample has one per sample)

_WIDTH, _HEIGHT, _BITS, _PHOTOMETRIC, _SAMPLES, _TILE_WIDTH, _TILE_LENGTH = 256, 257, 258, 262, 277, 322, 323
_SIZE_TAGS = {_WIDTH, _HEIGHT, _BITS, _PHOTOMETRIC, _SAMPLES, _TILE_WIDTH, _TILE_LENGTH}


def _layout(reader: HeaderReader) -> tuple[str, bool, int] | None:
    """``(byte order, is BigTIFF, offset of IFD0)`` from the file header, or None."""
    head = reader.read(0, 16)
    order = {b"II": "<", b"MM": ">"}.get(head[:2])
    if order is None or len(head) < 8:
        return None
    (version,) = struct.unpack_from(order + "H", head, 2)
    if version == 42:
        return order, False, struct.unpack_from(order + "I", head, 4)[0]
    if version == 43 and len(head) == 16:
        offset_size, _zero, offset = struct.unpack_from(order + "HHQ", head, 4)
        return (order, True, offset) if offset_size == 8 else None
    return None


def _values(reader: HeaderReader, order: str, entry: bytes, big: bool) -> list[int]:
    """The (first :data:`_MAX_VALUES`) integer values of one directory entry; [] for other types."""
    tag_count_fmt = order + ("HHQ" if big else "HHI")
    _tag, kind, count = struct.unpack_from(tag_count_fmt, entry)
    letter = _TYPES.get(kind)
    if letter is None or count < 1:
        return []
    n = min(count, _MAX_VALUES)
    size = struct.calcsize(letter)
    field = entry[12:20] if big else entry[8:12]
    if count * size > len(field):  # out of line: the field holds the offset of the values
        (offset,) = struct.unpack(order + ("Q" if big else "I"), field)
        field = reader.read(offset, n * size)
    return list(struct.unpack_from(f"{order}{n}{letter}", field))


def read_ifd0(reader: HeaderReader, tags: set[int]) -> dict[int, int]:
    """The largest integer value of each of ``tags`` present in the first directory.

    Raises:
        struct.error: When the structure points past the end of the data.
        ProbeLimit: When reading the directory would exceed the probe's read budget.
    """
    layout = _layout(reader)
    if layout is None:
        return {}
    order, big, offset = layout
    count_fmt, entry_size = (order + "Q", 20) if big else (order + "H", 12)
    (count,) = reader.unpack(count_fmt, offset)
    if count > _MAX_ENTRIES:
        raise struct.error(f"TIFF directory claims {count} entries")
    table = reader.read(offset + struct.calcsize(count_fmt), count * entry_size)
    found: dict[int, int] = {}
    for k in range(len(table) // entry_size):
        entry = table[k * entry_size : (k + 1) * entry_size]
        (tag,) = struct.unpack_from(order + "H", entry)
        if tag in tags:
            values = _values(reader, order, entry, big)
            if values:
                found[tag] = max(found.get(tag, 0), *values)
    return found


def probe_tiff(reader: HeaderReader) -> ImageHeader | None:
    """Size, channels and sample size of the first image of a TIFF or BigTIFF file, or None.

    Samples the decoder widens (palette, CMYK, YCbCr and other photometric interpretations go through
    libtiff's RGBA path) count as four channels; a tile buffer larger than the image counts too.
    """
    tags = read_ifd0(reader, _SIZE_TAGS)
    width, height = tags.get(_WIDTH, 0), tags.get(_HEIGHT, 0)
    if width < 1 or height < 1:
        return None
    samples = max(1, tags.get(_SAMPLES, 1))
    channels = samples if tags.get(_PHOTOMETRIC, 1) in (0, 1, 2) else max(samples, 4)
    sample_bytes = max(1, (tags.get(_BITS, 1) + 7) // 8)
    tile = tags.get(_TILE_WIDTH, 0) * tags.get(_TILE_LENGTH, 0)
    return ImageHeader("tiff", width, height, channels, sample_bytes, buffer_pixels=tile)
