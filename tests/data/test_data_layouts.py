"""Manifest layouts declared once (explorer.data.layouts), and the readers that consult them."""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

import explorer.data
from explorer.data import layouts, read_coco_captions, read_manifest, scan_folder
from explorer.data.layouts import CAPTION, LABEL, MANIFEST_LAYOUTS, TEXT, TargetLayout, find_layout
from explorer.data.sources import TARGET_COLUMNS
from tests.data.corpus import write_image

PACKAGE = Path(explorer.data.__file__).parent
TASK_NAMES = {"classify", "sequence", "caption"}


def _touch_image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_image(path, np.zeros((4, 4, 3), np.uint8), ".png")


def _manifest(tmp_path: Path, text: str, name: str = "m.csv") -> Path:
    _touch_image(tmp_path / "a.png")
    _touch_image(tmp_path / "b.png")
    (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path / name


def test_the_declared_layouts() -> None:
    assert [(x.column, x.task, x.repeats) for x in MANIFEST_LAYOUTS] == [
        ("label", "classify", False),
        ("text", "sequence", False),
        ("caption", "caption", True),
    ]
    assert MANIFEST_LAYOUTS == (LABEL, TEXT, CAPTION)
    assert layouts.FOLDER_LAYOUT is LABEL and layouts.COCO_LAYOUT is CAPTION
    assert TARGET_COLUMNS == {"label": "classify", "text": "sequence", "caption": "caption"}
    assert all(x.parse("  a  b \n") == "a  b" for x in MANIFEST_LAYOUTS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        LABEL.repeats = True  # type: ignore[misc]


def test_find_layout_first_declared_column_wins() -> None:
    assert find_layout(["path", "caption", "label"]) is LABEL
    assert find_layout(["path", "caption", "text"]) is TEXT
    assert find_layout(["caption"]) is CAPTION
    assert find_layout(["path", "target"]) is None


@pytest.mark.parametrize("layout", MANIFEST_LAYOUTS, ids=lambda x: x.column)
def test_reader_follows_each_layout(tmp_path: Path, layout: TargetLayout) -> None:
    path = _manifest(tmp_path, f"path,{layout.column}\na.png, one \nb.png,two\na.png,three\n")
    source = read_manifest(path)
    assert source.task == layout.task
    expected = [("a.png", "one"), ("b.png", "two")] + ([("a.png", "three")] if layout.repeats else [])
    assert [(s.path.name, s.target) for s in source.samples] == expected
    reasons = [p.reason for p in source.problems]
    assert reasons == ([] if layout.repeats else ["m.csv line 4: duplicate of line 2"])


def test_reader_consults_the_declaration_not_task_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A new target kind is one declaration: the reader needs no change to honour its column,
    # task, repeat rule and parser.
    digits = TargetLayout("digits", "sequence", repeats=True, parse=lambda cell: cell.replace(" ", ""))
    monkeypatch.setattr(layouts, "MANIFEST_LAYOUTS", (digits, *MANIFEST_LAYOUTS))
    source = read_manifest(_manifest(tmp_path, "path,digits\na.png,1 2 3\na.png,4 5\nb.png, \n"))
    assert source.task == "sequence"
    assert [s.target for s in source.samples] == ["123", "45"]
    assert [p.reason for p in source.problems] == ["m.csv line 4: empty digits"]
    with pytest.raises(explorer.data.DataError, match=r"\(digits, label, text, caption\)"):
        read_manifest(_manifest(tmp_path, "path,target\na.png,x\n", "bad.csv"))


def test_folder_and_coco_sources_take_their_layouts_task(tmp_path: Path) -> None:
    _touch_image(tmp_path / "folders" / "cat" / "a.png")
    assert scan_folder(tmp_path / "folders").task == layouts.FOLDER_LAYOUT.task
    _touch_image(tmp_path / "coco" / "a.png")
    doc = {"images": [{"id": 1, "file_name": "a.png"}], "annotations": [{"image_id": 1, "caption": " a cat "}]}
    (tmp_path / "coco" / "captions.json").write_text(json.dumps(doc), encoding="utf-8")
    source = read_coco_captions(tmp_path / "coco" / "captions.json")
    assert source.task == layouts.COCO_LAYOUT.task and [s.target for s in source.samples] == ["a cat"]


def _task_names_in(node: ast.AST) -> list[str]:
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and n.value in TASK_NAMES]


def test_no_task_name_branches_outside_the_layout_declaration() -> None:
    # Outside layouts.py no module of the data layer compares with a task name, maps to one or
    # hands one to a Source: the layouts say which task a layout implies. (A JSON key such as
    # COCO's "caption" is data, not a task, so subscripts are not looked at.)
    for path in sorted(PACKAGE.glob("*.py")):
        if path.name == "layouts.py":
            continue
        found: list[str] = []
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare):
                found += _task_names_in(node)
            elif isinstance(node, ast.Dict):
                found += [name for value in node.values if value is not None for name in _task_names_in(value)]
            elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Source":
                found += [name for arg in [*node.args, *node.keywords] for name in _task_names_in(arg)]
            elif isinstance(node, ast.AnnAssign | ast.Return) and node.value is not None:
                found += [n.value for n in [node.value] if isinstance(n, ast.Constant) and n.value in TASK_NAMES]
        assert not found, f"{path.name} branches on or assigns task names {found}; declare them in layouts.py"
