"""``bench ui``: how smooth the app stays while the real worker trains.

The real main window trains a small CNN through the real :class:`~explorer.ui.worker.TrainingController`
(curves and the live probe view updating) while a 10 ms precise QTimer on the GUI thread records
how late each tick fires. Lateness beyond the 10 ms period is an event-loop stall: the time a
user's click or a repaint would have waited.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from PySide6.QtCore import QEventLoop, Qt, QTimer

__all__ = ["bench_ui"]

TICK_MS = 10


@contextlib.contextmanager
def _private_home(path: str) -> Iterator[None]:
    old = os.environ.get("MODEL_EXPLORER_HOME")
    os.environ["MODEL_EXPLORER_HOME"] = path
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MODEL_EXPLORER_HOME", None)
        else:
            os.environ["MODEL_EXPLORER_HOME"] = old


def _settle(ms: int) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def bench_ui(epochs: int = 2, data: str = "sample:shapes", *, timeout_s: float = 600.0) -> dict[str, Any]:
    """Trains a small model in the real worker and measures GUI event-loop stalls.

    Returns:
        ``stall_p50_ms``, ``stall_p99_ms``, ``stall_max_ms`` (lateness of the 10 ms timer ticks
        while training) and ``samples_per_second`` (the run's own figure).

    Raises:
        RuntimeError: the run did not complete (its message says why).
    """
    from .app import ensure_app
    from .main_window import MainWindow

    with tempfile.TemporaryDirectory(prefix="me-bench-ui-") as home, _private_home(home):
        app = ensure_app()
        window = MainWindow()
        window.resize(1280, 820)
        window.show()
        try:
            window.open_path(data)
            s = window.session
            cfg = s.project.config
            cfg.arch = "cnn"
            s.set_params("cnn", {"channels": [16, 32]})
            cfg.train.epochs = epochs
            cfg.train.batch_size = 32
            cfg.train.probe_interval = 0.25  # several live-probe paints even in a short run
            window.arch_panel.load_from_session()
            window.train_panel.settings.load_from_session()
            window.tabs.setCurrentWidget(window.train_panel)
            _settle(300)
            window.arch_panel.runner.wait()
            _settle(100)

            late: list[float] = []
            last = time.perf_counter()

            def tick() -> None:
                nonlocal last
                now = time.perf_counter()
                late.append(max(0.0, (now - last) * 1000.0 - TICK_MS))
                last = now

            timer = QTimer()
            timer.setTimerType(Qt.TimerType.PreciseTimer)
            timer.setInterval(TICK_MS)
            timer.timeout.connect(tick)
            loop = QEventLoop()
            window.controller.idle.connect(loop.quit)
            guard = QTimer()
            guard.setSingleShot(True)
            guard.timeout.connect(loop.quit)
            guard.start(int(timeout_s * 1000))
            timer.start()
            last = time.perf_counter()
            if not window.start_training():
                raise RuntimeError(window.train_panel.error_banner.text.text() or "training did not start")
            loop.exec()
            timer.stop()
            guard.stop()
            fin = window.controller.last_finished
            if window.controller.is_running():
                window.controller.shutdown()
                raise RuntimeError(f"training did not finish within {timeout_s:.0f} s")
            if fin is None or fin.status not in ("completed", "early_stopped"):
                raise RuntimeError(f"training {fin.status if fin else 'ended'}: {fin.message if fin else ''}")
            a = np.asarray(late[1:] or [0.0])
            return {
                "stall_p50_ms": round(float(np.percentile(a, 50)), 2),
                "stall_p99_ms": round(float(np.percentile(a, 99)), 2),
                "stall_max_ms": round(float(a.max()), 2),
                "samples_per_second": round(float(fin.metrics.get("samples_per_second", 0.0)), 1),
            }
        finally:
            window.close()
            window.shutdown()
            window.deleteLater()
            app.processEvents()
