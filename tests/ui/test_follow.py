"""The app follows runs other processes write: a CLI run, and a training it starts in a separate
process ("Train on N GPUs"); every view gets the run as it gets the app's own training."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from explorer.cli.train import without_nproc
from explorer.engine import EpochReport, RunConfig, StepReport, runfolder
from explorer.ui.follow import train_command
from tests.ui.helpers import make_window

ROOT = Path(__file__).resolve().parents[2]


class _Recorder:
    def __init__(self) -> None:
        self.events: list[object] = []

    def on_event(self, ev: object) -> None:
        self.events.append(ev)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def test_the_command_runs_the_cli_or_torchrun_for_several_processes(tmp_path: Path) -> None:
    one = train_command("sample:shapes", tmp_path / "c.json", tmp_path / "run", 1)
    assert one[:5] == [sys.executable, "-m", "explorer", "train", "sample:shapes"]
    assert one[one.index("--config") + 1] == str(tmp_path / "c.json") and one[one.index("--out") + 1] == str(
        tmp_path / "run"
    )
    two = train_command("sample:shapes", tmp_path / "c.json", tmp_path / "run", 2)
    # several processes: the CLI's own launcher (train --nproc-per-node starts torchrun), same run otherwise
    assert "--nproc-per-node=2" in two and without_nproc(two) == one


@pytest.mark.slow
def test_the_app_follows_a_cli_run_it_did_not_start(qtbot, two_class: Path, tmp_path: Path) -> None:
    w = make_window(qtbot)
    rec = _Recorder()
    w.follower.event.connect(rec.on_event)
    run = tmp_path / "runs" / "cli-run"
    assert w.follow_run(run)  # before the run exists: the follower waits for it
    assert w.follower.state == "starting" and not w.act_train.isEnabled() and not w.act_pause.isEnabled()
    cfg = RunConfig(arch="cnn", params={"channels": "8"})
    cfg.data.source = str(two_class)
    cfg.train.epochs = 2
    cfg.train.batch_size = 8
    cfg.train.device = "cpu"
    cfg.train.probe_interval = 0.05
    (tmp_path / "cfg.json").write_text(json.dumps(cfg.to_dict()))
    cmd = [sys.executable, "-m", "explorer", "train", str(two_class), "--config", str(tmp_path / "cfg.json")]
    cmd += ["--out", str(run)]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        with qtbot.waitSignal(w.follower.finished, timeout=120000) as blocker:
            pass
    finally:
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    fin = blocker.args[0]
    assert fin.status == "completed" and fin.run_dir == str(run)
    assert fin.metrics == json.loads((run / runfolder.METRICS).read_text())
    qtbot.waitUntil(lambda: w.follower.state == "idle", timeout=5000)
    steps = [e for e in rec.events if isinstance(e, StepReport)]
    assert steps and [e.epoch for e in rec.events if isinstance(e, EpochReport)] == [1, 2]
    curves = w.train_panel.curves
    curves.flush()
    assert len(curves.series["train_loss"].x) == len(steps) and len(curves.series["val_acc"].x) == 2
    qtbot.waitUntil(lambda: w.train_panel.probe.painted >= 1, timeout=10000)  # a probe image was drawn
    qtbot.waitUntil(lambda: bool(w.inspector.compare.views), timeout=10000)
    assert w.train_panel.state_label.text().startswith("Finished")
    assert w.train_panel.progress.value() == w.train_panel.progress.maximum()
    assert w.act_train.isEnabled() and not w.act_stop.isEnabled()
    assert w.inspector.run_dir == run  # the inspector goes on with the finished run's model
    w.follower.unfollow()


@pytest.mark.slow
def test_train_in_a_separate_process_completes_and_shows_the_run(qtbot, two_class: Path) -> None:
    w = make_window(qtbot, two_class, epochs=2, probe=0.05)
    rec = _Recorder()
    w.follower.event.connect(rec.on_event)
    with qtbot.waitSignal(w.follower.finished, timeout=120000) as blocker:
        assert w.train_in_processes(1)
        assert w.follower.process is not None and not w.act_train.isEnabled() and w.act_stop.isEnabled()
    fin = blocker.args[0]
    assert fin.status == "completed", fin.message
    qtbot.waitUntil(lambda: w.follower.state == "idle" and w.follower.process is None, timeout=30000)
    run = w.session.project.runs[-1]
    assert run.status == "completed" and run.metrics == json.loads((Path(run.dir) / runfolder.METRICS).read_text())
    assert any(isinstance(e, StepReport) for e in rec.events)
    w.train_panel.curves.flush()
    assert len(w.train_panel.curves.series["val_acc"].x) == 2
    assert w.runs_panel.table.item(0, 2).text() == "completed"
    assert w.act_train.isEnabled()
    w.follower.unfollow()


@pytest.mark.slow
def test_stop_ends_the_separate_process_and_the_run_stays_resumable(qtbot, two_class: Path) -> None:
    w = make_window(qtbot, two_class, epochs=200)
    with qtbot.waitSignal(w.follower.event, timeout=120000, check_params_cb=lambda e: isinstance(e, EpochReport)):
        assert w.train_in_processes(1)
    with qtbot.waitSignal(w.follower.finished, timeout=60000) as blocker:
        w.stop_training()
        assert w.follower.state == "stopping"
    assert blocker.args[0].status == "stopped"
    qtbot.waitUntil(lambda: w.follower.process is None and w.follower.state == "idle", timeout=30000)
    run = Path(w.session.project.runs[-1].dir)
    assert (run / runfolder.CHECKPOINT).is_file()  # resumable
    w.follower.unfollow()


def test_gui_follow_refuses_a_file_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from explorer.cli import main
    from explorer.cli.common import EXIT_USAGE

    f = tmp_path / "metrics.json"
    f.write_text("{}")
    assert main(["gui", "--follow", str(f)]) == EXIT_USAGE
    assert f"--follow {f}: is a file" in capsys.readouterr().err


def test_a_writer_gone_without_finishing_shows_as_a_failed_run(qtbot, tmp_path: Path) -> None:
    from explorer.engine import Status
    from explorer.engine.eventlog import EventLog

    run = tmp_path / "run"
    run.mkdir()
    log = EventLog(run, resumed=False)  # a writer killed mid-run: its log ends without a Finished, no lock
    log.append(Status("reading data"), run)
    log.append(StepReport(1, 3, 1, 4, 1, 0.9, 0.5, 0.01, 100.0, 0.1, 1.0), run)
    log.close()
    w = make_window(qtbot)
    with qtbot.waitSignal(w.follower.finished, timeout=10000) as blocker:
        assert w.follow_run(run)
        assert w.follower.state == "running"
    fin = blocker.args[0]
    assert fin.status == "failed" and "ended without finishing" in fin.message and fin.run_dir == str(run)
    assert w.follower.state == "idle" and w.act_train.isEnabled()
    assert w.train_panel.state_label.text() == "Training failed."
    w.follower.unfollow()


def test_gui_follow_opens_the_app_following_the_run(qapp, tmp_path: Path) -> None:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from explorer.engine import Finished
    from explorer.engine.eventlog import EventLog
    from explorer.ui import app as app_module
    from explorer.ui.main_window import MainWindow

    run = tmp_path / "run"
    run.mkdir()
    log = EventLog(run, resumed=False)
    log.append(Finished("completed", "", {"val_accuracy": 0.75}, None), run)
    log.close()
    seen: dict[str, object] = {}

    def look() -> None:
        w = next(x for x in QApplication.topLevelWidgets() if isinstance(x, MainWindow))
        seen["run"], seen["finished"] = w.follower.run_dir, w.follower.last_finished
        w.act_quit.trigger()

    QTimer.singleShot(1500, look)
    assert app_module.run_app(None, follow=str(run)) == 0
    assert seen["run"] == run and seen["finished"] == Finished("completed", "", {"val_accuracy": 0.75}, None)
