"""Decoding whole sources into one array, and picking the input size (explorer.data.loading)."""

from __future__ import annotations

import struct
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from explorer.data import DataError, Sample, infer_image_size, load_images, prepare_image, read_image, scan_folder
from tests.data.corpus import make_bad_corpus, make_good_oddities, write_image


def _samples(paths: list[Path], target: str = "x") -> list[Sample]:
    return [Sample(p, target) for p in paths]


def _write(path: Path, img: np.ndarray, ext: str = ".png") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_image(path, img, ext)


def test_acceptance_corpus_every_bad_file_reported_once(tmp_path: Path) -> None:
    root = tmp_path / "data"
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        for i in range(3):
            _write(root / cls / f"{i}.png", rng.integers(0, 256, (12, 12, 3), dtype=np.uint8))
    bad = make_bad_corpus(root / "cat")
    good = make_good_oddities(root / "cat")

    source = scan_folder(root)
    loaded = load_images(source.samples, height=16, width=16, workers=2)
    problems = source.problems + loaded.problems

    names = Counter(Path(p.path).name for p in problems)
    assert names == Counter(set(bad)), "each bad file exactly once, nothing else"
    for problem in problems:
        reason = bad[Path(problem.path).name]
        assert reason in problem.reason, str(problem)
    kept = {s.path.name for s in loaded.samples}
    assert kept == set(good) | {"0.png", "1.png", "2.png"}
    assert len(loaded.samples) == 6 + len(good)  # 3 plain images per class, the oddities in cat
    assert loaded.images.shape == (len(loaded.samples), 16, 16, 3)
    assert loaded.color == "rgb"


def test_output_matches_prepare_image_in_input_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    paths = []
    for i in range(7):
        img = rng.integers(0, 256, (10 + i, 20 - i, 3), dtype=np.uint8)
        paths.append(_write(tmp_path / f"{i}.png", img))
    (tmp_path / "broken.png").write_bytes(b"nope")
    order = [paths[3], tmp_path / "broken.png", paths[0], paths[6], paths[1], paths[2], paths[5], paths[4]]
    loaded = load_images(_samples(order), height=8, width=9, workers=3)
    assert [s.path for s in loaded.samples] == [p for p in order if p.name != "broken.png"]
    assert loaded.images.dtype == np.uint8 and loaded.images.flags.c_contiguous
    assert loaded.images.flags.owndata  # shrunk in place, not a view of a bigger buffer
    for image, sample in zip(loaded.images, loaded.samples, strict=True):
        expected = prepare_image(read_image(sample.path), channels=3, height=8, width=9)
        np.testing.assert_array_equal(image, expected)
    assert [p.reason for p in loaded.problems] == ["not a decodable image (unknown or corrupt format)"]


