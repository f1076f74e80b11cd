"""The application entry points: quitting on SIGTERM and from File > Quit, and ``bench ui``."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer

from explorer.ui import app as app_module
from explorer.ui.main_window import APP_TITLE, MainWindow
from explorer.ui.threads import running_threads

pytestmark = pytest.mark.gui


def test_run_app_quits_cleanly_on_sigterm(qapp) -> None:
    seen: dict[str, object] = {}

    def ready(w: MainWindow) -> None:
        seen["title"] = w.windowTitle()
        seen["visible"] = w.isVisible()
        QTimer.singleShot(200, lambda: os.kill(os.getpid(), signal.SIGTERM))

    before = signal.getsignal(signal.SIGTERM)
    t0 = time.perf_counter()
    rc = app_module._run(None, ready=ready)
    assert rc == 0
    assert seen == {"title": APP_TITLE, "visible": True}
    assert time.perf_counter() - t0 < 10
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is put back
    assert running_threads() == []


def test_file_quit_closes_the_window_and_quits(qapp, two_class: Path) -> None:
    seen: dict[str, object] = {}

    def ready(w: MainWindow) -> None:
        seen["window"] = w
        QTimer.singleShot(100, w.act_quit.trigger)

    rc = app_module._run(str(two_class), ready=ready)
    assert rc == 0
    w = seen["window"]
    assert isinstance(w, MainWindow) and w.session.project.counts() == {"bottom": 12, "top": 12}  # gui PATH opened it


def test_sigterm_while_training_stops_the_worker_first(qapp, two_class: Path) -> None:
    from tests.ui.helpers import configure_tiny

    def ready(w: MainWindow) -> None:
        configure_tiny(w, epochs=500, batch_size=2)
        assert w.start_training()
        QTimer.singleShot(1500, lambda: os.kill(os.getpid(), signal.SIGTERM))

    rc = app_module._run(str(two_class), ready=ready)
    assert rc == 0
    assert running_threads() == []


def test_bench_ui_measures_stalls_while_the_worker_trains(qapp, two_class: Path) -> None:
    from explorer.ui.bench import bench_ui

    result = bench_ui(epochs=1, data=str(two_class), repeats=2)
    assert set(result) == {
        "repeats",
        "stall_p50_ms",
        "stall_p99_ms",
        "stall_max_ms",
        "samples_per_second",
        "cli_samples_per_second",
        "cli_run_samples_per_second",
        "throughput_ratio",
        "throughput_ratios",
        "throughput_error",
        "arch",
        "data",
        "epochs",
        "views",
        "kinds_declared",
        "missing",
        "probe_overhead",
        "probe_overheads",
        "probe_share",
        "probe_overhead_error",
    }
    assert 0 <= result["stall_p50_ms"] <= result["stall_p99_ms"] <= result["stall_max_ms"]
    assert result["cli_run_samples_per_second"] > 0  # the CLI itself, in its own process
    assert result["repeats"] == 2
    # 24 images make one step an epoch: too few for blocks of steps, app against CLI (the ratio of
    # a longer run: tests/ui/test_app_cost.py) or with and without probes
    assert result["throughput_ratio"] is None and "too few steps" in result["throughput_error"]
    assert result["probe_overhead"] is None and "too few steps" in result["probe_overhead_error"]
    assert running_threads() == []
