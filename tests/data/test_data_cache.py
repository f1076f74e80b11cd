"""The decoded-image cache: hits decode nothing, changes and corruption are caught, failures never stop a load."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from explorer.data import DecodedCache, Sample, load_images, loading
from explorer.data.cache import MAX_ENTRIES, row_sums

OLD = time.time() - 3600  # files older than the racy window


def _write(path: Path, img: np.ndarray, mtime: float = OLD) -> None:
    ok, buf = cv2.imencode(".png", img[:, :, ::-1] if img.ndim == 3 else img)
    assert ok
    path.write_bytes(buf.tobytes())
    os.utime(path, (mtime, mtime))


@pytest.fixture()
def files(tmp_path: Path) -> list[Sample]:
    """Gray and colour PNGs of different sizes and widths, plus one broken file."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "imgs"
    folder.mkdir()
    samples = []
    for i in range(12):
        h, w = 18 + i, 20 + 3 * i
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        if i % 3 == 0:
            img = rng.integers(0, 256, (h, w), dtype=np.uint8)
        _write(folder / f"{i:02d}.png", img)
        samples.append(Sample(folder / f"{i:02d}.png", f"c{i % 2}"))
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    os.utime(folder / "broken.png", (OLD, OLD))
    samples.insert(5, Sample(folder / "broken.png", "c0"))
    return samples


def _no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_a, **_k):
        raise AssertionError("decoded although the cache holds the file")

    monkeypatch.setattr(loading, "read_image", refuse)


def _same(a, b) -> None:
    assert a.images.shape == b.images.shape and np.array_equal(np.asarray(a.images), np.asarray(b.images))
    assert [s.path for s in a.samples] == [s.path for s in b.samples]
    assert [(p.path, p.reason) for p in a.problems] == [(p.path, p.reason) for p in b.problems]
    assert a.color == b.color
    assert (a.widths is None) == (b.widths is None)
    if a.widths is not None:
        assert np.array_equal(a.widths, b.widths)


@pytest.mark.parametrize(
    "kw",
    [
        dict(height=16, width=16),  # auto colour: gray first, then RGB
        dict(height=16, width=16, color="gray"),
        dict(height=12, width=None, max_width=64),  # variable-width lines
    ],
)
def test_a_second_load_maps_the_cache_and_decodes_nothing(files, tmp_path, monkeypatch, kw) -> None:
    cache = DecodedCache(tmp_path / "cache")
    plain = load_images(files, **kw)
    first = load_images(files, cache=cache, **kw)
    _same(first, plain)
    assert first.decoded == len(files)
    _no_decoding(monkeypatch)
    second = load_images(files, cache=cache, **kw, workers=2)
    _same(second, plain)
    assert second.decoded == 0 and second.mapped and second.note is None
    assert np.array_equal(second.sums, row_sums(np.asarray(plain.images), plain.widths))


def test_a_subset_or_another_order_reuses_rows_of_the_entry(files, tmp_path, monkeypatch) -> None:
    cache = DecodedCache(tmp_path / "cache")
    load_images(files, height=16, width=16, cache=cache)
    subset = files[::-2]  # reversed and every other one: another entry, built from cached rows
    plain = load_images(subset, height=16, width=16)
    _no_decoding(monkeypatch)
    again = load_images(subset, height=16, width=16, cache=cache)
    _same(again, plain)
    assert again.decoded == 0


def test_a_changed_file_is_decoded_again_and_only_it(files, tmp_path) -> None:
    cache = DecodedCache(tmp_path / "cache")
    load_images(files, height=16, width=16, cache=cache)
    changed = files[3].path
    _write(changed, np.full((30, 30, 3), (200, 10, 10), np.uint8), mtime=OLD + 10)
    plain = load_images(files, height=16, width=16)
    again = load_images(files, height=16, width=16, cache=cache)
    _same(again, plain)
    assert again.decoded == 1
    row = [s.path for s in again.samples].index(changed)
    assert tuple(again.images[row, 8, 8]) == (200, 10, 10)
    assert load_images(files, height=16, width=16, cache=cache).decoded == 0  # the new entry holds it


def test_a_file_written_just_now_is_not_trusted_to_its_time_stamp(files, tmp_path) -> None:
    cache = DecodedCache(tmp_path / "cache")
    _write(files[0].path, np.zeros((20, 20), np.uint8), mtime=time.time())
    load_images(files, height=16, width=16, cache=cache)
    # same size, same second: a cache keyed by (size, mtime) alone would serve the old pixels
    _write(files[0].path, np.full((20, 20), 255, np.uint8), mtime=os.stat(files[0].path).st_mtime)
    again = load_images(files, height=16, width=16, cache=cache)
    assert again.decoded == 1 and again.images[0].min() == 255


