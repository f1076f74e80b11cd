"""Decoding, header probes and the shared preprocessing path (explorer.data.decode)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from explorer.data.decode import (
    IMAGE_EXTENSIONS,
    decode_image,
    is_gray,
    prepare_image,
    probe_size,
    read_image,
    resize_image,
    to_channels,
)
from tests.data.corpus import NON_ASCII_NAME, make_good_oddities, write_image


def _rgb(h: int = 20, w: int = 30, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _encode(img_rgb: np.ndarray, ext: str, params: list[int] | None = None) -> bytes:
    bgr = cv2.cvtColor(img_rgb, cv2.COLOR_RGB2BGR) if img_rgb.ndim == 3 else img_rgb
    ok, buf = cv2.imencode(ext, bgr, params or [])
    assert ok
    return buf.tobytes()


# -- formats ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ext", "params", "lossless"),
    [
        (".png", None, True),
        (".bmp", None, True),
        (".tif", None, True),
        (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101], True),  # quality > 100 selects lossless WebP
        (".jpg", [cv2.IMWRITE_JPEG_QUALITY, 95], False),
    ],
)
def test_round_trip_rgb(tmp_path: Path, ext: str, params: list[int] | None, lossless: bool) -> None:
    # Smooth content so that lossy JPEG stays close to the original.
    yy, xx = np.mgrid[0:24, 0:40]
    img = np.stack([xx * 6, yy * 10, 255 - xx * 6], axis=2).astype(np.uint8)
    path = tmp_path / f"img{ext}"
    path.write_bytes(_encode(img, ext, params))
    out = read_image(path)
    assert out.shape == (24, 40, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    if lossless:
        np.testing.assert_array_equal(out, img)  # also proves RGB (not BGR) order
    else:
        assert np.abs(out.astype(int) - img).mean() < 4


def test_gif_and_pnm_decode() -> None:
    img = _rgb(10, 12)
    assert decode_image(_encode(img, ".gif")).shape == (10, 12, 3)
    np.testing.assert_array_equal(decode_image(_encode(img, ".ppm")), img)
    np.testing.assert_array_equal(decode_image(_encode(img[..., 0], ".pgm")), img[..., 0])


def test_extensions_are_lower_case_suffixes() -> None:
    assert {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"} <= IMAGE_EXTENSIONS
    assert all(e.startswith(".") and e == e.lower() for e in IMAGE_EXTENSIONS)


def test_gray_stays_two_dimensional() -> None:
    gray = _rgb(9, 7)[..., 0]
    for ext in (".png", ".bmp", ".tif"):
        out = decode_image(_encode(gray, ext))
        assert out.shape == (9, 7)
        np.testing.assert_array_equal(out, gray)


def test_16_bit_is_scaled_to_8_bit() -> None:
    values = np.array([[0, 1, 128, 129, 257, 32767, 32768, 65534, 65535]], np.uint16)
    out = decode_image(_encode(values, ".png"))
    expected = np.rint(values.astype(np.float64) * 255 / 65535).astype(np.uint8)
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == np.uint8


def test_16_bit_color_png() -> None:
    bgr16 = np.zeros((4, 5, 3), np.uint16)
    bgr16[..., 2] = 65535  # red
    out = decode_image(cv2.imencode(".png", bgr16)[1].tobytes())
    assert out.dtype == np.uint8 and (out[..., 0] == 255).all() and (out[..., 1:] == 0).all()


def test_float_tiff_is_min_max_scaled() -> None:
    img = np.linspace(-2.0, 6.0, 20, dtype=np.float32).reshape(4, 5)
    out = decode_image(cv2.imencode(".tif", img)[1].tobytes())
    assert out.dtype == np.uint8 and out.min() == 0 and out.max() == 255
    assert (np.diff(out.ravel().astype(int)) >= 0).all()


def test_rgba_is_composited_over_white() -> None:
    bgra = np.zeros((2, 3, 4), np.uint8)
    bgra[..., 2] = 255  # red
    bgra[:, 0, 3] = 0  # transparent -> white
    bgra[:, 1, 3] = 255  # opaque -> red
    bgra[:, 2, 3] = 128  # half -> pink
    out = decode_image(cv2.imencode(".png", bgra)[1].tobytes())
    assert out.shape == (2, 3, 3)
    np.testing.assert_array_equal(out[0, 0], [255, 255, 255])
    np.testing.assert_array_equal(out[0, 1], [255, 0, 0])
    np.testing.assert_array_equal(out[0, 2], [255, 127, 127])


def test_gray_alpha_stays_gray_after_compositing() -> None:
    bgra = np.zeros((2, 2, 4), np.uint8)
    bgra[..., :3] = 100
    bgra[..., 3] = [[0, 255], [255, 0]]
    out = decode_image(cv2.imencode(".png", bgra)[1].tobytes())
    assert is_gray(out)
    assert out[0, 0, 0] == 255 and out[0, 1, 0] == 100


def test_rgba_webp() -> None:
    bgra = np.zeros((6, 8, 4), np.uint8)
    out = decode_image(cv2.imencode(".webp", bgra, [cv2.IMWRITE_WEBP_QUALITY, 101])[1].tobytes())
    np.testing.assert_array_equal(out, np.full((6, 8, 3), 255, np.uint8))


def test_tiny_and_extreme_sizes() -> None:
    one = decode_image(_encode(np.array([[[1, 2, 3]]], np.uint8), ".png"))
    np.testing.assert_array_equal(one, [[[1, 2, 3]]])
    wide = decode_image(_encode(_rgb(2, 3000), ".png"))
    assert wide.shape == (2, 3000, 3)


def test_non_ascii_file_name(tmp_path: Path) -> None:
    img = _rgb(5, 6)
    path = tmp_path / "ünïcødé" / NON_ASCII_NAME
    path.parent.mkdir()
    path.write_bytes(_encode(img, ".png"))
    np.testing.assert_array_equal(read_image(path), img)
    np.testing.assert_array_equal(read_image(str(path)), img)


def test_good_oddities_all_decode(tmp_path: Path) -> None:
    shapes = make_good_oddities(tmp_path)
    for name, shape in shapes.items():
        assert read_image(tmp_path / name).shape == shape, name


# -- EXIF orientation --------------------------------------------------------------------------------


def _exif_blob(orientation: int, big_endian: bool = False) -> bytes:
    e = ">" if big_endian else "<"
    head = b"MM\x00*" if big_endian else b"II*\x00"
    entry = struct.pack(e + "HHIHH", 274, 3, 1, orientation, 0)
    return head + struct.pack(e + "I", 8) + struct.pack(e + "H", 1) + entry + struct.pack(e + "I", 0)


def _jpeg_with_exif(jpeg: bytes, orientation: int, big_endian: bool = False) -> bytes:
    """Inserts a hand-written APP1 Exif segment right after SOI."""
    payload = b"Exif\x00\x00" + _exif_blob(orientation, big_endian)
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return jpeg[:2] + app1 + jpeg[2:]


def _png_with_exif(png: bytes, orientation: int) -> bytes:
    """Inserts an eXIf chunk right after IHDR."""
    blob = _exif_blob(orientation)
    chunk = struct.pack(">I", len(blob)) + b"eXIf" + blob + struct.pack(">I", zlib.crc32(b"eXIf" + blob) & 0xFFFFFFFF)
    return png[:33] + chunk + png[33:]


def test_exif_orientation_6_rotates_jpeg() -> None:
    img = np.zeros((16, 32, 3), np.uint8)
    img[:8, :8] = (255, 0, 0)  # red block top-left
    data = _jpeg_with_exif(_encode(img, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 100]), 6)
    out = decode_image(data)
    assert out.shape == (32, 16, 3)  # rotated 90 degrees clockwise
    assert out[:8, -8:, 0].mean() > 200  # top-left moved to top-right
    assert out[:8, :8, 0].mean() < 50


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_opencv(orientation: int) -> None:
    # OpenCV applies EXIF orientation itself when asked for BGR output: our own handling must agree.
    img = _rgb(6, 10, seed=orientation)
    for data in (
        _jpeg_with_exif(_encode(img, ".jpg"), orientation, big_endian=orientation % 2 == 0),
        _png_with_exif(_encode(img, ".png"), orientation),
    ):
        reference = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        np.testing.assert_array_equal(decode_image(data), reference)


# -- header probes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ext", "params"),
    [
        (".png", None),
        (".jpg", None),
        (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
        (".bmp", None),
        (".gif", None),
        (".tif", None),
        (".webp", [cv2.IMWRITE_WEBP_QUALITY, 80]),  # VP8 (lossy)
        (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101]),  # VP8L (lossless)
        (".ppm", None),
        (".avif", None),
    ],
)
def test_probe_size(ext: str, params: list[int] | None) -> None:
    assert probe_size(_encode(_rgb(21, 34), ext, params)) == (34, 21)


def test_probe_size_webp_vp8x_and_jpeg_behind_metadata() -> None:
    img = _rgb(21, 34)
    _, webp = cv2.imencodeWithMetadata(
        ".webp", img, [cv2.IMAGE_METADATA_EXIF], [np.frombuffer(_exif_blob(1), np.uint8)]
    )
    assert webp.tobytes()[12:16] == b"VP8X"
    assert probe_size(webp.tobytes()) == (34, 21)
    assert probe_size(_jpeg_with_exif(_encode(img, ".jpg"), 6)) == (34, 21)  # stored size, before rotation


def _tiff(img: np.ndarray, big_endian: bool) -> bytes:
    """A minimal uncompressed gray TIFF, written by hand to control the byte order."""
    e = ">" if big_endian else "<"
    h, w = img.shape
    data = img.tobytes()
    entries = [(256, 4, w), (257, 3, h), (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, 0), (277, 3, 1)]
    entries += [(278, 3, h), (279, 4, len(data))]
    data_offset = 8 + 2 + 12 * len(entries) + 4
    out = (b"MM\x00*" if big_endian else b"II*\x00") + struct.pack(e + "IH", 8, len(entries))
    for tag, kind, value in entries:
        value = data_offset if tag == 273 else value
        packed = struct.pack(e + "HH", value, 0) if kind == 3 else struct.pack(e + "I", value)
        out += struct.pack(e + "HHI", tag, kind, 1) + packed
    return out + struct.pack(e + "I", 0) + data


@pytest.mark.parametrize("big_endian", [False, True])
def test_probe_and_decode_tiff_both_byte_orders(big_endian: bool) -> None:
    img = _rgb(7, 300)[..., 0]
    data = _tiff(img, big_endian)
    assert probe_size(data) == (300, 7)
    np.testing.assert_array_equal(decode_image(data), img)


def test_probe_size_bmp_top_down_and_gif_header() -> None:
    bmp = bytearray(_encode(_rgb(5, 9), ".bmp"))
    bmp[22:26] = struct.pack("<i", -5)  # negative height: rows stored top-down
    assert probe_size(bytes(bmp)) == (9, 5)
    assert probe_size(b"GIF89a" + struct.pack("<HH", 640, 480) + b"\x00" * 8) == (640, 480)


@pytest.mark.parametrize(
    "data",
    [b"", b"hello", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0\x00\x10JFIF", b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"II*\x00"],
)
def test_probe_size_unknown_or_incomplete(data: bytes) -> None:
    assert probe_size(data) is None


# -- channels, resizing, preparation ---------------------------------------------------------------


def test_to_channels() -> None:
    gray = _rgb(4, 5)[..., 0]
    rgb = to_channels(gray, 3)
    assert rgb.shape == (4, 5, 3) and all((rgb[..., c] == gray).all() for c in range(3))
    assert to_channels(gray, 1).shape == (4, 5, 1)
    color = np.zeros((1, 3, 3), np.uint8)
    color[0, 0], color[0, 1], color[0, 2] = (255, 0, 0), (0, 255, 0), (0, 0, 255)
    np.testing.assert_array_equal(to_channels(color, 1)[0, :, 0], [76, 150, 29])  # luminance weights, RGB order
    np.testing.assert_array_equal(to_channels(rgb, 1)[..., 0], gray)  # three equal channels stay exact
    with pytest.raises(ValueError, match="channels must be 1 or 3"):
        to_channels(gray, 2)
    with pytest.raises(ValueError, match="uint8"):
        to_channels(gray.astype(np.float32), 3)


@pytest.mark.parametrize("mode", ["auto", "area", "linear"])
def test_resize_keeps_channel_axis(mode: str) -> None:
    assert resize_image(np.zeros((10, 10, 1), np.uint8), 5, 7, mode).shape == (5, 7, 1)
    assert resize_image(np.zeros((10, 10), np.uint8), 5, 7, mode).shape == (5, 7)
    assert resize_image(np.zeros((10, 10, 3), np.uint8), 15, 20, mode).shape == (15, 20, 3)
    assert resize_image(np.full((1, 1, 1), 9, np.uint8), 8, 8, mode).min() == 9
    assert resize_image(np.zeros((2, 3000, 3), np.uint8), 32, 32, mode).shape == (32, 32, 3)


def test_resize_modes() -> None:
    img = np.zeros((4, 4), np.uint8)
    img[::2, ::2] = 255  # a checkerboard-like pattern: area averages it, linear samples it
    assert resize_image(img, 2, 2, "area").tolist() == [[64, 64], [64, 64]]
    assert resize_image(img, 2, 2, "auto").tolist() == [[64, 64], [64, 64]]
    assert resize_image(img, 4, 4, "linear") is img  # nothing to do
    with pytest.raises(ValueError, match="resize mode"):
        resize_image(img, 2, 2, "cubic")
    with pytest.raises(ValueError, match="at least 1x1"):
        resize_image(img, 0, 2)


def test_prepare_image_shapes_and_equivalence() -> None:
    img = _rgb(30, 40)
    gray = img[..., 0]
    assert prepare_image(img, channels=3, height=16, width=8).shape == (16, 8, 3)
    assert prepare_image(img, channels=1, height=16, width=8).shape == (16, 8, 1)
    out = prepare_image(gray, channels=3, height=16, width=8)
    assert out.flags.c_contiguous and out.dtype == np.uint8
    # Gray -> RGB after resizing must equal replicating first (the order is an optimisation only).
    np.testing.assert_array_equal(out, resize_image(to_channels(gray, 3), 16, 8))
    # RGB -> gray is converted at full resolution, then resized.
    np.testing.assert_array_equal(
        prepare_image(img, channels=1, height=16, width=8, resize="linear"),
        resize_image(to_channels(img, 1), 16, 8, "linear"),
    )


def test_is_gray() -> None:
    assert is_gray(np.zeros((2, 2), np.uint8))
    assert is_gray(np.zeros((2, 2, 3), np.uint8))
    color = np.zeros((2, 2, 3), np.uint8)
    color[1, 1, 2] = 1
    assert not is_gray(color)


def test_write_image_helper(tmp_path: Path) -> None:
    path = write_image(tmp_path / "a.png", np.zeros((3, 4, 3), np.uint8))
    assert read_image(path).shape == (3, 4, 3)
