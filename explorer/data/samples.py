"""Built-in data sets, generated on the fly (no download) and cached as ordinary image folders.

``sample:NAME`` on the command line materialises the data set once under :func:`cache_dir`
and then reads it like any user folder, so the built-in samples exercise exactly the code
paths real data does.

Generation is deterministic (fixed seed, so the same bytes every time with the same OpenCV and
NumPy) and atomic: files are written into a hidden temporary folder next to the destination
which is renamed into place when complete, so a crash or a concurrent run never exposes a
half-written data set. Bump :data:`SAMPLE_VERSION` when a generator changes its output.
"""

from __future__ import annotations

import colorsys
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from .errors import DataError

__all__ = ["SAMPLES", "SAMPLE_PREFIX", "SAMPLE_VERSION", "cache_dir", "list_samples", "materialize_sample"]

#: What the user writes in front of a sample name: ``sample:shapes``.
SAMPLE_PREFIX = "sample:"

#: Part of each materialised folder name; a new version never reuses an old folder.
SAMPLE_VERSION = 2

#: Built-in data sets: name -> one-line description.
SAMPLES: dict[str, str] = {
    "shapes": "4 classes (circle, square, triangle, star), 300 RGB 48x48 images each; random colour, size, pose",
    "shape-scenes": "1,200 RGB 64x64 scenes of two coloured shapes with two captions each "
    "('a red circle left of a blue square'); task caption; object boxes in boxes.json",
    "digit-strings": "1,200 gray lines of 3-6 printed digits (OpenCV fonts, jittered spacing, noise), 32 px high; "
    "task sequence",
}

# Written last into a finished folder; its presence is what "finished" means.
_COMPLETE_MARKER = ".complete"
# Temporary folders older than this are left-overs of a crashed run and are removed.
_STALE_TMP_SECONDS = 3600


