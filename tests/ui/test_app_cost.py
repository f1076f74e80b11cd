"""The app / CLI throughput ratio measured inside one run (``explorer/ui/app_cost.py``): the run
alternates blocks trained with the window live and probes on, and blocks trained with the window
standing still and probes held back, all on the worker's thread."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QEventLoop, QObject, Qt, QTimer, Slot

from explorer.engine import EpochReport, Finished, RunConfig, StepReport
from explorer.ui.app_cost import AppCliController, app_cli_ratio, throughput_figures
from explorer.ui.threads import running_threads
from tests.datasets import write_two_class_folder

pytestmark = pytest.mark.gui

BLOCK = 3


class _Seen(QObject):
    """The GUI thread's view of the run: every event and every tick of a 5 ms timer."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[object] = []
        self.ticks: list[float] = []
        self.gui = threading.get_ident()
        self.threads: set[int] = set()

    @Slot(object)
    def on_event(self, ev: object) -> None:
        self.events.append(ev)
        self.threads.add(threading.get_ident())

    @Slot()
    def tick(self) -> None:
        self.ticks.append(time.perf_counter())


def _run(tmp_path: Path, qapp) -> tuple[AppCliController, _Seen]:  # noqa: ANN001
    data = write_two_class_folder(tmp_path / "data", n=40, size=16)
    cfg = RunConfig(arch="cnn", params={"channels": [4], "hidden": 8})
    cfg.data.source = str(data)
    cfg.train.epochs = 2
    cfg.train.batch_size = 4
    cfg.train.probe_interval = 0.05
    cfg.validate()
    controller, seen = AppCliController(block=BLOCK), _Seen()
    controller.event.connect(seen.on_event)
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(5)
    timer.timeout.connect(seen.tick)
    loop = QEventLoop()
    controller.idle.connect(loop.quit)
    QTimer.singleShot(120_000, loop.quit)
    timer.start()
    controller.start(cfg, tmp_path / "run", report_interval=0.0)
    loop.exec()
    timer.stop()
    assert not controller.is_running() and running_threads() == []
    return controller, seen


def test_the_run_alternates_app_and_cli_blocks_and_the_window_stands_still_in_the_cli_ones(qapp, tmp_path) -> None:
    controller, seen = _run(tmp_path, qapp)
    fin = controller.last_finished
    assert fin is not None and fin.status == "completed", fin
    rows = controller.trainer.clock.rows
    assert len(rows) >= 6 * BLOCK
    assert [r.held for r in rows[: 4 * BLOCK]] == [False] * BLOCK + [True] * BLOCK + [False] * BLOCK + [True] * BLOCK
    assert controller.turns == sum(1 for a, b in zip(rows, rows[1:]) if b.held and not a.held)  # one per CLI block

    # The CLI blocks make no timed probe; their epoch ends are probed as the app's are.
    assert any(r.probed for r in rows if not r.held)
    assert all(r.step == r.steps for r in rows if r.held and r.probed)

    # The window stood still through every CLI block: no tick of its timer between the block's
    # first and last step (the steps are a few ms apart, the timer's period 5 ms).
    blocks, current = [], []
    for r in rows:
        if r.held:
            current.append(r.end)
        elif current:
            blocks.append(current)
            current = []
    blocks = [b for b in blocks if len(b) == BLOCK]
    assert blocks
    for b in blocks:
        assert not [t for t in seen.ticks if b[0] < t < b[-1]]
    assert len(seen.ticks) > 10  # while it ran in the app blocks

    # The window saw the step reports of the app blocks only, and every epoch report and the end,
    # all in the GUI thread, the reports of the CLI blocks after them.
    held = {(r.epoch, r.step): r.held for r in rows}
    steps = [e for e in seen.events if isinstance(e, StepReport)]
    assert steps and not [e for e in steps if held[(e.epoch, e.step)]]
    assert [e.epoch for e in seen.events if isinstance(e, EpochReport)] == [1, 2]
    assert isinstance(seen.events[-1], Finished)
    assert seen.threads == {seen.gui}


def test_the_ratio_comes_from_the_blocks_of_the_run(qapp, tmp_path) -> None:
    controller, _ = _run(tmp_path, qapp)
    fin = controller.last_finished
    r = app_cli_ratio(controller.trainer, float(fin.metrics["train_seconds"]))
    assert r["steps"]["app"] > 0 and r["steps"]["cli"] > 0
    assert r["cli_step_ms"] > 0 and math.isfinite(r["app_step_ms"])
    assert r["throughput_ratio"] == pytest.approx(r["cli_seconds"] / r["app_seconds"])
    assert r["probes"] > 0
    figures = throughput_figures([r, r], batch_size=4)
    assert figures["throughput_ratio"] == pytest.approx(r["throughput_ratio"], abs=1e-3)
    assert figures["cli_samples_per_second"] == pytest.approx(4e3 / r["cli_step_ms"], abs=0.1)


def test_runs_too_short_for_blocks_have_no_ratio_and_say_why() -> None:
    figures = throughput_figures(["too few steps to compare blocks (3 steps): train for more epochs"], batch_size=4)
    assert figures["throughput_ratio"] is None and figures["throughput_ratios"] == []
    assert "too few steps" in figures["throughput_error"]
