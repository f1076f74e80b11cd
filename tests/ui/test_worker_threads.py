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


_GUI_THREAD_CHECK = """
import json, os, threading, torch
from explorer.ui.threads import one_torch_thread
from explorer.ui.worker import one_thread_for_the_gui

def threads():
    return len(os.listdir("/proc/self/task"))

def conv():
    torch.nn.functional.conv2d(torch.randn(8, 3, 64, 64), torch.randn(16, 3, 3, 3))

torch.set_num_threads(2)  # a team of two, whatever the machine's cores
out = {}
with one_thread_for_the_gui():
    before = threads()
    conv()
    out["gui"] = [torch.get_num_threads(), threads() - before]
    seen = []
    t = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    t.start()
    t.join()
    out["new_thread"] = seen[0]

def pool_job():  # a dry run's: one thread, then its forward pass
    one_torch_thread()
    before = threads()
    conv()
    out["pool"] = [torch.get_num_threads(), threads() - before]

t = threading.Thread(target=pool_job)
t.start()
t.join()
out["after"] = torch.get_num_threads()
print(json.dumps(out))
"""

_BARE_CHECK = """
import os, torch
torch.set_num_threads(2)
before = len(os.listdir("/proc/self/task"))
torch.nn.functional.conv2d(torch.randn(8, 3, 64, 64), torch.randn(16, 3, 3, 3))
print(len(os.listdir("/proc/self/task")) - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts threads in /proc")
def test_the_window_threads_get_no_openmp_team_of_their_own_and_other_threads_the_default() -> None:
    """A PyTorch op on the GUI thread must not give it an OpenMP team beside training's (libgomp
    stops spinning with more OpenMP threads than cores; the app's crnn then trained at 0.72 of its
    speed). In a fresh process: its main thread has not run PyTorch yet."""
    import json
    import subprocess

    done = subprocess.run([sys.executable, "-c", _GUI_THREAD_CHECK], capture_output=True, text=True, check=True)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["gui"] == [1, 0]  # one thread, and its conv started none
    assert out["new_thread"] == 2  # threads started meanwhile (training's worker) get the default
    assert out["pool"] == [1, 0]  # a dry run's pool thread: one thread, no team
    assert out["after"] == 2
    bare = subprocess.run([sys.executable, "-c", _BARE_CHECK], capture_output=True, text=True, check=True)
    assert bare.stdout.strip().splitlines()[-1] == "1"  # unguarded, the same conv starts a team: the check sees one