def cache_dir() -> Path:
    """The folder for generated and cached data: ``$MODEL_EXPLORER_CACHE``, else ``~/.cache/model-explorer``."""
    env = os.environ.get("MODEL_EXPLORER_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "model-explorer"


def list_samples() -> list[str]:
    """Names of the built-in data sets, sorted (descriptions are in :data:`SAMPLES`)."""
    return sorted(SAMPLES)


def materialize_sample(name: str, root: Path | None = None) -> Path:
    """Generates a built-in data set (once) and returns its folder.

    Args:
        name: A key of :data:`SAMPLES`.
        root: Parent folder for the data set; default ``cache_dir() / "samples"``. The data set
            lives in ``root / f"{name}-v{SAMPLE_VERSION}"``.

    Returns:
        The finished folder, ready for :func:`explorer.data.sources.scan_folder`.

    Raises:
        DataError: If ``name`` is unknown (the message lists the available names) or the folder
            cannot be written.
    """
    if name not in _GENERATORS:
        available = ", ".join(f"{SAMPLE_PREFIX}{n}" for n in list_samples())
        raise DataError(f"unknown sample {name!r}; available: {available}")
    parent = Path(root).expanduser() if root is not None else cache_dir() / "samples"
    dest = parent / f"{name}-v{SAMPLE_VERSION}"
    if (dest / _COMPLETE_MARKER).is_file():
        return dest

    tmp_prefix = f".{dest.name}.tmp-"
    try:
        parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_tmp(parent, tmp_prefix)
        tmp = Path(tempfile.mkdtemp(prefix=tmp_prefix, dir=parent))
    except OSError as exc:
        raise DataError(f"{parent}: cannot create the sample folder: {exc.strerror or exc}") from exc
    try:
        _GENERATORS[name](tmp)
        (tmp / _COMPLETE_MARKER).write_text(f"{name} v{SAMPLE_VERSION}\n", encoding="utf-8")
        _publish(tmp, dest)
    except OSError as exc:
        raise DataError(f"{dest}: cannot write the sample data set: {exc.strerror or exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already after a successful rename
    return dest


def _publish(tmp: Path, dest: Path) -> None:
    """Renames the finished temporary folder to ``dest``, coping with a concurrent or a broken one."""
    try:
        os.replace(tmp, dest)
        return
    except OSError:
        if (dest / _COMPLETE_MARKER).is_file():  # another process finished first: use theirs
            return
    # ``dest`` exists without the marker (not written by us, or damaged): replace it.
    if dest.is_dir() and not dest.is_symlink():
        shutil.rmtree(dest)
    else:
        dest.unlink()
    os.replace(tmp, dest)


def _remove_stale_tmp(parent: Path, prefix: str) -> None:
    now = time.time()
    for entry in os.scandir(parent):
        if entry.name.startswith(prefix) and entry.is_dir(follow_symlinks=False):
            try:
                if now - entry.stat(follow_symlinks=False).st_mtime > _STALE_TMP_SECONDS:
                    shutil.rmtree(entry.path, ignore_errors=True)
            except OSError:
                pass  # another process removed it meanwhile


def _write_png(path: Path, img: np.ndarray, what: str) -> None:
    """Writes a uint8 gray ``(H, W)`` or RGB ``(H, W, 3)`` image as PNG; ``what`` names it in the error."""
    pixels = cv2.cvtColor(img, cv2.COLOR_RGB2BGR) if img.ndim == 3 else img
    ok, buf = cv2.imencode(".png", pixels)
    if not ok:  # pragma: no cover - PNG encoding of a small uint8 image does not fail
        raise OSError(f"cannot encode {what}")
    path.write_bytes(buf.tobytes())


# --------------------------------------------------------------------------------------------------
# shapes
# --------------------------------------------------------------------------------------------------

_SHAPES_SEED = 20240607
_SHAPES_CLASSES = ("circle", "square", "triangle", "star")
_SHAPES_PER_CLASS = 300  # 120 left the first-run preset at ~70% after 12 epochs; 300 reaches ~91%
_SHAPES_SIZE = 48
# cv2 drawing takes integer coordinates; with shift=4 they are in 1/16 pixel, so small shapes keep
# their true geometry instead of snapping to the pixel grid.
_SUBPIXEL_SHIFT = 4


def _shape_points(kind: str, cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    """Polygon vertices (fixed point, see ``_SUBPIXEL_SHIFT``) of a rotated square, triangle or star."""
    if kind == "circle":  # used by shape-scenes; the shapes sample draws circles with cv2.circle
        radii, count = [r], 48
    elif kind == "square":
        radii, count = [r], 4
    elif kind == "triangle":
        radii, count = [r * 1.15], 3  # slightly larger: a triangle covers less of its circle
    else:  # star: 5 points, alternating outer and inner radius
        radii, count = [r * 1.1, r * 0.45], 10
    t = angle + np.arange(count) * (2 * math.pi / count)
    rr = np.array([radii[i % len(radii)] for i in range(count)])
    pts = np.stack([cx + rr * np.cos(t), cy + rr * np.sin(t)], axis=1)
    return np.round(pts * (1 << _SUBPIXEL_SHIFT)).astype(np.int32)


def _shapes_image(rng: np.random.Generator, kind: str) -> np.ndarray:
    """One RGB ``_SHAPES_SIZE`` square image of ``kind``: a light shape on a dark, noisy gradient.

    Colour, size, position and rotation are random; only the outline tells the classes apart.
    The light-on-dark polarity and the pale shape colours are deliberate: with fully random colour
    pairs a small CNN needs far more than 120 images per class before it stops reacting to colour
    (measured: chance level after 20 epochs), while this set reaches >90% validation accuracy.
    """
    size = _SHAPES_SIZE
    # Background: a dark tint with a gentle gradient in a random direction.
    c0 = rng.uniform(0, 60, 3)
    c1 = np.clip(c0 + rng.uniform(-20, 20, 3), 0, 255)
    direction = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1) - 0.5
    ramp = np.clip(0.5 + xx * math.cos(direction) + yy * math.sin(direction), 0, 1)[..., None]
    background = c0 * (1 - ramp) + c1 * ramp
    # Foreground: any hue, pale to medium saturation, bright; pale colours have an edge in every channel.
    fg = np.array(colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0, 0.5), rng.uniform(0.8, 1.0))) * 255
    r = rng.uniform(12.0, 19.0)
    margin = r + 1.5
    cx, cy = rng.uniform(margin, size - margin, 2)
    angle = rng.uniform(0, 2 * math.pi)

    canvas = np.ascontiguousarray(np.rint(background).astype(np.uint8))
    color = tuple(float(v) for v in fg)
    if kind == "circle":
        # Radius scaled so a circle's area is close to the square's: size alone must not give it away.
        center = (round(cx * (1 << _SUBPIXEL_SHIFT)), round(cy * (1 << _SUBPIXEL_SHIFT)))
        radius = round(r * 0.8 * (1 << _SUBPIXEL_SHIFT))
        cv2.circle(canvas, center, radius, color, -1, cv2.LINE_AA, _SUBPIXEL_SHIFT)
    else:
        pts = _shape_points(kind, cx, cy, r, angle)
        cv2.fillPoly(canvas, [pts], color, cv2.LINE_AA, _SUBPIXEL_SHIFT)
    noisy = canvas.astype(np.float32) + rng.normal(0.0, 3.0, canvas.shape).astype(np.float32)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def _generate_shapes(folder: Path) -> None:
    rng = np.random.default_rng(_SHAPES_SEED)
    for kind in _SHAPES_CLASSES:
        class_dir = folder / kind
        class_dir.mkdir()
        for i in range(_SHAPES_PER_CLASS):
            _write_png(class_dir / f"{kind}_{i:03d}.png", _shapes_image(rng, kind), f"{kind} image {i}")


