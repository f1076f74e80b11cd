"""Built-in sample data sets (explorer.data.samples)."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import numpy as np
import pytest

from explorer.data import SAMPLES, DataError, cache_dir, list_samples, materialize_sample, read_image, scan_folder
from explorer.data import samples as samples_module


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(path.relative_to(folder).as_posix().encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def test_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MODEL_EXPLORER_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("MODEL_EXPLORER_CACHE")
    assert cache_dir() == Path.home() / ".cache" / "model-explorer"


def test_listing() -> None:
    assert list_samples() == sorted(SAMPLES) and "shapes" in SAMPLES
    assert all(isinstance(d, str) and "\n" not in d for d in SAMPLES.values())


def test_shapes_content(tmp_path: Path) -> None:
    start = time.perf_counter()
    folder = materialize_sample("shapes", tmp_path)
    elapsed = time.perf_counter() - start
    assert folder == tmp_path / "shapes-v2"
    assert elapsed < 10  # ~0.2 s normally; generous for loaded CI machines
    source = scan_folder(folder)
    assert source.classes == ["circle", "square", "star", "triangle"]
    assert len(source.samples) == 1200 and source.problems == []
    img = read_image(source.samples[0].path)
    assert img.shape == (48, 48, 3) and img.dtype == np.uint8
    assert img.std() > 10  # a shape on a background, not a flat image
    assert [e.name for e in tmp_path.iterdir()] == ["shapes-v2"]  # no temporary folder left


def test_deterministic_and_reused(tmp_path: Path) -> None:
    a = materialize_sample("shapes", tmp_path / "a")
    b = materialize_sample("shapes", tmp_path / "b")
    assert _digest(a) == _digest(b)
    inode = (a / "circle" / "circle_000.png").stat().st_ino
    assert materialize_sample("shapes", tmp_path / "a") == a
    assert (a / "circle" / "circle_000.png").stat().st_ino == inode  # reused, not regenerated


def test_stale_temp_dir_and_incomplete_folder(tmp_path: Path) -> None:
    stale = tmp_path / ".shapes-v2.tmp-crashed"
    (stale / "circle").mkdir(parents=True)
    (stale / "circle" / "half.png").write_bytes(b"\x89PNG")
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    fresh = tmp_path / ".shapes-v2.tmp-running"  # maybe another process right now: left alone
    fresh.mkdir()
    incomplete = tmp_path / "shapes-v2"  # e.g. copied by hand, without the completion marker
    (incomplete / "circle").mkdir(parents=True)

    folder = materialize_sample("shapes", tmp_path)
    assert folder == incomplete
    assert len(scan_folder(folder).samples) == 1200
    assert not stale.exists() and fresh.exists()


def test_concurrent_finisher_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Simulate another process publishing the folder while we generate: we must use theirs.
    real = samples_module._GENERATORS["shapes"]

    def racing(folder: Path) -> None:
        real(folder)
        other = tmp_path / "shapes-v2"
        (other / "circle").mkdir(parents=True)
        (other / "circle" / "theirs.png").write_bytes(b"x")
        (other / samples_module._COMPLETE_MARKER).write_text("done")

    monkeypatch.setitem(samples_module._GENERATORS, "shapes", racing)
    folder = materialize_sample("shapes", tmp_path)
    assert (folder / "circle" / "theirs.png").exists()
    assert [e.name for e in tmp_path.iterdir()] == ["shapes-v2"]


def test_unknown_sample(tmp_path: Path) -> None:
    with pytest.raises(
        DataError, match="unknown sample 'digits'; available: sample:digit-strings, sample:shape-scenes, sample:shapes"
    ):
        materialize_sample("digits", tmp_path)


def test_digit_strings_and_shape_scenes_are_manifests_of_their_tasks(tmp_path: Path) -> None:
    import json

    from explorer.data import scan_folder

    strings = scan_folder(materialize_sample("digit-strings", tmp_path))
    assert strings.task == "sequence" and len(strings.samples) == 1200 and not strings.problems
    assert all(s.target.isdigit() and 3 <= len(s.target) <= 6 for s in strings.samples)
    scenes_dir = materialize_sample("shape-scenes", tmp_path)
    scenes = scan_folder(scenes_dir)
    assert scenes.task == "caption" and len(scenes.samples) == 2400 and not scenes.problems
    boxes = json.loads((scenes_dir / "boxes.json").read_text())
    assert len(boxes) == 1200
    first = scenes.samples[0]
    objects = boxes[first.path.relative_to(scenes_dir).as_posix()]
    for o in objects:  # each object's words are in the caption and its box is inside the image
        assert o["color"] in first.target and o["shape"] in first.target
        x0, y0, x1, y1 = o["box"]
        assert 0 <= x0 < x1 < 64 and 0 <= y0 < y1 < 64
