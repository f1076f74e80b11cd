"""Listing samples: class folders, manifests, dropped files, open_source (explorer.data.sources)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from explorer.data import DataError, Problem, Sample, Source, from_files, open_source, read_manifest, scan_folder
from tests.data.corpus import make_bad_corpus, write_image

IMG = np.zeros((4, 4, 3), np.uint8)


def _touch_image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_image(path, IMG, ".png")


def _rel(source: Source, root: Path) -> list[tuple[str, str]]:
    return [(s.path.relative_to(root).as_posix(), s.target) for s in source.samples]


# -- class folders -----------------------------------------------------------------------------------


def test_class_per_folder_layout(tmp_path: Path) -> None:
    for rel in ["dog/b.png", "dog/a.JPG", "cat/z/deep.png", "cat/y.png", "cat/z.png", "bird/1.webp"]:
        _touch_image(tmp_path / rel)
    (tmp_path / "cat" / "notes.txt").write_text("ignored")
    (tmp_path / "cat" / ".hidden.png").write_bytes(b"")
    _touch_image(tmp_path / "cat" / ".thumbs" / "t.png")
    _touch_image(tmp_path / ".git" / "objects" / "x.png")
    (tmp_path / "README.md").write_text("top-level files are not classes")

    source = scan_folder(tmp_path)
    assert source.task == "classify" and source.origin == str(tmp_path)
    assert source.problems == []
    assert _rel(source, tmp_path) == [
        ("bird/1.webp", "bird"),
        ("cat/y.png", "cat"),
        ("cat/z/deep.png", "cat"),  # sorted component by component: folder "z" before file "z.png"
        ("cat/z.png", "cat"),
        ("dog/a.JPG", "dog"),
        ("dog/b.png", "dog"),
    ]
    assert source.classes == ["bird", "cat", "dog"]
    assert all(isinstance(s.path, Path) for s in source.samples)


def test_scan_is_deterministic(tmp_path: Path) -> None:
    for i in range(20):
        _touch_image(tmp_path / f"c{i % 3}" / f"{(i * 7) % 20:02d}.png")
    assert scan_folder(tmp_path) == scan_folder(tmp_path)


def test_bad_files_become_problems_without_decoding(tmp_path: Path) -> None:
    expected = make_bad_corpus(tmp_path / "cat")
    _touch_image(tmp_path / "cat" / "good.png")
    source = scan_folder(tmp_path)
    by_name = {Path(p.path).name: p.reason for p in source.problems}
    # Only the entries that can be judged without decoding are problems at this stage.
    structural = {n: r for n, r in expected.items() if r in ("is a directory", "broken symbolic link")}
    assert by_name == structural
    names = sorted(s.path.name for s in source.samples)
    assert names == sorted(set(expected) - set(structural) | {"good.png"})


def test_image_named_directory_is_reported_not_searched(tmp_path: Path) -> None:
    _touch_image(tmp_path / "cat" / "photos.jpg" / "inner.png")
    _touch_image(tmp_path / "cat" / "ok.png")
    source = scan_folder(tmp_path)
    assert [s.path.name for s in source.samples] == ["ok.png"]
    assert [(Path(p.path).name, p.reason) for p in source.problems] == [("photos.jpg", "is a directory")]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_symlinked_files_are_followed_and_folder_loops_are_not(tmp_path: Path) -> None:
    target = _touch_image(tmp_path / "elsewhere" / "real.png")
    (tmp_path / "data" / "cat").mkdir(parents=True)
    os.symlink(target, tmp_path / "data" / "cat" / "link.png")
    os.symlink(tmp_path / "data", tmp_path / "data" / "cat" / "loop")
    source = scan_folder(tmp_path / "data")
    assert [s.path.name for s in source.samples] == ["link.png"]


def test_unreadable_subfolder_is_a_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import explorer.data.sources as sources

    _touch_image(tmp_path / "cat" / "ok.png")
    real_walk = os.walk

    def walk(top: Path, onerror: Callable[[OSError], None], followlinks: bool = False) -> Iterator[tuple]:
        # Simulated: permissions do not stop root, and tests may run as root in containers.
        onerror(PermissionError(13, "Permission denied", str(Path(top) / "locked")))
        yield from real_walk(top, onerror=onerror, followlinks=followlinks)

    monkeypatch.setattr(sources.os, "walk", walk)
    source = scan_folder(tmp_path)
    assert [s.path.name for s in source.samples] == ["ok.png"]
    assert [str(p) for p in source.problems] == [
        f"{tmp_path / 'cat' / 'locked'}: cannot read folder: Permission denied"
    ]


def test_unusable_roots_raise_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        scan_folder(tmp_path / "nope")
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(DataError, match="not a folder"):
        scan_folder(tmp_path / "file.png")

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="folder is empty") as info:
        scan_folder(empty)
    assert str(empty) in str(info.value) and "sub-folder per class" in str(info.value)

    loose = tmp_path / "loose"
    _touch_image(loose / "a.png")
    with pytest.raises(DataError, match="directly in the folder but no class sub-folders"):
        scan_folder(loose)

    no_images = tmp_path / "no_images"
    (no_images / "cat").mkdir(parents=True)
    (no_images / "cat" / "a.txt").write_text("x")
    with pytest.raises(DataError, match="no image files found"):
        scan_folder(no_images)


# -- manifests -------------------------------------------------------------------------------------------


def test_manifest_in_folder_takes_precedence(tmp_path: Path) -> None:
    _touch_image(tmp_path / "images" / "a.png")
    _touch_image(tmp_path / "images" / "b b.png")
    _touch_image(tmp_path / "cat" / "ignored.png")  # would be a class without the manifest
    (tmp_path / "labels.csv").write_text('path,label\nimages/a.png,cat\n"images/b b.png", dog \n', encoding="utf-8")
    source = scan_folder(tmp_path)
    assert source.origin == str(tmp_path / "labels.csv")
    assert _rel(source, tmp_path) == [("images/a.png", "cat"), ("images/b b.png", "dog")]
    assert source.problems == []


def test_manifest_bom_crlf_extras_and_case(tmp_path: Path) -> None:
    _touch_image(tmp_path / "a.png")
    _touch_image(tmp_path / "b.png")
    text = "Path,Label,age,notes,weight\r\na.png,x,3,hello,1.5\r\n\r\nb.png,y,,world,-2\r\n"
    (tmp_path / "m.csv").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    source = read_manifest(tmp_path / "m.csv")
    assert source.problems == []
    assert [s.target for s in source.samples] == ["x", "y"]
    assert source.samples[0].extras == (("age", 3.0), ("weight", 1.5))  # 'notes' is not numeric
    name, value = source.samples[1].extras[0]
    assert name == "age" and math.isnan(value)
    assert source.samples[1].extras[1] == ("weight", -2.0)


def test_manifest_row_problems_name_the_line(tmp_path: Path) -> None:
    _touch_image(tmp_path / "img" / "ok.png")
    _touch_image(tmp_path / "img" / "ok2.png")
    (tmp_path / "img" / "sub.png").mkdir()
    lines = [
        "path,label",  # 1
        "img/ok.png,cat",  # 2
        "img/missing.png,cat",  # 3
        "img/ok2.png,",  # 4
        "img/ok2.png,dog,extra",  # 5
        "img/sub.png,dog",  # 6
        "img/ok.png,dog",  # 7 duplicate
        ",dog",  # 8
        "img/ok2.png,dog",  # 9
    ]
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    source = read_manifest(tmp_path / "labels.csv")
    assert _rel(source, tmp_path) == [("img/ok.png", "cat"), ("img/ok2.png", "dog")]
    reasons = [p.reason for p in source.problems]
    assert reasons == [
        "labels.csv line 3: file not found",
        "labels.csv line 4: empty label",
        "labels.csv line 5: expected 2 columns, found 3",
        "labels.csv line 6: is a directory",
        "labels.csv line 7: duplicate of line 2",
        "labels.csv line 8: empty path",
    ]
    assert str(source.problems[0]) == f"{tmp_path / 'img' / 'missing.png'}: labels.csv line 3: file not found"
    assert source.problems[2].path == str(tmp_path / "labels.csv")  # no file to name: the manifest is named


def test_manifest_tasks(tmp_path: Path) -> None:
    _touch_image(tmp_path / "a.png")
    (tmp_path / "captions.csv").write_text("path,caption\na.png,a cat\n", encoding="utf-8")
    assert scan_folder(tmp_path).task == "caption"  # the caption layout's manifest name
    (tmp_path / "seq.csv").write_text("path,text\na.png,HELLO 42\n", encoding="utf-8")
    assert read_manifest(tmp_path / "seq.csv").task == "sequence"
    (tmp_path / "cap.csv").write_text("path,caption\na.png,a cat\na.png,a small cat\n", encoding="utf-8")
    captions = read_manifest(tmp_path / "cap.csv")
    assert captions.task == "caption" and len(captions.samples) == 2 and captions.problems == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "manifest is empty"),
        (b"a.png,cat\n", "header naming a 'path' column"),
        (b"path,label\n", "header but no rows"),
        (b"path,label\n\xff\xfe,cat\n", "not a UTF-8 text file"),
    ],
)
def test_manifest_file_errors(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "labels.csv").write_bytes(content)
    with pytest.raises(DataError, match=message) as info:
        read_manifest(tmp_path / "labels.csv")
    assert "labels.csv" in str(info.value)


def test_manifest_missing(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        read_manifest(tmp_path / "nope.csv")


# -- dropped files and open_source -----------------------------------------------------------------------


def test_from_files(tmp_path: Path) -> None:
    a = _touch_image(tmp_path / "a.png")
    _touch_image(tmp_path / "folder" / "x" / "b.png")
    (tmp_path / "notes.txt").write_text("x")
    source = from_files([a, tmp_path / "folder", tmp_path / "notes.txt", tmp_path / "gone.png", a], "mine")
    assert [s.path.name for s in source.samples] == ["a.png", "b.png"]
    assert {s.target for s in source.samples} == {"mine"}
    assert [(Path(p.path).name, p.reason) for p in source.problems] == [
        ("notes.txt", "not an image file type (.txt)"),
        ("gone.png", "file not found"),
    ]
    assert source.origin == "5 dropped files"
    with pytest.raises(DataError, match="non-empty label"):
        from_files([a], " ")
    (tmp_path / "void").mkdir()
    with pytest.raises(DataError, match="no image files"):
        from_files([tmp_path / "void"], "x")


def test_open_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _touch_image(tmp_path / "data" / "cat" / "a.png")
    assert open_source(tmp_path / "data").classes == ["cat"]
    assert open_source(str(tmp_path / "data")).classes == ["cat"]

    _touch_image(tmp_path / "m" / "a.png")
    (tmp_path / "m" / "list.csv").write_text("path,label\na.png,dog\n", encoding="utf-8")
    assert open_source(tmp_path / "m" / "list.csv").classes == ["dog"]

    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(DataError, match=r"file\.txt: not a data folder"):
        open_source(tmp_path / "file.txt")
    with pytest.raises(DataError, match="no such folder or file"):
        open_source(tmp_path / "missing")
    with pytest.raises(
        DataError, match="unknown sample 'nope'; available: sample:digit-strings, sample:shape-scenes, sample:shapes"
    ):
        open_source("sample:nope")

    monkeypatch.setenv("MODEL_EXPLORER_CACHE", str(tmp_path / "cache"))
    source = open_source("sample:shapes")
    assert source.origin == "sample:shapes"
    assert source.classes == ["circle", "square", "star", "triangle"]
    assert len(source.samples) == 1200 and source.problems == []


def test_problem_and_sample_values() -> None:
    problem = Problem("/data/x.png", "empty file")
    assert str(problem) == "/data/x.png: empty file"
    with pytest.raises(AttributeError):
        problem.reason = "other"  # type: ignore[misc]
    sample = Sample(Path("a.png"), "cat")
    assert sample.extras == () and hash(sample) == hash(Sample(Path("a.png"), "cat"))