# -- digit-strings ------------------------------------------------------------------------------

_DIGITS_SEED = 20261123
_DIGITS_COUNT = 1200
_DIGITS_HEIGHT = 32
_DIGIT_FONTS = (
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX,
    cv2.FONT_HERSHEY_PLAIN,
    cv2.FONT_HERSHEY_SCRIPT_SIMPLEX,
)


def _digit_string_image(rng: np.random.Generator, text: str) -> np.ndarray:
    """One line: each digit drawn on its own with a random font, size, stroke, vertical
    jitter and gap (sometimes touching), then noise and a gentle blur; 32 px high."""
    font = _DIGIT_FONTS[int(rng.integers(len(_DIGIT_FONTS)))]
    scale = float(rng.uniform(1.0, 1.5))
    thickness = int(rng.integers(1, 4))
    ink = int(rng.integers(0, 70))
    paper = int(rng.integers(170, 256))
    glyphs = []
    for ch in text:
        (w, h), base = cv2.getTextSize(ch, font, scale, thickness)
        pad = thickness + 2
        tile = np.full((h + base + 2 * pad, w + 2 * pad), paper, np.uint8)
        cv2.putText(tile, ch, (pad, pad + h), font, scale, ink, thickness, cv2.LINE_AA)
        glyphs.append(tile)
    height = max(g.shape[0] for g in glyphs) + 6
    parts = [np.full((height, int(rng.integers(2, 10))), paper, np.uint8)]
    for g in glyphs:
        top = int(rng.integers(0, height - g.shape[0] + 1))
        col = np.full((height, g.shape[1]), paper, np.uint8)
        col[top : top + g.shape[0]] = g
        parts.append(col)
        parts.append(np.full((height, int(rng.integers(0, 8))), paper, np.uint8))
    line = np.concatenate(parts, axis=1)
    width = max(8, round(line.shape[1] * _DIGITS_HEIGHT / height))
    line = cv2.resize(line, (width, _DIGITS_HEIGHT), interpolation=cv2.INTER_AREA).astype(np.float32)
    line += rng.normal(0.0, float(rng.uniform(2, 12)), line.shape).astype(np.float32)
    line = cv2.GaussianBlur(line, (3, 3), float(rng.uniform(0.1, 0.8)))
    return np.clip(np.rint(line), 0, 255).astype(np.uint8)


