"""Training through the real worker thread: to the end, stop, pause, close mid-run, errors."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QObject, Slot

import explorer.ui.worker as worker_module
from explorer.engine import Finished, ProbeReport, RunConfig, StepReport, Trainer, load_run
from explorer.engine.export import export_run
from explorer.ui.threads import running_threads
from explorer.ui.worker import TrainingWorker
from tests.ui.helpers import make_window, wait_idle

pytestmark = pytest.mark.gui


class _Recorder(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[object] = []
        self.times: list[float] = []

    @Slot(object)
    def on_event(self, ev: object) -> None:
        self.events.append(ev)
        self.times.append(time.perf_counter())

    def first(self, kind: type) -> object | None:
        return next((e for e in self.events if isinstance(e, kind)), None)


def test_train_a_tiny_dataset_to_the_end(qtbot, two_class: Path) -> None:
    w = make_window(qtbot, two_class, epochs=2, probe=0.05)
    rec = _Recorder()
    w.controller.event.connect(rec.on_event)
    with qtbot.waitSignal(w.controller.finished, timeout=60000) as blocker:
        assert w.start_training()
        assert w.tabs.currentWidget() is w.train_panel
        assert not w.act_train.isEnabled() and w.act_stop.isEnabled()
    fin = blocker.args[0]
    assert fin.status == "completed", fin.message
    wait_idle(qtbot, w)
    steps = [e for e in rec.events if isinstance(e, StepReport)]
    assert steps and steps[0].epoch == 1  # curves get data during the first epoch, not only at its end
    w.train_panel.curves.flush()
    assert len(w.train_panel.curves.series["train_loss"].x) == len(steps)
    assert len(w.train_panel.curves.series["val_acc"].x) == 2
    run = w.session.project.runs[-1]
    assert run.status == "completed" and "val_accuracy" in run.metrics
    assert (Path(run.dir) / "weights.safetensors").is_file()
    assert w.runs_panel.table.rowCount() == 1 and w.runs_panel.table.item(0, 2).text() == "completed"
    assert w.train_panel.progress.value() == w.train_panel.progress.maximum()
    assert w.act_train.isEnabled() and not w.act_stop.isEnabled()
    assert w.train_panel.probe.painted >= 1 or w.controller.worker is None  # probes were drawn
    assert running_threads() == []

    # the run is usable: predict with it, export it, open the export as a model
    w.tabs.setCurrentWidget(w.runs_panel)
    images = sorted(str(p) for p in (two_class / "top").iterdir())[:3]
    w.runs_panel.predict(run, images)
    qtbot.waitUntil(lambda: w.runs_panel.predictions.rowCount() == 3, timeout=20000)
    assert {w.runs_panel.predictions.item(i, 1).text() for i in range(3)} <= {"top", "bottom"}
    (two_class.parent / "exported").mkdir()  # an export never creates folders
    out = Path(export_run(load_run(run.dir), "safetensors", two_class.parent / "exported" / "model").files[0])
    assert out.suffix == ".safetensors" and out.is_file() and out.with_suffix(".json").is_file()
    assert w.open_model(str(out))
    assert w.session.project.runs[-1].dir == str(out) and w.runs_panel.table.rowCount() == 2


def test_stop_mid_epoch_takes_effect_within_a_second(qtbot, two_class: Path) -> None:
    w = make_window(qtbot, two_class, epochs=500, batch_size=2)
    rec = _Recorder()
    w.controller.event.connect(rec.on_event)
    assert w.start_training()

    def mid_epoch() -> bool:
        s = [e for e in rec.events if isinstance(e, StepReport)]
        return bool(s) and s[-1].step < s[-1].steps

    qtbot.waitUntil(mid_epoch, timeout=30000)
    with qtbot.waitSignal(w.controller.finished, timeout=5000) as blocker:
        t0 = time.perf_counter()
        w.act_stop.trigger()
        assert w.state_label.text() == "Stopping…"
    elapsed = time.perf_counter() - t0
    fin = blocker.args[0]
    assert fin.status == "stopped" and "during epoch" in fin.message
    assert elapsed < 1.0, f"stop took {elapsed:.2f} s"
    wait_idle(qtbot, w, 5000)
    assert w.session.project.runs[-1].status == "stopped"
    assert w.train_panel.progress.format() == "Stopped"


def test_pause_and_resume(qtbot, two_class: Path) -> None:
    w = make_window(qtbot, two_class, epochs=500, batch_size=2)
    rec = _Recorder()
    w.controller.event.connect(rec.on_event)
    assert w.start_training()
    qtbot.waitUntil(lambda: rec.first(StepReport) is not None, timeout=30000)
    w.act_pause.trigger()
    assert w.controller.state == "paused" and w.act_pause.text() == "Resume"
    qtbot.waitUntil(lambda: any(getattr(e, "message", "") == "paused" for e in rec.events), timeout=5000)
    n = len(rec.events)
    qtbot.wait(300)
    assert len(rec.events) == n  # nothing moves while paused
    w.act_pause.trigger()
    assert w.controller.state == "running"
    qtbot.waitUntil(lambda: len(rec.events) > n + 1, timeout=5000)
    w.act_stop.trigger()
    wait_idle(qtbot, w, 10000)


def test_closing_the_window_mid_training_stops_cleanly(qtbot, two_class: Path) -> None:
    w = make_window(qtbot, two_class, epochs=500, batch_size=2)
    rec = _Recorder()
    w.controller.event.connect(rec.on_event)
    assert w.start_training()
    qtbot.waitUntil(lambda: rec.first(StepReport) is not None, timeout=30000)
    t0 = time.perf_counter()
    w.close()
    qtbot.waitUntil(lambda: not w.isVisible() and not w.controller.is_running(), timeout=10000)
    assert time.perf_counter() - t0 < 5
    assert running_threads() == []
    fin = rec.first(Finished)
    assert fin is not None and fin.status == "stopped"
    assert w.session.project.runs[-1].status == "stopped"


class _ExplodingTrainer(Trainer):
    """Fails like a GPU running out of memory, after some steps."""

    def run(self):  # noqa: ANN201
        for ev in super().run():
            yield ev
            if isinstance(ev, StepReport):
                raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")


def test_an_error_in_training_is_shown_and_the_app_stays_usable(qtbot, two_class: Path, monkeypatch) -> None:
    w = make_window(qtbot, two_class, epochs=2)
    monkeypatch.setattr(worker_module, "Trainer", _ExplodingTrainer)
    with qtbot.waitSignal(w.controller.finished, timeout=30000) as blocker:
        assert w.start_training()
    fin = blocker.args[0]
    assert fin.status == "failed" and "Out of memory" in fin.message
    wait_idle(qtbot, w)
    banner = w.train_panel.error_banner
    assert banner.isVisible() and "Out of memory" in banner.text.text() and "batch size" in banner.text.text()
    assert w.session.project.runs[-1].status == "failed"
    monkeypatch.setattr(worker_module, "Trainer", Trainer)
    with qtbot.waitSignal(w.controller.finished, timeout=60000) as blocker:
        assert w.start_training()  # still usable
    assert blocker.args[0].status == "completed"
    assert not banner.isVisible()
    wait_idle(qtbot, w)


def test_the_worker_keeps_only_the_newest_probe(qtbot) -> None:
    wk = TrainingWorker(RunConfig(), None)
    signals = []
    wk.probeReady.connect(lambda: signals.append(1))  # same thread: direct call
    for i in range(5):
        img = np.full((4, 4, 1), i, np.uint8)
        wk._keep_probe(
            ProbeReport(
                epoch=1,
                global_step=i,
                path="x.png",
                image=img,
                probabilities=np.ones(2) / 2,
                intermediates={"features.0": np.full((2, 4, 4), float(i), np.float32)},
            )
        )
    assert len(signals) == 1  # one pending signal, not five
    assert wk.probes_received == 5 and wk.probes_dropped == 4
    p = wk.take_probe()
    assert p is not None and p.global_step == 4 and p.image[0, 0, 0] == 4
    assert wk.take_probe() is None
    wk._keep_probe(ProbeReport(epoch=1, global_step=9, path="x.png", image=img, probabilities=np.ones(2) / 2))
    assert len(signals) == 2  # taken, so the next one signals again


class _RecordingTrainer(Trainer):
    made: list[Trainer] = []

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        _RecordingTrainer.made.append(self)


def test_the_worker_keeps_no_run_state_and_everyone_asks_the_trainer(qtbot, two_class: Path, monkeypatch) -> None:
    _RecordingTrainer.made = []
    monkeypatch.setattr(worker_module, "Trainer", _RecordingTrainer)
    w = make_window(qtbot, two_class, epochs=500, batch_size=2)
    rec = _Recorder()
    w.controller.event.connect(rec.on_event)
    assert w.start_training()
    wk = w.controller.worker
    assert wk is not None
    for name in ("_stop", "_paused", "_trainer", "stop", "pause", "resume"):
        assert not hasattr(wk, name), f"the worker mirrors run state: {name}"
    qtbot.waitUntil(lambda: rec.first(StepReport) is not None, timeout=30000)
    (trainer,) = _RecordingTrainer.made
    control = trainer.control
    assert control is wk.control is w.controller.control
    assert control.state == "training" and w.controller.state == "running"

    w.act_pause.trigger()
    assert control.state == "paused" and w.state_label.text() == "Paused"
    qtbot.waitUntil(lambda: control.holding, timeout=5000)
    step = control.progress.global_step
    qtbot.wait(300)
    assert control.progress.global_step == step  # the trainer really holds

    with qtbot.waitSignal(w.controller.finished, timeout=5000) as blocker:
        t0 = time.perf_counter()
        w.act_stop.trigger()  # stop a paused run
        assert control.state == "stopping" and w.state_label.text() == "Stopping…"
    assert time.perf_counter() - t0 < 1.0
    assert blocker.args[0].status == "stopped"
    wait_idle(qtbot, w, 10000)
    assert control.state == "finished" and w.controller.state == "idle" and w.state_label.text() == "Idle"


def test_the_probe_image_can_be_chosen_during_a_run(qtbot, two_class: Path) -> None:
    w = make_window(qtbot, two_class, epochs=500, batch_size=2, probe=0.05)
    rec = _Recorder()
    w.controller.probe.connect(rec.on_event)
    assert w.start_training()
    qtbot.waitUntil(lambda: len(rec.events) >= 1, timeout=30000)
    chosen = str(two_class / "top" / "top_003.png")
    w.controller.set_probe_paths([chosen])
    qtbot.waitUntil(lambda: rec.events[-1].path == chosen, timeout=5000)
    w.act_stop.trigger()
    wait_idle(qtbot, w, 10000)
    w.controller.set_probe_paths([])  # the default again for later runs


def test_the_windows_drawing_of_probes_is_charged_to_the_runs_probe_budget(qtbot, two_class: Path, monkeypatch) -> None:
    """The views' CPU time drawing live reports reaches the run's control, where the probe hook
    counts it as probing (tests/engine/test_probe_cost.py: it thins the probes out)."""
    from explorer.engine.control import RunControl

    charges: list[float] = []
    charge = RunControl.charge_probing
    monkeypatch.setattr(RunControl, "charge_probing", lambda self, s: (charges.append(s), charge(self, s)))
    w = make_window(qtbot, two_class, epochs=500, batch_size=2, probe=0.05)
    assert w.start_training()
    qtbot.waitUntil(lambda: len(charges) >= 2, timeout=30000)
    w.act_stop.trigger()
    wait_idle(qtbot, w, 10000)
    assert all(0 < s < 5 for s in charges)
    n = len(charges)
    from explorer.ui.probe.meter import paint_meter

    paint_meter().open()  # no run: the window's drawing is charged to nothing
    qtbot.wait(300)
    assert len(charges) == n
