"""Exports never clobber: where an export may write, and what it refuses (issues 10 and 11)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from explorer import load_run
from explorer.cli import main
from explorer.engine.export import ExportTargetError, export_files
from explorer.engine.export.target import plan_files
from tests.engine.export_helpers import make_run


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("t") / "run", "cnn", "classify", params={"channels": "4,8"})


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_suffix_is_appended_only_when_missing(tmp_path: Path) -> None:
    assert plan_files("onnx", tmp_path / "m", [""], []).models[""] == tmp_path / "m.onnx"
    assert plan_files("onnx", tmp_path / "m.onnx", [""], []).models[""] == tmp_path / "m.onnx"
    assert plan_files("pt2", tmp_path / "m.v2", [""], []).models[""] == tmp_path / "m.v2.pt2"
    files = plan_files("onnx", tmp_path / "cap.onnx", ["encoder", "decoder"], [])
    assert files.all() == [tmp_path / "cap.encoder.onnx", tmp_path / "cap.decoder.onnx", tmp_path / "cap.json"]
    with pytest.raises(ExportTargetError, match="written as m.onnx"):
        plan_files("onnx", tmp_path / "m.safetensors", [""], [])
    with pytest.raises(ExportTargetError, match="JSON is written beside it"):
        plan_files("safetensors", tmp_path / "m.json", [""], [])


def test_cli_refuses_the_runs_own_files(run: Path, capsys) -> None:
    before = _snapshot(run)
    for name, fmt in (("config.json", "safetensors"), ("weights.safetensors", "safetensors"), ("config", "onnx")):
        assert main(["export", str(run), "--format", fmt, "--out", str(run / name)]) == 2
        assert "belongs to the run" in capsys.readouterr().err
    assert _snapshot(run) == before
    assert load_run(run).labels  # still a usable run


def test_cli_refuses_devices_fifos_and_folders(run: Path, tmp_path: Path, capsys) -> None:
    assert main(["export", str(run), "--format", "safetensors", "--out", "/dev/null"]) == 2
    assert "device or special file" in capsys.readouterr().err
    assert not Path("/dev/null.safetensors").exists() and not Path("/dev/null.json").exists()
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert main(["export", str(run), "--format", "onnx", "--out", str(fifo)]) == 2  # never opened: no hang
    assert main(["export", str(run), "--format", "safetensors", "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    os.mkfifo(tmp_path / "m.json")  # the JSON beside the model would be a FIFO
    assert main(["export", str(run), "--format", "safetensors", "--out", str(tmp_path / "m")]) == 2
    assert not (tmp_path / "m.safetensors").exists()


def test_cli_refuses_a_missing_folder_and_creates_none(run: Path, tmp_path: Path, capsys) -> None:
    assert main(["export", str(run), "--format", "safetensors", "--out", str(tmp_path / "no" / "such" / "m")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()


def test_export_has_the_users_file_mode_and_writes_only_its_files(run: Path, tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        assert main(["export", str(run), "--format", "safetensors", "--out", str(tmp_path / "m")]) == 0
    finally:
        os.umask(old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.safetensors"]  # no temporaries left
    for p in tmp_path.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o640


def test_a_bundle_is_not_exported_over_itself(run: Path, tmp_path: Path) -> None:
    assert main(["export", str(run), "--format", "safetensors", "--out", str(tmp_path / "m")]) == 0
    bundle = load_run(tmp_path / "m.safetensors")
    with pytest.raises(ExportTargetError, match="belongs to the run"):
        export_files(bundle, "safetensors", tmp_path / "m")
    assert export_files(bundle, "safetensors", tmp_path / "copy") == [
        tmp_path / "copy.safetensors",
        tmp_path / "copy.json",
    ]
