"""The Export dialog: an ONNX export in a worker thread with its verification shown; refused
destinations shown inline with Export disabled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from explorer.cli import main
from explorer.ui.export_dialog import ExportDialog
from tests.datasets import write_two_class_folder


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cnn")
    data = write_two_class_folder(root / "data", n=8, size=16)
    out = root / "run"
    argv = ["train", str(data), "--arch", "cnn", "--set", "channels=4,8", "--epochs", "1", "--batch-size", "8"]
    assert main([*argv, "--out", str(out), "--quiet"]) == 0
    return out


def test_onnx_export_runs_in_a_thread_and_shows_the_check(qtbot, cnn_run: Path, tmp_path: Path) -> None:
    dlg = ExportDialog(cnn_run)
    qtbot.addWidget(dlg)
    dlg.format_box.setCurrentIndex(dlg.format_box.findData("onnx"))
    dest = tmp_path / "tiny.onnx"
    dlg.dest_edit.setText(str(dest))
    assert dlg.check_destination()
    assert str(dest) in dlg.files_label.text() and "tiny.json" in dlg.files_label.text()
    assert dlg.export_btn.isEnabled()
    dlg.export_btn.click()
    assert dlg.busy and not dlg.export_btn.isEnabled()
    dlg.close()  # closing during the export waits for it instead of destroying the thread
    assert dlg.busy
    qtbot.waitUntil(lambda: not dlg.busy, timeout=240_000)
    assert dlg.error is None, dlg.error
    r = dlg.result
    assert r is not None and r.format == "onnx" and r.max_abs_diff is not None and r.max_abs_diff <= 1e-4
    text = dlg.status.text()
    assert "max abs difference" in text and f"{r.max_abs_diff:.2e}" in text
    shape = "×".join(str(n) for n in r.graphs[0]["check"]["inputs"][0])
    assert shape in text  # the input the check ran on
    assert dest.is_file() and json.loads(dest.with_suffix(".json").read_text())["arch"] == "cnn"
    assert str(dest.with_suffix(".json")) in text
    assert not dlg.isVisible()  # it closed when the export ended


def test_a_runs_own_file_is_refused_inline(qtbot, cnn_run: Path) -> None:
    before = (cnn_run / "config.json").read_bytes()
    dlg = ExportDialog(cnn_run)
    qtbot.addWidget(dlg)
    dlg.format_box.setCurrentIndex(dlg.format_box.findData("onnx"))
    dlg.dest_edit.setText(str(cnn_run / "config.json"))
    assert not dlg.check_destination()
    assert "belongs to the run" in dlg.files_label.text()
    assert not dlg.export_btn.isEnabled()
    dlg.start_export()  # refused again even if called directly
    assert not dlg.busy
    assert (cnn_run / "config.json").read_bytes() == before


def test_format_change_keeps_the_name_and_shows_what_it_is_for(qtbot, cnn_run: Path, tmp_path: Path) -> None:
    dlg = ExportDialog(cnn_run)
    qtbot.addWidget(dlg)
    dlg.dest_edit.setText(str(tmp_path / "m.safetensors"))
    dlg.format_box.setCurrentIndex(dlg.format_box.findData("pt2"))
    assert dlg.dest_edit.text() == str(tmp_path / "m.pt2")
    assert "torch.export" in dlg.format_note.text()
    qtbot.waitUntil(lambda: "m.pt2" in dlg.files_label.text())
    dlg.dest_edit.setText(str(tmp_path / "missing" / "m.pt2"))
    qtbot.waitUntil(lambda: "no such folder" in dlg.files_label.text())
    assert not dlg.export_btn.isEnabled()