def test_other_preprocessing_gets_its_own_entry(files, tmp_path, monkeypatch) -> None:
    cache = DecodedCache(tmp_path / "cache")
    kws = [dict(height=16, width=16), dict(height=16, width=20), dict(height=16, width=16, resize="linear")]
    plains = [load_images(files, **kw) for kw in kws]
    for kw in kws:
        assert load_images(files, cache=cache, **kw).decoded == len(files)
    assert len([p for p in (tmp_path / "cache").iterdir() if p.is_dir()]) == len(kws)
    _no_decoding(monkeypatch)
    for kw, plain in zip(kws, plains, strict=True):
        _same(load_images(files, cache=cache, **kw), plain)


def _entry(tmp_path: Path) -> tuple[Path, Path]:
    (index,) = (tmp_path / "cache").glob("*/*.json")
    return index, index.with_name(json.loads(index.read_text())["data"])


@pytest.mark.parametrize("damage", ["truncate", "index_bytes", "index_row", "pixels", "garbage_index"])
def test_a_damaged_entry_is_detected_and_rebuilt(files, tmp_path, damage) -> None:
    cache = DecodedCache(tmp_path / "cache")
    plain = load_images(files, height=16, width=16)
    load_images(files, height=16, width=16, cache=cache)
    index, data = _entry(tmp_path)
    if damage == "truncate":
        os.truncate(data, data.stat().st_size - 100)
    elif damage == "index_bytes":  # a flipped digit somewhere in the index
        text = index.read_text()
        i = text.index('"rows":[') + 8
        index.write_text(text[:i] + ("1" if text[i] != "1" else "2") + text[i + 1 :])
    elif damage == "index_row":  # a consistent-looking index whose checksum was not updated
        obj = json.loads(index.read_text())
        obj["rows"][0], obj["rows"][1] = obj["rows"][1], obj["rows"][0]
        index.write_text(json.dumps(obj))
    elif damage == "pixels":  # the first row (always in the sampled digest) overwritten
        with open(data, "r+b") as f:
            f.write(b"\x00" * 16 * 16 * 3)
    else:
        index.write_bytes(b"\x00\xff not json")
    again = load_images(files, height=16, width=16, cache=cache)
    _same(again, plain)
    assert again.decoded == len(files) and "rebuilt" in (again.note or "")
    assert load_images(files, height=16, width=16, cache=cache).decoded == 0


def test_an_unusable_cache_folder_falls_back_to_decoding_with_a_note(files, tmp_path, caplog) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    plain = load_images(files, height=16, width=16)
    loaded = load_images(files, height=16, width=16, cache=DecodedCache(blocker / "cache"))
    _same(loaded, plain)
    assert not loaded.mapped and str(blocker) in (loaded.note or "")
    assert "decoding without it" in caplog.text


def test_a_failed_write_keeps_the_decoded_images(files, tmp_path, monkeypatch) -> None:
    from explorer.data import cache as cache_mod

    def full_disk(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache_mod, "write_bytes", full_disk)
    plain = load_images(files, height=16, width=16)
    loaded = load_images(files, height=16, width=16, cache=DecodedCache(tmp_path / "cache"))
    _same(loaded, plain)
    assert "No space left" in (loaded.note or "")
    assert not list((tmp_path / "cache").glob("*/*.json"))
    assert not list((tmp_path / "cache").glob("*/.tmp-*"))  # temporaries are cleaned up


def test_concurrent_writers_leave_a_valid_entry(files, tmp_path, monkeypatch) -> None:
    cache_root = tmp_path / "cache"
    plain = load_images(files, height=16, width=16)
    results: list = []
    barrier = threading.Barrier(3)

    def run() -> None:
        barrier.wait()
        results.append(load_images(files, height=16, width=16, cache=DecodedCache(cache_root), workers=1))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3
    for r in results:
        _same(r, plain)
    _no_decoding(monkeypatch)
    _same(load_images(files, height=16, width=16, cache=DecodedCache(cache_root)), plain)
    assert len(list(cache_root.glob("*/*.u8"))) == 1  # the losers' data files were removed


def test_old_entries_are_pruned(files, tmp_path) -> None:
    cache = DecodedCache(tmp_path / "cache")
    for i in range(MAX_ENTRIES + 3):
        load_images(files[: i + 2], height=16, width=16, cache=cache)
    assert len(list((tmp_path / "cache").glob("*/*.json"))) == MAX_ENTRIES
    assert len(list((tmp_path / "cache").glob("*/*.u8"))) == MAX_ENTRIES


@pytest.mark.parametrize("width", [16, None])
def test_a_set_colour_reuses_the_exact_rows_of_an_auto_entry(files, tmp_path, width) -> None:
    """A resumed run or ``evaluate`` asks for the colour the training run resolved."""
    cache = DecodedCache(tmp_path / "cache")
    kw = dict(height=16, width=width, max_width=64)
    assert load_images(files, cache=cache, **kw).color == "rgb"
    rgb = load_images(files, cache=cache, color="rgb", **kw)
    _same(rgb, load_images(files, color="rgb", **kw))
    assert rgb.decoded == 0  # every row of an RGB entry is exact (gray rows are replicated)
    gray = load_images(files, cache=DecodedCache(tmp_path / "cache"), color="gray", **kw)
    _same(gray, load_images(files, color="gray", **kw))
    assert gray.decoded == 8  # the colour images: luminance at full resolution differs from after resizing
