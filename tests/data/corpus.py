"""Builders for awkward image files, shared by the data tests and the CLI acceptance tests.

Usage::

    from tests.data.corpus import make_bad_corpus, make_good_oddities

    bad = make_bad_corpus(tmp_path / "data" / "cat")        # {file name: expected reason substring}
    good = make_good_oddities(tmp_path / "data" / "cat")    # {file name: decoded shape}

Every bad file must be reported exactly once (its reason containing the substring) and every
good oddity must load. Only numpy and OpenCV are used, so the files are the same everywhere.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np

__all__ = ["make_bad_corpus", "make_good_oddities", "png_header", "write_image"]

#: The non-ASCII file name among the good oddities.
NON_ASCII_NAME = "数字_ö.png"


def write_image(path: Path, img: np.ndarray, ext: str | None = None, params: list[int] | None = None) -> Path:
    """Encodes ``img`` (OpenCV channel order: BGR/BGRA) with OpenCV and writes it; works for any file name."""
    ok, buf = cv2.imencode(ext or path.suffix, img, params or [])
    assert ok, f"cannot encode {path.name}"
    path.write_bytes(buf.tobytes())
    return path


def png_header(width: int, height: int, bit_depth: int = 8, color_type: int = 2) -> bytes:
    """A valid PNG signature and IHDR chunk (correct CRC) and nothing else."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    crc = zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", crc)


def _pattern(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (height, width, channels), dtype=np.uint8)


def make_bad_corpus(folder: Path) -> dict[str, str]:
    """Writes one file of every broken kind into ``folder`` (created if needed).

    Returns:
        File name -> a substring of the reason the data layer must give for it. The dangling
        symbolic link is left out where the platform cannot create symbolic links.
    """
    folder.mkdir(parents=True, exist_ok=True)
    expected: dict[str, str] = {}

    (folder / "empty.png").write_bytes(b"")
    expected["empty.png"] = "empty file"

    _, png = cv2.imencode(".png", _pattern(64, 64, seed=1))
    (folder / "truncated.png").write_bytes(png.tobytes()[: len(png) // 2])
    expected["truncated.png"] = "truncated or corrupt PNG"

    _, jpg = cv2.imencode(".jpg", _pattern(64, 64, seed=2))
    (folder / "truncated.jpg").write_bytes(jpg.tobytes()[: len(jpg) // 2])
    expected["truncated.jpg"] = "truncated JPEG"

    (folder / "text.jpg").write_text("this is a text file, not a photo\n", encoding="utf-8")
    expected["text.jpg"] = "not a decodable image"

    noise = np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    (folder / "random.png").write_bytes(b"\x00" + noise)  # a zero first byte matches no image signature
    expected["random.png"] = "not a decodable image"

    (folder / "huge.png").write_bytes(png_header(100_000, 100_000) + b"\x00" * 64)
    expected["huge.png"] = "100000x100000 pixels, over the limit"

    (folder / "dir.jpg").mkdir()
    expected["dir.jpg"] = "is a directory"

    try:
        os.symlink(folder / "does-not-exist.png", folder / "x.png")
        expected["x.png"] = "broken symbolic link"
    except (OSError, NotImplementedError):  # e.g. Windows without developer mode
        pass
    return expected


def make_good_oddities(folder: Path) -> dict[str, tuple[int, ...]]:
    """Writes unusual but valid images into ``folder`` (created if needed).

    Returns:
        File name -> the shape :func:`explorer.data.decode.read_image` gives for it.
    """
    folder.mkdir(parents=True, exist_ok=True)
    shapes: dict[str, tuple[int, ...]] = {}

    deep = (np.arange(24 * 32, dtype=np.uint32).reshape(24, 32) * 85).astype(np.uint16)
    write_image(folder / "deep16.png", deep)
    shapes["deep16.png"] = (24, 32)

    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., :3] = (0, 0, 255)  # red in BGR
    rgba[:, 15:, 3] = 255  # left half transparent, right half opaque
    write_image(folder / "alpha.png", rgba)
    shapes["alpha.png"] = (20, 30, 3)

    write_image(folder / "gray.png", _pattern(28, 28, 1, seed=4)[..., 0])
    shapes["gray.png"] = (28, 28)

    write_image(folder / "one_pixel.png", np.array([[[10, 200, 30]]], np.uint8))
    shapes["one_pixel.png"] = (1, 1, 3)

    write_image(folder / "wide_2x3000.png", _pattern(2, 3000, seed=5))
    shapes["wide_2x3000.png"] = (2, 3000, 3)

    write_image(folder / NON_ASCII_NAME, _pattern(16, 16, seed=6))
    shapes[NON_ASCII_NAME] = (16, 16, 3)
    return shapes
