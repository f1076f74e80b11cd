"""The app trains with the CLI's CPU threads and a short GIL switch interval, both only while
it trains (docs/inspector_bench.md, "Throughput")."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import explorer.ui.worker as worker_module
from explorer.engine import EpochReport, Event, RunConfig, StepReport, Trainer
from explorer.ui.threads import running_threads
from explorer.ui.worker import TRAINING_SWITCH_INTERVAL, TrainingController, gui_friendly_threads
from tests.datasets import write_two_class_folder

pytestmark = pytest.mark.gui


class _Recording(Trainer):
    """Records, in the training thread, the switch interval and CPU threads at every event."""

    seen: list[tuple[float, int]] = []

    def run(self) -> Iterator[Event]:
        for ev in super().run():
            if isinstance(ev, StepReport | EpochReport):
                _Recording.seen.append((sys.getswitchinterval(), torch.get_num_threads()))
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
    with qtbot.waitSignal(controller.idle, timeout=60000):
        controller.start(cfg, tmp_path / "run", cpu_threads=gui_friendly_threads(), report_interval=0.0)
    assert controller.last_finished is not None and controller.last_finished.status == "completed"
    assert _Recording.seen and set(_Recording.seen) == {(TRAINING_SWITCH_INTERVAL, threads)}
    assert sys.getswitchinterval() == interval and torch.get_num_threads() == threads
    assert running_threads() == []
