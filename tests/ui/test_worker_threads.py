"""The app trains with the CLI's CPU threads, a short GIL switch interval (both only while it
trains) and training threads nicer than the window's (docs/inspector_bench.md, "Throughput")."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import explorer.ui.worker as worker_module
from explorer.engine import EpochReport, Event, RunConfig, StepReport, Trainer
from explorer.ui.threads import running_threads
from explorer.ui.worker import TRAINING_NICE, TRAINING_SWITCH_INTERVAL, TrainingController, gui_friendly_threads
from tests.datasets import write_two_class_folder

pytestmark = pytest.mark.gui


def nice_of(tid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, tid)


def _nice_or_none(tid: int) -> int | None:
    try:
        return nice_of(tid)
    except OSError:  # ended meanwhile
        return None


class _Recording(Trainer):
    """Records, in the training thread, the switch interval, CPU threads and this thread's nice
    value at every event, and how many other threads are as nice (its OpenMP pool)."""

    seen: list[tuple[float, int, int]] = []
    nicer_threads = 0

    def run(self) -> Iterator[Event]:
        for ev in super().run():
            if isinstance(ev, StepReport | EpochReport):
                me = threading.get_native_id()
                _Recording.seen.append((sys.getswitchinterval(), torch.get_num_threads(), nice_of(me)))
                others = {int(t) for t in os.listdir("/proc/self/task")} - {me}
                _Recording.nicer_threads = sum(_nice_or_none(t) == nice_of(me) for t in others)
            yield ev


def test_the_app_trains_with_the_cli_threads_and_restores_the_process_settings(
    qtbot, tmp_path: Path, monkeypatch
) -> None:  # noqa: ANN001
    data = write_two_class_folder(tmp_path / "data", n=12, size=16)
    cfg = RunConfig(arch="cnn", params={"channels": [8]})
    cfg.data.source = str(data)
    cfg.train.epochs = 2
    cfg.train.batch_size = 4
    cfg.train.device = "cpu"
    threads, interval = torch.get_num_threads(), sys.getswitchinterval()
    assert gui_friendly_threads() == threads  # PyTorch's default, as `model-explorer train` uses
    assert TRAINING_SWITCH_INTERVAL < interval

    monkeypatch.setattr(worker_module, "Trainer", _Recording)
    _Recording.seen = []
    controller = TrainingController()
    gui_nice = nice_of(threading.get_native_id())
    with qtbot.waitSignal(controller.idle, timeout=60000):
        controller.start(cfg, tmp_path / "run", cpu_threads=gui_friendly_threads(), report_interval=0.0)
    assert controller.last_finished is not None and controller.last_finished.status == "completed"
    nicer = min(19, gui_nice + TRAINING_NICE) if sys.platform.startswith("linux") else gui_nice
    assert _Recording.seen and set(_Recording.seen) == {(TRAINING_SWITCH_INTERVAL, threads, nicer)}
    assert nice_of(threading.get_native_id()) == gui_nice  # the window's thread keeps its own
    if nicer != gui_nice:
        assert _Recording.nicer_threads >= threads - 1  # PyTorch's OpenMP threads, made by the training thread
    assert sys.getswitchinterval() == interval and torch.get_num_threads() == threads
    assert running_threads() == []