def _generate_digit_strings(folder: Path) -> None:
    rng = np.random.default_rng(_DIGITS_SEED)
    images = folder / "images"
    images.mkdir()
    rows = ["path,text"]
    for i in range(_DIGITS_COUNT):
        text = "".join(str(int(d)) for d in rng.integers(0, 10, int(rng.integers(3, 7))))
        _write_png(images / f"{i:04d}.png", _digit_string_image(rng, text), f"digit string {i}")
        rows.append(f"images/{i:04d}.png,{text}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")


# -- shape-scenes -------------------------------------------------------------------------------

_SCENES_SEED = 64064
_SCENES_COUNT = 1200
_SCENE_SIZE = 64
_SCENE_COLORS = {"red": (220, 40, 40), "green": (40, 190, 60), "blue": (50, 80, 230), "yellow": (230, 210, 40)}
_SCENE_SHAPES = ("circle", "square", "triangle")
_RELATIONS = {"x": ("left of", "right of"), "y": ("above", "below")}


def _scene(rng: np.random.Generator) -> tuple[np.ndarray, list[str], list[dict[str, object]]]:
    """Two distinct (colour, shape) objects side by side or one above the other.

    Returns the RGB image, two captions (the relation read both ways) and the objects'
    boxes ``[x0, y0, x1, y1]`` in pixels, for checking where attention looks.
    """
    n = _SCENE_SIZE
    img = np.full((n, n, 3), int(rng.integers(20, 60)), np.float32)
    img += rng.normal(0, 4, img.shape).astype(np.float32)
    colors = rng.choice(list(_SCENE_COLORS), 2, replace=False)
    shapes = rng.choice(_SCENE_SHAPES, 2)
    axis = "x" if rng.random() < 0.5 else "y"
    objects = []
    for k in range(2):
        r = float(rng.uniform(8, 12))
        along = (0.27 if k == 0 else 0.73) * n + rng.uniform(-3, 3)
        across = rng.uniform(r + 2, n - r - 2)
        cx, cy = (along, across) if axis == "x" else (across, along)
        kind = str(shapes[k])
        pts = _shape_points(kind, cx, cy, r, float(rng.uniform(0, 2 * math.pi)) if kind != "circle" else 0.0)
        canvas = np.zeros((n, n), np.uint8)
        cv2.fillPoly(canvas, [pts], 255, cv2.LINE_AA, _SUBPIXEL_SHIFT)
        mask = canvas.astype(np.float32)[..., None] / 255.0
        img = img * (1 - mask) + mask * np.asarray(_SCENE_COLORS[str(colors[k])], np.float32)
        ys, xs = np.nonzero(canvas > 127)
        objects.append(
            {
                "color": str(colors[k]),
                "shape": str(shapes[k]),
                "box": [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())],
            }
        )
    a, b = (f"{o['color']} {o['shape']}" for o in objects)
    rel, inverse = _RELATIONS[axis]
    captions = [f"a {a} {rel} a {b}", f"a {b} {inverse} a {a}"]
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), captions, objects


def _generate_shape_scenes(folder: Path) -> None:
    import json

    rng = np.random.default_rng(_SCENES_SEED)
    images = folder / "images"
    images.mkdir()
    rows = ["path,caption"]
    boxes: dict[str, list[dict[str, object]]] = {}
    for i in range(_SCENES_COUNT):
        rgb, captions, objects = _scene(rng)
        name = f"images/{i:04d}.png"
        _write_png(folder / name, rgb, f"scene {i}")
        rows += [f"{name},{c}" for c in captions]
        boxes[name] = objects
    (folder / "captions.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (folder / "boxes.json").write_text(json.dumps(boxes), encoding="utf-8")


_GENERATORS: dict[str, Callable[[Path], None]] = {
    "shapes": _generate_shapes,
    "digit-strings": _generate_digit_strings,
    "shape-scenes": _generate_shape_scenes,
}
