"""Replacing the open project: asked first when runs would be lost; every screen follows."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

from explorer.ui.main_window import MainWindow
from explorer.ui.project import RunRecord
from explorer.ui.session import AUTOSAVE_NAME
from explorer.ui.settings import app_home
from tests.ui.helpers import make_window, wait_idle

Button = QMessageBox.StandardButton


def _with_unsaved_run(qtbot, two_class: Path) -> MainWindow:  # noqa: ANN001
    w = make_window(qtbot, two_class)
    w.session.add_run(RunRecord(dir=str(two_class.parent / "run-1"), name="run-1", arch="cnn", status="completed"))
    return w


def _answer(monkeypatch: pytest.MonkeyPatch, w: MainWindow, button: QMessageBox.StandardButton) -> list[str]:
    asked: list[str] = []

    def ask() -> QMessageBox.StandardButton:
        asked.append(w.session.project.name)
        return button

    monkeypatch.setattr(w, "ask_unsaved_runs", ask, raising=False)  # raising: the old code had no question
    return asked


@pytest.mark.parametrize("open_other", ["sample", "project", "new"])
def test_cancel_keeps_the_project_with_its_unsaved_runs(
    qtbot, two_class: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, open_other: str
) -> None:  # noqa: ANN001
    other = tmp_path / "other.mexp"
    helper = make_window(qtbot)
    helper.session.load_sample("shapes")
    helper.session.save(other)
    w = _with_unsaved_run(qtbot, two_class)
    asked = _answer(monkeypatch, w, Button.Cancel)
    project, n_samples = w.session.project, len(w.session.project.samples)
    if open_other == "sample":
        assert not w.load_sample("digit-strings")
    elif open_other == "project":
        assert not w.open_project(str(other))
    else:
        w.new_project()
    assert asked == [project.name]
    assert w.session.project is project and len(project.samples) == n_samples
    assert [r.name for r in w.session.project.runs] == ["run-1"]
    assert w.runs_panel.table.rowCount() == 1


def test_discard_opens_the_sample_and_no_run_of_the_old_project_shows(
    qtbot, two_class: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # noqa: ANN001
    w = _with_unsaved_run(qtbot, two_class)
    asked = _answer(monkeypatch, w, Button.Discard)
    assert w.load_sample("digit-strings")
    assert asked and w.session.project.task == "sequence" and w.session.project.runs == []
    assert w.runs_panel.table.rowCount() == 0 and w.runs_panel.selected_run() is None


def test_save_keeps_the_runs_in_a_project_file_before_the_sample_opens(
    qtbot, two_class: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # noqa: ANN001
    w = _with_unsaved_run(qtbot, two_class)
    _answer(monkeypatch, w, Button.Save)
    target = tmp_path / "kept.mexp"
    monkeypatch.setattr(w, "save_project_as", lambda: w._save(target))
    assert w.load_sample("shapes")
    assert w.session.project.name == "shapes sample"
    reopened = make_window(qtbot)
    assert reopened.open_project(str(target))
    assert [r.name for r in reopened.session.project.runs] == ["run-1"]


def test_save_cancelled_in_the_file_dialog_keeps_everything(
    qtbot, two_class: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # noqa: ANN001
    w = _with_unsaved_run(qtbot, two_class)
    _answer(monkeypatch, w, Button.Save)
    monkeypatch.setattr(w, "save_project_as", lambda: False)
    project = w.session.project
    assert not w.load_sample("shapes")
    assert w.session.project is project and len(project.runs) == 1


def test_no_question_without_unsaved_runs(qtbot, two_class: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    w = make_window(qtbot, two_class)
    asked = _answer(monkeypatch, w, Button.Cancel)
    assert w.load_sample("shapes")
    assert asked == []


def test_every_screen_resets_to_the_opened_sample(qtbot, two_class: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    w = make_window(qtbot, two_class, epochs=2, probe=0.05)
    with qtbot.waitSignal(w.controller.finished, timeout=60000):
        assert w.start_training()
    wait_idle(qtbot, w)
    run = w.session.project.runs[-1]
    w.tabs.setCurrentWidget(w.runs_panel)
    images = sorted(str(p) for p in (two_class / "top").iterdir())[:2]
    w.runs_panel.predict(run, images)
    qtbot.waitUntil(lambda: w.runs_panel.predictions.rowCount() == 2, timeout=20000)
    tp = w.train_panel
    tp.curves.flush()
    assert tp.curves.series["val_acc"].x and tp.state_label.text().startswith("Finished")
    assert w.runs_panel.details.text()

    _answer(monkeypatch, w, Button.Discard)
    w.load_sample("digit-strings")
    assert w.session.project.name == "digit-strings sample"
    # training screen: no curve, probe, progress, state or message of the previous run
    tp.curves.flush()
    assert all(not s.x for s in tp.curves.series.values())
    assert tp.state_label.text() == "Ready." and tp.detail_label.text() == ""
    assert tp.progress.value() <= 0 and tp.progress.format() == ""
    assert tp.probe.image_item.image is None and tp.probe._pending is None
    assert tp.error_banner.isHidden() and tp.info_banner.isHidden()
    # runs screen: nothing of the previous project's run, its predictions or curves
    rp = w.runs_panel
    assert rp.table.rowCount() == 0 and rp.details.text() == ""
    assert rp.predictions.isHidden() and rp.predictions.rowCount() == 0
    assert all(not s.x for s in rp.curves.series.values())
    # data and architecture screens show the sample
    assert w.dataset_panel.task_combo.currentData() == "sequence"
    assert w.arch_panel.arch == w.session.project.config.arch == "crnn"
    # the autosave holds the sample now, the discarded project's file is gone from it
    w.session.mark_dirty()
    w.session.autosave_now()
    assert "digit-strings" in (app_home() / AUTOSAVE_NAME).read_text()
