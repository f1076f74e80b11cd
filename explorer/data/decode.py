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
"""

from __future__ import annotations

import os
import stat
import struct

import cv2
import numpy as np

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "MAX_FILE_BYTES",
    "RESIZE_MODES",
    "DecodeError",
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

#: Interpolation choices for :func:`resize_image` / :func:`prepare_image`.
RESIZE_MODES: tuple[str, ...] = ("auto", "area", "linear")

# OpenCV logs a warning or error line on stderr for every broken file it is given (and libpng
# prints its own). Those files are reported to the user as problems by this layer, so the extra
# lines are only noise, and they would interleave with a CLI's output. A user who wants OpenCV's
# logging can still set OPENCV_LOG_LEVEL, which we then leave alone.
if "OPENCV_LOG_LEVEL" not in os.environ:
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


class DecodeError(ValueError):
    """A file or buffer that cannot be used as an image. ``str()`` is a short reason for the user."""


# --------------------------------------------------------------------------------------------------
# Format sniffing and header probes
# --------------------------------------------------------------------------------------------------

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_FORMAT_NAMES = {
    "png": "PNG",
    "jpeg": "JPEG",
    "bmp": "BMP",
    "gif": "GIF",
    "webp": "WebP",
    "tiff": "TIFF",
    "pnm": "PNM",
    "avif": "AVIF",
}


def _sniff(data: bytes) -> str | None:
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


def _jpeg_segments(data: bytes):
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
    for marker, start, end in _jpeg_segments(data):
        if marker in _JPEG_SOF and end - start >= 5:
            height, width = struct.unpack_from(">HH", data, start + 1)
            return (width, height) if width and height else None
    return None


def _jpeg_is_complete(data: bytes) -> bool:
    """True when the JPEG has its EOI marker after the first scan.

    libjpeg silently pads a truncated stream with gray, so a missing EOI is the reliable sign of a
    cut-off file. ``FF D9`` cannot occur inside entropy-coded data (0xFF is always stuffed), and we
    only search after the first SOS so that the EOI of an EXIF thumbnail does not count.
    """
    for marker, _start, end in _jpeg_segments(data):
        if marker == 0xDA:
            return data.find(b"\xff\xd9", end) != -1
    return False  # the header ends before the first scan


def _tiff_ifd0(data: bytes, tags: set[int]) -> dict[int, int]:
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
        kind = _sniff(data)
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
            tags = _tiff_ifd0(data, {256, 257})
            return (tags[256], tags[257]) if len(tags) == 2 else None
        if kind == "pnm":
            return _pnm_size(data)
        if kind == "avif":
            return _avif_size(data)
    except (struct.error, IndexError):  # header shorter than it claims
        return None
    return None


def probe_display_size(data: bytes) -> tuple[int, int] | None:
    """The size an image is shown at, from its header alone: ``(width, height)`` or None.

    Like :func:`probe_size`, but width and height are swapped when a JPEG's EXIF orientation turns
    the image by 90 degrees (phones store portrait photos landscape). Only JPEG headers are searched
    for EXIF, as that is where cameras put it; this is what :func:`decode_image` returns the shape of.
    """
    size = probe_size(data)
    if size is None or _sniff(data) != "jpeg":
        return size
    for marker, start, end in _jpeg_segments(data):
        if marker == 0xE1 and data[start : start + 6] == b"Exif\x00\x00":
            if _exif_orientation(data[start:end]) >= 5:
                return size[1], size[0]
            break
    return size


# --------------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------------


def _exif_orientation(blob: bytes) -> int:
    """The EXIF orientation (1-8) stored in an EXIF blob, 1 when absent or unreadable."""
    if blob.startswith(b"Exif\x00\x00"):  # JPEG APP1 style prefix; PNG eXIf and OpenCV omit it
        blob = blob[6:]
    value = _tiff_ifd0(blob, {274}).get(274, 1)
    return value if 1 <= value <= 8 else 1


def _apply_orientation(img: np.ndarray, orientation: int) -> np.ndarray:
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


def _color_to_uint8(x: np.ndarray) -> np.ndarray:
    """Any depth -> uint8. 16-bit is scaled exactly (x * 255 / 65535, rounded); anything else is min-max scaled."""
    if x.dtype == np.uint8:
        return x
    if x.dtype == np.uint16:
        # Integer arithmetic gives round(x * 255 / 65535) without float error.
        return ((x.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if x.dtype == np.bool_:
        return x.astype(np.uint8) * 255
    # Float (HDR, float TIFF) and unusual integer depths have no fixed white point: stretch the
    # image's own range. NaN/inf are mapped to the finite extremes first so they cannot spread.
    f = x.astype(np.float64)
    finite = np.isfinite(f)
    if not finite.any():
        return np.zeros(x.shape, np.uint8)
    lo, hi = float(f[finite].min()), float(f[finite].max())
    f = np.nan_to_num(f, nan=lo, posinf=hi, neginf=lo)
    if hi <= lo:
        return np.zeros(x.shape, np.uint8)
    return np.rint((f - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def _alpha_to_unit(a: np.ndarray) -> np.ndarray:
    """Alpha of any depth as float32 in [0, 1]."""
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535.0
    if np.issubdtype(a.dtype, np.floating):
        return np.clip(np.nan_to_num(a.astype(np.float32), nan=1.0), 0.0, 1.0)
    return _color_to_uint8(a).astype(np.float32) / 255.0


def _composite_over_white(color: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Blends uint8 color over a white background.

    White because transparent parts of icons, scans and drawings are meant to be paper; black
    would invent dark shapes the eye never saw.
    """
    a = _alpha_to_unit(alpha)
    if a.min() >= 1.0:  # fully opaque: skip the float round trip
        return color
    if color.ndim == 3:
        a = a[..., None]
    out = color.astype(np.float32) * a + 255.0 * (1.0 - a)
    return np.rint(out).astype(np.uint8)


def _normalize(img: np.ndarray) -> np.ndarray:
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
    kind = _sniff(data)
    size = probe_size(data)
    if size is not None and size[0] * size[1] > max_pixels:
        raise DecodeError(f"image is {size[0]}x{size[1]} pixels, over the limit of {max_pixels}")
    if kind == "jpeg" and not _jpeg_is_complete(data):
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

    img = _normalize(img)
    if kind != "tiff":
        for kind_code, blob in zip(types, blobs, strict=False):
            if kind_code == cv2.IMAGE_METADATA_EXIF:
                img = _apply_orientation(img, _exif_orientation(np.asarray(blob, np.uint8).tobytes()))
                break
    return np.ascontiguousarray(img)


def _undecodable(kind: str | None) -> str:
    if kind is None:
        return "not a decodable image (unknown or corrupt format)"
    return f"truncated or corrupt {_FORMAT_NAMES[kind]} data"


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
    try:
        st = os.stat(p)
    except OSError as exc:
        if os.path.islink(p):
            raise DecodeError("broken symbolic link") from exc
        if isinstance(exc, FileNotFoundError):
            raise DecodeError("file not found") from exc
        raise DecodeError(f"cannot read file: {exc.strerror or exc}") from exc
    if stat.S_ISDIR(st.st_mode):
        raise DecodeError("is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise DecodeError("not a regular file")
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


# --------------------------------------------------------------------------------------------------
# From decoded pixels to model input
# --------------------------------------------------------------------------------------------------


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