def test_workers_do_not_change_the_result(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    paths = [_write(tmp_path / f"{i}.jpg", rng.integers(0, 256, (30, 30, 3), dtype=np.uint8), ".jpg") for i in range(9)]
    one = load_images(_samples(paths), height=12, width=12, workers=1)
    many = load_images(_samples(paths), height=12, width=12, workers=4)
    np.testing.assert_array_equal(one.images, many.images)


def test_color_auto_gray_and_rgb(tmp_path: Path) -> None:
    gray = _write(tmp_path / "g.png", np.full((6, 6), 90, np.uint8))
    gray3 = _write(tmp_path / "g3.png", np.full((6, 6, 3), 40, np.uint8))  # three equal channels is gray
    color = np.zeros((6, 6, 3), np.uint8)
    color[..., 2] = 200
    rgb = _write(tmp_path / "c.png", color)

    all_gray = load_images(_samples([gray, gray3]), height=4, width=4)
    assert all_gray.color == "gray" and all_gray.images.shape == (2, 4, 4, 1)
    assert all_gray.images[0].min() == 90 and all_gray.images[1].max() == 40

    # A colour image after gray ones: the gray ones are replicated into the RGB buffer.
    mixed = load_images(_samples([gray, gray3, rgb]), height=4, width=4, workers=1)
    assert mixed.color == "rgb" and mixed.images.shape == (3, 4, 4, 3)
    assert (mixed.images[0] == 90).all() and (mixed.images[1] == 40).all()
    assert (mixed.images[2][..., 0] == 200).all() and (mixed.images[2][..., 1:] == 0).all()

    forced_gray = load_images(_samples([rgb]), height=4, width=4, color="gray")
    assert forced_gray.color == "gray" and forced_gray.images.shape == (1, 4, 4, 1)
    forced_rgb = load_images(_samples([gray]), height=4, width=4, color="rgb")
    assert forced_rgb.color == "rgb" and forced_rgb.images.shape == (1, 4, 4, 3)

    with pytest.raises(ValueError, match="color must be one of"):
        load_images([], height=4, width=4, color="bgr")
    with pytest.raises(ValueError, match="resize mode"):
        load_images([], height=4, width=4, resize="cubic")


def test_progress_and_empty_input(tmp_path: Path) -> None:
    paths = [_write(tmp_path / f"{i}.png", np.zeros((3, 3), np.uint8)) for i in range(4)]
    calls: list[tuple[int, int]] = []
    load_images(_samples(paths), height=2, width=2, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    empty = load_images([], height=5, width=6)
    assert empty.images.shape[0] == 0 and empty.images.shape[1:3] == (5, 6) and empty.samples == []


def test_everything_broken_gives_empty_array(tmp_path: Path) -> None:
    bad = make_bad_corpus(tmp_path)
    loaded = load_images(_samples([tmp_path / n for n in sorted(bad)]), height=4, width=4)
    assert loaded.images.shape[0] == 0 and loaded.samples == []
    assert len(loaded.problems) == len(bad)


def test_max_pixels_is_passed_through(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.png", np.zeros((10, 10, 3), np.uint8))
    loaded = load_images(_samples([path]), height=4, width=4, max_pixels=99)
    assert loaded.samples == [] and "over the limit of 99" in loaded.problems[0].reason


# -- infer_image_size ------------------------------------------------------------------------------------


def test_infer_size_of_32x32_folder(tmp_path: Path) -> None:
    paths = [_write(tmp_path / f"{i}.png", np.zeros((32, 32, 3), np.uint8)) for i in range(5)]
    (tmp_path / "bad.png").write_bytes(b"garbage")
    assert infer_image_size(_samples([*paths, tmp_path / "bad.png", tmp_path / "gone.png"])) == (32, 32)


@pytest.mark.parametrize(
    ("sizes", "expected"),
    [
        ([(20, 30), (24, 40), (100, 50)], (24, 40)),  # medians, within bounds
        ([(480, 640)], (96, 128)),  # larger side capped, aspect kept
        ([(8, 10)], (16, 20)),  # smaller side raised, aspect kept
        ([(2, 3000)], (16, 128)),  # impossible aspect: each side clamped
    ],
)
def test_infer_size_rules(tmp_path: Path, sizes: list[tuple[int, int]], expected: tuple[int, int]) -> None:
    paths = [_write(tmp_path / f"{i}.jpg", np.zeros((h, w, 3), np.uint8), ".jpg") for i, (h, w) in enumerate(sizes)]
    assert infer_image_size(_samples(paths)) == expected


def test_infer_size_follows_exif_rotation(tmp_path: Path) -> None:
    import struct

    import cv2

    _, jpg = cv2.imencode(".jpg", np.zeros((40, 60, 3), np.uint8))
    exif = b"Exif\x00\x00II*\x00" + struct.pack("<IH", 8, 1) + struct.pack("<HHIHH", 274, 3, 1, 6, 0) + b"\x00" * 4
    data = jpg.tobytes()[:2] + b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif + jpg.tobytes()[2:]
    (tmp_path / "portrait.jpg").write_bytes(data)
    assert read_image(tmp_path / "portrait.jpg").shape == (60, 40, 3)
    assert infer_image_size(_samples([tmp_path / "portrait.jpg"])) == (60, 40)


def test_infer_size_reads_headers_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The frame header sits behind 100 KB of metadata: found with bounded reads, nothing is decoded.
    import explorer.data.decode as decode

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("infer_image_size must not decode")

    _, jpg = cv2.imencode(".jpg", np.zeros((20, 36, 3), np.uint8))
    app = b"\xff\xe2" + struct.pack(">H", 50002) + b"\x00" * 50000
    (tmp_path / "a.jpg").write_bytes(jpg.tobytes()[:2] + app + app + jpg.tobytes()[2:])
    monkeypatch.setattr(decode.cv2, "imdecodeWithMetadata", boom)
    assert infer_image_size(_samples([tmp_path / "a.jpg"])) == (20, 36)


def test_infer_size_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.png").write_bytes(b"")
    with pytest.raises(DataError, match="none of the images could be read"):
        infer_image_size(_samples([tmp_path / "bad.png"]))
    with pytest.raises(ValueError, match="min_side"):
        infer_image_size([], min_side=64, max_side=32)
