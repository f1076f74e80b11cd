"""Hostile and damaged project files: a message naming the file (and the field), never a
traceback or a hang.

The file-level checks are Qt-free (:func:`explorer.ui.project.read_project_file`,
:meth:`Project.from_dict`); the window tests check that File > Open and ``gui PROJECT`` turn
them into a dialog, and that every field of a valid ``.mexp``, mutated, either opens in the
window with no exception escaping a view or is refused with a message naming file and field.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QMessageBox

from explorer.engine import RunConfig
from explorer.ui.dataset_model import FETCH_ROWS
from explorer.ui.project import MAX_PROJECT_BYTES, Project, ProjectError, RunRecord, read_project_file
from explorer.ui.project_flows import load_any
from explorer.ui.session import ProjectSession
from tests.fuzz import DELETE, key_paths, mutated
from tests.ui.helpers import make_window

#: deleted, wrong types, out of range, NaN, huge (as tests/engine/test_fuzz_run.py)
MUTATIONS: list[Any] = [DELETE, "x", [], {}, None, -1, math.nan, 10**30, True, ["x", 1]]


def _field_names(path: tuple) -> tuple[str, ...]:
    """How a message may name the field at ``path``: ``samples[0]``, ``config.train.lr``,
    ``runs[0].metrics`` or an enclosing field (a bad sample is named as ``samples[0]``)."""
    names, text = [], ""
    for key in path:
        text = f"{text}[{key}]" if isinstance(key, int) else (f"{text}.{key}" if text else str(key))
        names.append(text)
    return tuple(names)


def _valid_project(root: Path) -> dict[str, Any]:
    p = Project(name="demo", classes=["cat", "dog"])
    p.add_samples([(str(root / "images" / "a.png"), "cat"), (str(root / "images" / "b.png"), "dog")])
    p.sources = [str(root / "images")]
    p.add_problems([(str(root / "images" / "c.png"), "cannot be decoded")])
    p.config = RunConfig(arch="cnn")
    p.config.train.epochs = 3
    p.params_by_arch["cnn"] = {"channels": [8, 16], "dropout": 0.1}
    metrics = {
        "val_accuracy": 0.5,
        "epochs": 3,
        "best_epoch": 2,
        "train_seconds": 1.5,
        "samples_per_second": 20.0,
        "num_parameters": 1234,
        "device": "cpu",
        "val_samples": 2,
        "val_per_class": {"cat": {"recall": 0.5}},
    }
    p.runs.append(RunRecord(dir=str(root / "runs" / "r1"), name="r1", arch="cnn", status="completed", metrics=metrics))
    path = root / "demo.mexp"
    p.save(path)
    return json.loads(path.read_text())


def _cases(doc: dict[str, Any]) -> Iterator[tuple[str, tuple, Any]]:
    for path in key_paths(doc, 3):
        for value in MUTATIONS:
            if path == ("format",) and value is not DELETE:
                continue  # any other format is "not a project": covered once below
            shown = "<deleted>" if value is DELETE else repr(value)[:20]
            yield f"{'.'.join(map(str, path))} = {shown}", path, mutated(doc, path, value)


# -- the file itself: Qt-free ---------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_fifo_named_like_a_project_is_refused_unopened(tmp_path: Path) -> None:
    fifo = tmp_path / "p.mexp"
    os.mkfifo(fifo)
    result: list[BaseException | None] = []

    def load() -> None:
        try:
            Project.load(fifo)
            result.append(None)
        except BaseException as e:  # noqa: BLE001 - handed to the test thread
            result.append(e)

    t = threading.Thread(target=load, daemon=True)
    t.start()
    t.join(5.0)
    if t.is_alive():  # unblock the reader so the test process can end, then fail
        with open(fifo, "w") as w:
            w.write("{}")
        pytest.fail("opening a FIFO named p.mexp hung")
    assert isinstance(result[0], ProjectError)
    assert str(fifo) in str(result[0]) and "not a regular file" in str(result[0])
    with pytest.raises(ProjectError, match="a folder"):
        Project.load(tmp_path)
    with pytest.raises(ProjectError, match="cannot read"):
        Project.load(tmp_path / "missing.mexp")


def test_bytes_that_are_not_a_project_are_messages(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mexp"
    cases = {
        b"\xff\xfe\x00garbage": "not UTF-8",
        b"{not json": "invalid JSON at line 1",
        b"[" * 100_000: "nested too deeply",
        b'{"format": "model-explorer-project", "version": ' + b"9" * 10_000 + b"}": "cannot read",
        b"[]": "not a Model Explorer project",
        b"": "invalid JSON",
    }
    for data, expected in cases.items():
        bad.write_bytes(data)
        with pytest.raises(ProjectError, match=expected) as e:
            Project.load(bad)
        assert str(bad) in str(e.value)
    # a huge file is refused by its size, unread (sparse: costs no disk)
    with open(bad, "wb") as f:
        f.truncate(MAX_PROJECT_BYTES + 1)
    with pytest.raises(ProjectError, match="too large"):
        Project.load(bad)
    bad.write_text('{"format": "model-explorer-project", "name": "' + "x" * 2000 + '"}')
    with pytest.raises(ProjectError, match="too large"):
        read_project_file(bad, max_bytes=1000)


def test_every_field_mutated_loads_or_names_the_file_and_field(tmp_path: Path) -> None:
    doc = _valid_project(tmp_path)
    path = tmp_path / "fuzz.mexp"
    loaded = refused = 0
    for case, field, changed in _cases(doc):
        path.write_text(json.dumps(changed))
        try:
            Project.load(path)
            loaded += 1
        except ProjectError as e:
            msg = str(e)
            assert msg.startswith(f"{path}: "), (case, msg)
            if "not a Model Explorer project" not in msg and "newer Model Explorer" not in msg:
                assert any(
                    f"'{n}'" in msg or f"field '{n}." in msg or f"field '{n}[" in msg for n in _field_names(field)
                ), (case, msg)
            refused += 1
    assert loaded > 50 and refused > 100, (loaded, refused)


def test_damaged_values_are_refused_with_their_field(tmp_path: Path) -> None:
    doc = _valid_project(tmp_path)
    path = tmp_path / "d.mexp"
    cases = [
        (("config", "arch"), "no-such-family", "field 'config.arch'"),
        (("config", "train", "epochs"), 0, "field 'config.train.epochs'"),
        (("config", "train", "lr"), "fast", "field 'config.train.lr'"),
        (("samples", 0), ["a.png"], "field 'samples[0]'"),
        (("samples", 0), ["", "cat"], "field 'samples[0]': the path is empty"),
        (("runs", 0, "dir"), 7, "field 'runs[0].dir'"),
        (("params_by_arch", "cnn", "channels"), [8, 10**12], "field 'params_by_arch.cnn.channels'"),
        (("version",), 1.5, "field 'version'"),
    ]
    for field, value, expected in cases:
        path.write_text(json.dumps(mutated(doc, field, value)))
        with pytest.raises(ProjectError, match=expected.replace("[", r"\[").replace("]", r"\]")) as e:
            Project.load(path)
        assert str(path) in str(e.value)
    # tolerated: a class listed twice is one; a sample's unknown class is added; NaN figures become null
    ok = mutated(doc, ("classes",), ["cat", "cat"])
    ok["samples"].append(["images/z.png", "bird"])
    ok["runs"][0]["metrics"]["train_seconds"] = math.nan
    path.write_text(json.dumps(ok))
    p = Project.load(path)
    assert p.classes == ["cat", "dog", "bird"] and p.counts() == {"cat": 1, "dog": 1, "bird": 1}
    assert p.runs[0].metrics["train_seconds"] is None


# -- the window: a dialog, no exception from any view -----------------------------------------------


def _capture_warnings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    shown: list[str] = []

    def warning(_parent: object, _title: str, text: str, *_a: object, **_k: object) -> QMessageBox.StandardButton:
        shown.append(text)
        return QMessageBox.StandardButton.Ok

    monkeypatch.setattr(QMessageBox, "warning", staticmethod(warning))
    return shown


@pytest.mark.gui
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_file_open_and_gui_path_show_a_dialog_for_a_fifo(qtbot, tmp_path: Path, monkeypatch) -> None:
    shown = _capture_warnings(monkeypatch)
    fifo = tmp_path / "p.mexp"
    os.mkfifo(fifo)
    w = make_window(qtbot)
    assert not w.open_project(str(fifo))  # File > Open, Open Recent
    w.open_path(str(fifo))  # model-explorer gui p.mexp
    w.import_paths([str(fifo)])  # dropped on the window
    assert len(shown) == 3 and all(str(fifo) in s and "not a regular file" in s for s in shown), shown
    with pytest.raises(ProjectError, match="not a regular file"):
        load_any(ProjectSession(), str(fifo))


@pytest.mark.gui
@pytest.mark.slow  # ~35 s: about 800 cases, each opened in the window and shown on three screens
def test_every_field_mutated_opens_in_the_window_or_shows_a_dialog(qtbot, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # mutated relative paths (cache_dir "x", ...) stay in here
    shown = _capture_warnings(monkeypatch)
    doc = _valid_project(tmp_path)
    path = tmp_path / "fuzz.mexp"
    w = make_window(qtbot)
    opened, escaped = 0, []
    for case, field, changed in _cases(doc):
        path.write_text(json.dumps(changed))
        shown.clear()
        with qtbot.capture_exceptions() as errors:
            ok = w.open_project(str(path))
            w.tabs.setCurrentIndex(0)  # every screen shows the project once
            w.tabs.setCurrentIndex(1)
            w.tabs.setCurrentIndex(3)
            w.runs_panel.table.selectRow(0)
        if errors:
            escaped.append(f"{case}: {type(errors[0][1]).__name__}: {errors[0][1]}")
            continue
        if ok:
            opened += 1
            assert not shown, (case, shown)
        else:
            assert len(shown) == 1 and shown[0].startswith(f"{path}: "), (case, shown)
            assert "not a Model Explorer project" in shown[0] or any(n in shown[0] for n in _field_names(field))
    assert not escaped, "\n".join(escaped)
    assert opened > 50


# -- a large project opens without freezing the window ----------------------------------------------


class _StallProbe:
    """A 10 ms precise timer on the GUI thread (as explorer/ui/bench.py): how late each tick fires
    (wall clock) and how much CPU the GUI thread spent since the tick before. The CPU figure is the
    GUI thread's own work; lateness also counts a busy machine's scheduling."""

    def __init__(self) -> None:
        from PySide6.QtCore import QElapsedTimer, Qt, QTimer

        self.late_ms: list[float] = []
        self.cpu_ms: list[float] = []
        self._clock = QElapsedTimer()
        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(10)
        self._timer.timeout.connect(self._tick)
        self._last: tuple[int, float] | None = None

    def start(self) -> None:
        self._clock.start()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def _tick(self) -> None:
        now, cpu = self._clock.elapsed(), time.thread_time()
        if self._last is not None:
            self.late_ms.append(now - self._last[0] - 10)
            self.cpu_ms.append((cpu - self._last[1]) * 1000)
        self._last = (now, cpu)


@pytest.mark.gui
@pytest.mark.slow  # ~20-40 s: writes, reads and shows 300,000 samples
def test_a_project_of_300k_samples_opens_without_freezing_the_window(qtbot, tmp_path: Path) -> None:
    n = 300_000
    doc = Project(name="big", classes=[f"c{i}" for i in range(10)]).to_dict()
    doc["samples"] = [[f"images/c{i % 10}/{i:06d}.png", f"c{i % 10}"] for i in range(n)]  # files need not exist
    path = tmp_path / "big.mexp"
    path.write_text(json.dumps(doc, indent=2))
    w = make_window(qtbot)
    probe = _StallProbe()
    probe.start()
    t0 = time.perf_counter()
    assert w.open_project(str(path))
    assert w.opening_project  # read on a worker thread
    qtbot.waitUntil(lambda: not w.opening_project, timeout=300_000)
    opened = time.perf_counter() - t0
    qtbot.wait(300)
    panel = w.dataset_panel
    model = panel.sample_model
    assert model.total() == n and w.session.project.counts()["c3"] == n // 10
    assert model.rowCount() == FETCH_ROWS and panel.grid_title.text() == f"All images ({n:,})"
    panel.grid.scrollToBottom()  # the grid is usable: scrolled (it fetches more rows), filtered, back to all
    qtbot.waitUntil(lambda: model.rowCount() > FETCH_ROWS)
    panel.select_class("c3")
    qtbot.waitUntil(lambda: model.total() == n // 10)
    panel.select_class(None)
    qtbot.waitUntil(lambda: model.total() == n)
    qtbot.wait(300)
    probe.stop()
    worst_cpu, worst_late = max(probe.cpu_ms), max(probe.late_ms)
    print(f"opened in {opened:.1f} s; GUI thread: max {worst_cpu:.0f} ms CPU, max {worst_late:.0f} ms late")
    # before the fix the GUI thread worked 94 s in one go; now 130-240 ms at most (loaded 2-core machine,
    # filtering 300k rows included): a hitch a user barely notices, never a freeze
    assert worst_cpu < 400, f"the GUI thread worked {worst_cpu:.0f} ms without a break"
    # the timer was once 1.8-3.2 s late with little GUI CPU: the GUI thread's GIL hand-overs each waited a
    # 5 ms switch interval behind the reader / dry-run threads; bulk_objects lowers it (330-370 ms now)
    assert worst_late < 1000, f"the window froze for {worst_late:.0f} ms"


def test_bulk_objects_lowers_the_switch_interval_while_any_bulk_runs_and_restores_it() -> None:
    import sys

    from explorer.ui.project import BULK_OBJECTS, BULK_SWITCH_INTERVAL, bulk_objects

    before = sys.getswitchinterval()
    outer = bulk_objects(BULK_OBJECTS)
    outer.__enter__()
    assert sys.getswitchinterval() == pytest.approx(BULK_SWITCH_INTERVAL)
    with bulk_objects(BULK_OBJECTS):  # a second bulk (another thread) overlapping the first
        pass
    assert sys.getswitchinterval() == pytest.approx(BULK_SWITCH_INTERVAL)  # still one running
    outer.__exit__(None, None, None)
    assert sys.getswitchinterval() == pytest.approx(before)
    with bulk_objects(10):  # small: nothing changes
        assert sys.getswitchinterval() == pytest.approx(before)
