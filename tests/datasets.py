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


DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def _digit_pool(seed: int, test_fraction: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """sklearn's digits as 32x32 uint8 glyphs (white ink on black), split into
    train/test pools so that test strings only contain held-out handwriting."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    glyphs = np.stack([cv2.resize(im, (32, 32), interpolation=cv2.INTER_LINEAR) for im in images])
    idx = np.arange(len(images))
    tr, te = train_test_split(idx, test_size=test_fraction, stratify=digits.target, random_state=seed)
    return {"train": (glyphs[tr], digits.target[tr]), "test": (glyphs[te], digits.target[te])}


def _compose(
    rng: np.random.Generator, glyphs: np.ndarray, targets: np.ndarray, n: int
) -> tuple[np.ndarray, list[int], list[tuple[int, int]]]:
    """A 32 px high line of n handwritten digits: each glyph trimmed to its ink,
    joined with random gaps (0-6 px) and margins. Also returns each digit's [x0, x1) span."""
    picks = rng.integers(0, len(glyphs), n)
    parts = [np.zeros((32, int(rng.integers(2, 8))), np.uint8)]
    spans = []
    x = parts[0].shape[1]
    for k in picks:
        g = glyphs[k]
        cols = np.nonzero(g.max(axis=0) > 40)[0]
        g = g[:, max(cols[0] - 1, 0) : cols[-1] + 2] if len(cols) else g
        gap = np.zeros((32, int(rng.integers(0, 7))), np.uint8)
        spans.append((x, x + g.shape[1]))
        x += g.shape[1] + gap.shape[1]
        parts += [g, gap]
    parts.append(np.zeros((32, int(rng.integers(2, 8))), np.uint8))
    return np.concatenate(parts, axis=1), [int(targets[k]) for k in picks], spans


def export_digit_strings(
    root: Path, n_train: int = 3000, n_test: int = 600, seed: int = 0, captions: bool = False
) -> tuple[Path, Path]:
    """Lines of 3-5 real handwritten digits (scikit-learn's set), 32 px high.

    Writes ``root/train`` and ``root/test``, each with images and ``labels.csv``
    (``path,text``, e.g. ``314``) or, with ``captions=True``, ``captions.csv``
    (``path,caption``, e.g. ``three one four``), plus ``spans.json`` (path -> each
    digit's [x0, x1) pixel columns). Test lines use only held-out digits.
    """
    import json

    pools = _digit_pool(seed, 0.25)
    rng = np.random.default_rng(seed)
    for part, count in (("train", n_train), ("test", n_test)):
        glyphs, targets = pools[part]
        folder = root / part
        rows = ["path,caption" if captions else "path,text"]
        spans = {}
        for i in range(count):
            img, ds, spans[f"images/{i:05d}.png"] = _compose(rng, glyphs, targets, int(rng.integers(3, 6)))
            _write_png(folder / "images" / f"{i:05d}.png", img)
            label = " ".join(DIGIT_NAMES[d] for d in ds) if captions else "".join(map(str, ds))
            rows.append(f"images/{i:05d}.png,{label}")
        (folder / ("captions.csv" if captions else "labels.csv")).write_text("\n".join(rows) + "\n", encoding="utf-8")
        (folder / "spans.json").write_text(json.dumps(spans), encoding="utf-8")
    return root / "train", root / "test"
