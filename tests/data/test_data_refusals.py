"""Refusals of the decode entry points: limits checked before OpenCV, unusable bytes and files (explorer.data.decode)."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from explorer.data import decode
from explorer.data.decode import DecodeError, decode_image, read_image
from explorer.data.reader import ImageHeader
from tests.data.corpus import make_bad_corpus, png_header


def _rgb(h: int = 20, w: int = 30, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _encode(img_rgb: np.ndarray, ext: str, params: list[int] | None = None) -> bytes:
    bgr = cv2.cvtColor(img_rgb, cv2.COLOR_RGB2BGR) if img_rgb.ndim == 3 else img_rgb
    ok, buf = cv2.imencode(ext, bgr, params or [])
    assert ok
    return buf.tobytes()


# -- refusals ------------------------------------------------------------------------------------------


def test_huge_png_header_is_refused_before_opencv(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("OpenCV must not see an oversized image")

    monkeypatch.setattr(decode.cv2, "imdecodeWithMetadata", boom)
    with pytest.raises(DecodeError, match="image is 100000x100000 pixels, over the limit of 40000000"):
        decode_image(png_header(100_000, 100_000))
    with pytest.raises(DecodeError, match="over the limit of 100"):
        decode_image(_encode(_rgb(11, 10), ".jpg"), max_pixels=100)


def test_limit_also_applies_when_the_decoder_disagrees_with_the_header(monkeypatch: pytest.MonkeyPatch) -> None:
    # Belt and braces: the decoded size is checked again, in case a decoder reads another size than we did.
    monkeypatch.setattr(decode, "probe_header", lambda reader: ImageHeader("png", 1, 1))
    data = _encode(_rgb(20, 30), ".png")
    with pytest.raises(DecodeError, match="image is 30x20 pixels, over the limit of 599"):
        decode_image(data, max_pixels=599)
    assert decode_image(data, max_pixels=600).shape == (20, 30, 3)


@pytest.mark.parametrize("ext", [".ras", ".hdr", ".pfm"])
def test_formats_without_a_size_probe_are_refused_before_opencv(ext: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # OpenCV decodes these, but their headers are not probed, so their size cannot be bounded first.
    img = _rgb(20, 30)
    data = _encode(img.astype(np.float32) / 255 if ext in (".hdr", ".pfm") else img, ext)

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("OpenCV must not see an unprobed format")

    monkeypatch.setattr(decode.cv2, "imdecodeWithMetadata", boom)
    with pytest.raises(DecodeError, match=r"^not a decodable image \(unknown or corrupt format\)$"):
        decode_image(data)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"plain text pretending to be an image", "not a decodable image (unknown or corrupt format)"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "truncated or corrupt PNG data"),
        (b"BM" + b"\x00" * 40, "truncated or corrupt BMP data"),
    ],
)
def test_decode_errors(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_image(data)
    assert str(info.value) == reason


def test_truncated_png_and_jpeg() -> None:
    png = _encode(_rgb(64, 64), ".png")
    jpg = _encode(_rgb(64, 64), ".jpg")
    for cut in (len(png) // 2, len(png) - 12, 40):  # mid-data, missing IEND, inside IHDR
        with pytest.raises(DecodeError, match="truncated or corrupt PNG data"):
            decode_image(png[:cut])
    for cut in (len(jpg) // 2, len(jpg) - 2, 100):  # mid-scan, missing EOI only, inside the header
        with pytest.raises(DecodeError, match="truncated JPEG data"):
            decode_image(jpg[:cut])


def test_jpeg_thumbnail_eoi_does_not_hide_truncation() -> None:
    # An EOI inside an APP segment (EXIF thumbnail) must not count as the end of the image.
    thumb = b"Exif\x00\x00" + b"\xff\xd8" + b"\x00" * 10 + b"\xff\xd9"
    jpg = _encode(_rgb(64, 64), ".jpg")
    data = jpg[:2] + b"\xff\xe1" + struct.pack(">H", len(thumb) + 2) + thumb + jpg[2 : len(jpg) // 2]
    with pytest.raises(DecodeError, match="truncated JPEG data"):
        decode_image(data)


def test_bad_corpus_reasons_from_read_image(tmp_path: Path) -> None:
    expected = make_bad_corpus(tmp_path)
    for name, reason in expected.items():
        with pytest.raises(DecodeError) as info:
            read_image(tmp_path / name)
        assert reason in str(info.value), (name, str(info.value))
        assert len(str(info.value)) < 100


def test_read_image_file_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DecodeError, match=r"^file not found$"):
        read_image(tmp_path / "missing.png")
    big = tmp_path / "big.png"
    big.write_bytes(_encode(_rgb(), ".png"))
    monkeypatch.setattr(decode, "MAX_FILE_BYTES", 16)
    with pytest.raises(DecodeError, match="over the limit of"):
        read_image(big)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_read_image_refuses_special_files_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(DecodeError, match="not a regular file"):
        read_image(fifo)


def test_read_image_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secret.png"
    path.write_bytes(_encode(_rgb(), ".png"))

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    # Simulated: chmod 0 does not stop root, and tests may run as root in containers.
    monkeypatch.setattr(decode, "open", denied, raising=False)
    with pytest.raises(DecodeError, match=r"^cannot read file: Permission denied$"):
        read_image(path)


def test_opencv_errors_never_escape(monkeypatch: pytest.MonkeyPatch) -> None:
    def raising(*args: object, **kwargs: object) -> None:
        raise cv2.error("simulated OpenCV failure")

    monkeypatch.setattr(decode.cv2, "imdecodeWithMetadata", raising)
    with pytest.raises(DecodeError, match="truncated or corrupt PNG data"):
        decode_image(_encode(_rgb(), ".png"))
