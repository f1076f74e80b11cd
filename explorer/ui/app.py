"""Application entry point: ``run_app(path)`` shows the main window and runs the event loop.

SIGTERM (and Ctrl+C) quit cleanly: Python runs signal handlers only between bytecodes of the main
thread, which sits inside Qt's C++ event loop, so a heartbeat timer hands control to Python a few
times a second; the handler then calls ``app.quit()``, and ``aboutToQuit`` stops training, waits
for the worker thread and saves.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from .main_window import APP_TITLE, MainWindow
from .style import apply_style
from .threads import one_thread_for_the_gui

__all__ = ["run_app", "ensure_app"]

HEARTBEAT_MS = 200


def ensure_app() -> QApplication:
    """The QApplication (created once, styled). Without a display it uses the offscreen platform."""
    app = QApplication.instance()
    if app is None:
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        app = QApplication(sys.argv[:1])
        app.setApplicationName(APP_TITLE)
        app.setOrganizationName("ModelExplorer")
        apply_style(app)
    assert isinstance(app, QApplication)
    return app


def run_app(path: str | None = None, follow: str | None = None) -> int:
    """Opens the main window (with a project, data folder, manifest or ``sample:NAME``; following
    the run folder ``follow``) and runs until the window closes, File > Quit, or SIGTERM. Returns
    the exit code."""
    return _run(path, (lambda w: w.follow_run(follow)) if follow else None)


def _run(path: str | None = None, ready: Callable[[MainWindow], Any] | None = None) -> int:
    with one_thread_for_the_gui():  # training's OpenMP team keeps the cores to itself
        return _run_window(path, ready)


def _run_window(path: str | None, ready: Callable[[MainWindow], Any] | None) -> int:
    app = ensure_app()
    window = MainWindow()
    window.show()
    if path:
        QTimer.singleShot(0, window, lambda: window.open_path(path))
    if ready is not None:
        QTimer.singleShot(0, window, lambda: ready(window))

    heartbeat = QTimer()
    heartbeat.setInterval(HEARTBEAT_MS)
    heartbeat.timeout.connect(lambda: None)  # lets Python run pending signal handlers
    heartbeat.start()

    def quit_now(signum: int, _frame: object) -> None:
        app.quit()

    previous = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            previous[sig] = signal.signal(sig, quit_now)
        except ValueError:  # not the main thread: no handlers
            pass
    app.aboutToQuit.connect(window.shutdown)
    try:
        rc = app.exec()
    finally:
        heartbeat.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        app.aboutToQuit.disconnect(window.shutdown)
        window.shutdown()
        window.hide()
        window.deleteLater()
    return int(rc)
