"""Fixtures for the app's tests (offscreen Qt, tiny data, isolated settings)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QWidget

import explorer.ui  # noqa: F401  (first: applies the Qt-binding work-around before any Qt call)
from explorer.ui.threads import busy_pools, running_threads, stop_all
from tests.datasets import write_two_class_folder


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings, recent projects, autosaves and unsaved runs go to a per-test folder."""
    monkeypatch.setenv("MODEL_EXPLORER_HOME", str(tmp_path_factory.mktemp("home")))


@pytest.fixture(autouse=True)
def _no_thread_left(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fails a test that leaves a QThread (or a busy thread pool) of the app running."""
    yield
    app = QApplication.instance()
    deadline = time.monotonic() + 3.0
    while (running_threads() or busy_pools()) and time.monotonic() < deadline:
        if app is not None:
            app.processEvents()
        time.sleep(0.01)
    left = running_threads() + busy_pools()
    if left:
        stop_all()  # keep the rest of the session alive, then fail this test
    assert not left, f"{request.node.name} left threads running: {left}"


@pytest.fixture
def two_class(tmp_path: Path) -> Path:
    """Classes ``top`` and ``bottom``, 12 gray 16x16 PNGs each."""
    return write_two_class_folder(tmp_path / "data", n=12, size=16)


def drop_paths(widget: QWidget, paths: list, pos: QPoint | None = None) -> bool:
    """Simulates dragging local files onto ``widget`` and dropping them at ``pos``. Returns acceptance."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = pos if pos is not None else widget.rect().center()
    action = Qt.DropAction.CopyAction
    buttons, mods = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    at = QPointF(pos)
    enter = QDragEnterEvent(pos, action, mime, buttons, mods)  # enter/move take a QPoint, drop a QPointF
    QApplication.sendEvent(widget, enter)
    if not enter.isAccepted():
        return False
    QApplication.sendEvent(widget, QDragMoveEvent(pos, action, mime, buttons, mods))
    drop = QDropEvent(at, action, mime, buttons, mods)
    QApplication.sendEvent(widget, drop)
    return drop.isAccepted()
