"""Projects: the JSON round trip, save and reopen with runs, autosave, layout persistence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from explorer.engine import RunConfig
from explorer.ui.main_window import MainWindow
from explorer.ui.project import PROJECT_FORMAT, Project, ProjectError, RunRecord
from explorer.ui.session import ProjectSession
from explorer.ui.settings import app_settings
from tests.ui.helpers import make_window, wait_idle


def test_project_round_trip_keeps_everything(tmp_path: Path) -> None:
    data = tmp_path / "proj" / "images"
    data.mkdir(parents=True)
    inside = data / "a.png"
    outside = tmp_path / "elsewhere" / "b.png"
    p = Project(name="demo", classes=["cat", "dog", "empty"])
    p.add_samples([(str(inside), "cat"), (str(outside), "dog")])
    p.add_problems([(str(outside), "broken")])
    p.config = RunConfig(arch="cnn")
    p.config.train.epochs = 7
    p.config.data.augment.hflip = True
    p.params_by_arch["cnn"] = {"channels": [8, 16]}
    p.runs.append(
        RunRecord(
            dir=str(tmp_path / "proj" / "runs" / "r1"),
            name="r1",
            arch="cnn",
            status="completed",
            metrics={"val_accuracy": 0.9},
        )
    )
    path = tmp_path / "proj" / "demo.mexp"
    p.save(path)
    d = json.loads(path.read_text())
    assert d["format"] == PROJECT_FORMAT
    assert ["images/a.png", "cat"] in d["samples"]  # inside the project folder: relative
    assert [str(outside), "dog"] in d["samples"]
    assert d["runs"][0]["dir"] == "runs/r1"
    q = Project.load(path)
    assert q.samples == p.samples and q.classes == p.classes and q.problems == p.problems
    assert q.config.to_dict() == p.config.to_dict() and q.params_by_arch == p.params_by_arch
    assert q.runs[0].dir == str(tmp_path / "proj" / "runs" / "r1") and q.runs[0].metrics == {"val_accuracy": 0.9}
    assert q.run_config().params == {"channels": [8, 16]}


def test_an_image_is_in_one_class_and_bad_files_are_refused(tmp_path: Path) -> None:
    p = Project()
    p.add_samples([("x.png", "a"), ("x.png", "b")])
    assert p.samples == [("x.png", "b")] and p.classes == ["a", "b"]
    with pytest.raises(ValueError):
        p.rename_class("a", "b")
    bad = tmp_path / "bad.mexp"
    bad.write_text('{"format": "something-else"}')
    with pytest.raises(ProjectError, match="not a Model Explorer project"):
        Project.load(bad)
    bad.write_text("{not json")
    with pytest.raises(ProjectError, match="cannot read"):
        Project.load(bad)


@pytest.mark.gui
def test_save_and_reopen_a_project_shows_its_trained_runs(qtbot, two_class: Path, tmp_path: Path) -> None:
    w = make_window(qtbot, two_class, epochs=1)
    with qtbot.waitSignal(w.controller.finished, timeout=60000):
        assert w.start_training()
    wait_idle(qtbot, w)
    unsaved_run = Path(w.session.project.runs[0].dir)
    path = tmp_path / "work" / "demo.mexp"
    assert w._save(path)
    run_dir = Path(w.session.project.runs[0].dir)
    assert run_dir.parent == path.parent / "runs" and run_dir.is_dir()  # the run moved beside the project
    assert not unsaved_run.exists()
    assert w.windowTitle().startswith("Model Explorer — demo")
    w.close()

    w2 = MainWindow()
    qtbot.addWidget(w2)
    w2.show()
    assert w2.open_project(str(path))
    p = w2.session.project
    assert p.counts() == {"bottom": 12, "top": 12}
    assert p.params_by_arch["cnn"]["channels"] == [8]
    assert w2.arch_panel.form.values()["channels"] == [8]
    assert w2.train_panel.settings.epochs.value() == 1
    assert w2.tabs.currentWidget() is w2.runs_panel
    table = w2.runs_panel.table
    assert table.rowCount() == 1
    assert table.item(0, 2).text() == "completed", p.runs[0].message
    assert table.item(0, 4).text().endswith("%")
    assert len(w2.runs_panel.curves.series["val_loss"].x) == 1  # its history is drawn
    assert w2.runs_panel.export_btn.isEnabled()


@pytest.mark.gui
def test_changes_are_autosaved(qtbot, two_class: Path, tmp_path: Path) -> None:
    s = ProjectSession()
    s.import_paths([str(two_class)])
    path = tmp_path / "auto.mexp"
    s.save(path)
    s.add_class("new one")
    assert s.dirty
    qtbot.waitUntil(lambda: not s.dirty, timeout=5000)
    assert "new one" in Project.load(path).classes


@pytest.mark.gui
def test_panel_layout_persists(qtbot) -> None:
    w = make_window(qtbot)
    w.tabs.setCurrentWidget(w.train_panel)
    qtbot.wait(10)
    w.train_panel.splitter.setSizes([400, 500])
    saved = w.train_panel.splitter.sizes()[0]
    w.problems_dock.hide()
    w.close()
    assert not app_settings().value("window/geometry").isEmpty()  # (offscreen screens clamp the size itself)
    w2 = make_window(qtbot)
    assert not w2.problems_dock.isVisible()
    w2.tabs.setCurrentWidget(w2.train_panel)
    qtbot.wait(10)
    assert abs(w2.train_panel.splitter.sizes()[0] - saved) <= 2
