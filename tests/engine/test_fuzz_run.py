"""Every field of a run's config.json and checkpoint meta, mutated: a message, never a traceback.

Each field (and each field of the nested objects) is deleted, given the wrong type, an
out-of-range, NaN or huge value. ``evaluate``, ``predict`` and ``train --resume`` must then
exit 2 with a message naming the file, or 0 when the mutation is harmless (a field nobody
reads, a value that is still valid). Runs in-process, a few thousand cases in well under a
minute.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from explorer.cli import main
from tests.datasets import write_two_class_folder
from tests.fuzz import DELETE, key_paths, mutated

#: deleted, wrong types, out of range, NaN, huge
MUTATIONS: list[Any] = [DELETE, "x", [], None, -1, math.nan, 10**30, True]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("fuzz")
    data = write_two_class_folder(root / "data", n=6, size=8)
    run = root / "run"
    argv = ["train", str(data), "--set", "channels=4", "--epochs", "1", "--batch-size", "8", "--quiet"]
    assert main([*argv, "--out", str(run)]) == 0
    return data, run


def _readers(path: tuple) -> set[str]:
    """The commands that read a nested config field (all three read every top-level one)."""
    if path[0] in ("params", "model", "labels", "task_extra"):
        return {"predict"}
    if path[0] == "preprocess":
        return {"predict", "evaluate"}
    if path[:2] == ("data", "max_pixels"):
        return {"evaluate", "resume"}
    return {"resume"}  # data.*, train.*: the settings a resumed run goes on with


def _check(capsys: pytest.CaptureFixture[str], argv: list[str], names: tuple[str, ...], case: str) -> None:
    capsys.readouterr()
    rc = main(argv)
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err and "internal error" not in cap.err, (case, cap.err)
    assert rc in (0, 2), (case, rc, cap.err)
    if rc == 2:
        assert any(n in cap.err for n in names), (case, cap.err)
    elif "--json" in argv:
        json.loads(cap.out)  # strict JSON, whatever the values became


def test_every_config_field_mutated_is_a_message(
    base: tuple[Path, Path], tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a mutated data.cache_dir ("x", "-1", ...) is a relative folder: keep it here
    data, run = base
    image = str(next((data / "top").iterdir()))
    original = json.loads((run / "config.json").read_text())
    work = tmp_path / "run"
    shutil.copytree(run, work)
    cases = 0
    for path in key_paths(original, 2):
        top, readers = len(path) == 1, _readers(path)
        for value in MUTATIONS:
            (work / "config.json").write_text(json.dumps(mutated(original, path, value)))
            case = f"config.json {'.'.join(map(str, path))} = {value if value is not DELETE else '<deleted>'}"
            if top or "predict" in readers:
                _check(capsys, ["predict", str(work), image, "--json"], ("config.json",), case)
            if top or "evaluate" in readers:
                _check(capsys, ["evaluate", str(work), str(data), "--json"], ("config.json",), case)
            if top or "resume" in readers:
                names = ("config.json", "no such folder") if path == ("data", "source") else ("config.json",)
                _check(capsys, ["train", "--resume", str(work), "--epochs", "1", "--quiet"], names, case)
            cases += 1
    assert cases > 500


def _write_meta(ckpt: Path, tensors: dict, meta: Any) -> None:
    save_file(tensors, str(ckpt), metadata={"meta": json.dumps(meta)})


def test_every_checkpoint_meta_field_mutated_is_a_message(base: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    _, run = base
    work = tmp_path / "run"
    shutil.copytree(run, work)
    ckpt = work / "checkpoint.safetensors"
    tensors = load_file(str(ckpt))
    with safe_open(str(ckpt), framework="pt") as f:
        meta = json.loads(f.metadata()["meta"])
    cases = 0
    for path in key_paths(meta, 3):
        if path[:2] == ("state", "history") and len(path) > 3:
            continue
        for value in MUTATIONS:
            _write_meta(ckpt, tensors, mutated(meta, path, value))
            case = f"checkpoint meta {'.'.join(map(str, path))} = {value if value is not DELETE else '<deleted>'}"
            _check(
                capsys, ["train", "--resume", str(work), "--epochs", "1", "--quiet"], ("checkpoint.safetensors",), case
            )
            shutil.copy(run / "history.json", work / "history.json")
            shutil.copy(run / "weights.safetensors", work / "weights.safetensors")
            cases += 1
    for damaged in ({"no": "meta"}, None):  # metadata without "meta", or none at all
        save_file(tensors, str(ckpt), metadata=damaged)
        _check(
            capsys, ["train", "--resume", str(work), "--epochs", "1", "--quiet"], ("checkpoint.safetensors",), "no meta"
        )
    assert cases > 100


def test_resume_uses_the_intact_checkpoint_when_the_weights_are_damaged(base, tmp_path: Path, capsys) -> None:
    _, run = base
    work = tmp_path / "run"
    shutil.copytree(run, work)
    (work / "weights.safetensors").write_bytes(b"\x00" * 100)
    assert main(["predict", str(work), "x.png"]) == 2
    assert "weights.safetensors" in capsys.readouterr().err
    assert main(["train", "--resume", str(work), "--epochs", "2"]) == 0
    err = capsys.readouterr().err
    assert "weights.safetensors is damaged" in err and "checkpoint" in err
    assert [h["epoch"] for h in json.loads((work / "history.json").read_text())] == [1, 2]
    assert main(["predict", str(work), str(next((base[0] / "top").iterdir()))]) == 0


def test_labels_that_do_not_match_the_model_are_refused(base, tmp_path: Path, capsys) -> None:
    _, run = base
    work = tmp_path / "run"
    shutil.copytree(run, work)
    cfg = json.loads((work / "config.json").read_text())
    for labels in (cfg["labels"][:1], [*cfg["labels"], "extra"]):
        (work / "config.json").write_text(json.dumps({**cfg, "labels": labels}))
        assert main(["predict", str(work), "x.png"]) == 2
        err = capsys.readouterr().err
        assert "config.json: labels:" in err and "model outputs" in err and "refused" in err
