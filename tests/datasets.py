"""Data sets the tests build on the fly (no downloads).

- :func:`write_two_class_folder`: a tiny, easy class-per-folder set for fast tests.
- :func:`export_digits`: scikit-learn's bundled real handwritten digits (1,797 images,
  8x8) written as 32x32 PNGs in train/ and test/ class folders, the acceptance set.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def _write_png(path: Path, img: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", img)
    assert ok
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.tobytes())


def write_two_class_folder(root: Path, n: int = 24, size: int = 16, seed: int = 0, rgb: bool = False) -> Path:
    """Class ``top`` has a bright top half, class ``bottom`` a bright bottom half."""
    rng = np.random.default_rng(seed)
    for cls in ("top", "bottom"):
        for i in range(n):
            img = rng.integers(0, 60, (size, size), dtype=np.uint8)
            half = slice(0, size // 2) if cls == "top" else slice(size // 2, size)
            img[half] = np.clip(img[half].astype(int) + 150, 0, 255).astype(np.uint8)
            if rgb:
                img = np.dstack([img, img // 2, 255 - img])
            _write_png(root / cls / f"{cls}_{i:03d}.png", img)
    return root


def export_digits(root: Path, size: int = 32, test_fraction: float = 0.25, seed: int = 0) -> tuple[Path, Path]:
    """scikit-learn's handwritten digits as ``root/train/<digit>/*.png`` and ``root/test/...``.

    The 8x8 images (values 0..16) are scaled to 0..255 and enlarged to ``size`` with
    bilinear interpolation; the split is stratified and seeded (75/25: 1,347 / 450).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    idx = np.arange(len(images))
    train_idx, test_idx = train_test_split(idx, test_size=test_fraction, stratify=digits.target, random_state=seed)
    for part, ids in (("train", train_idx), ("test", test_idx)):
        for i in ids:
            img = cv2.resize(images[i], (size, size), interpolation=cv2.INTER_LINEAR)
            _write_png(root / part / str(digits.target[i]) / f"{i:04d}.png", img)
    return root / "train", root / "test"
