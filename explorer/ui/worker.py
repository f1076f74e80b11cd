"""The training worker: the engine's :class:`~explorer.engine.Trainer` generator in a QThread.

:class:`TrainingWorker` lives in its own thread and iterates ``Trainer.run()``; every event but
probes becomes a queued ``event`` signal (events are plain Python/numpy and the trainer never
touches one again once yielded). Probes are large and frequent, so only the newest one per probed
image is kept, in slots guarded by a lock, and at most one ``probeReady`` signal is ever pending: when the UI
falls behind, older probes are overwritten instead of queueing up.

:class:`TrainingController` lives in the GUI thread, owns the thread, re-emits the worker's
signals to any number of views (connected to ``@Slot`` methods, never lambdas), and makes sure
the thread is stopped, quit and waited for on every path: normal end, Stop, error, window close.

Run state has one owner, the trainer's :class:`~explorer.engine.control.RunControl`: the worker
creates it with the worker (so Stop works before the trainer exists) and hands it to the
trainer; Stop / Pause / Resume / the probe image go to it directly from the GUI thread (the
worker's event loop is busy running the generator, so a queued call would only arrive after
training), and the controller's ``state`` is read from it. Neither keeps flags of its own.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal, Slot

from explorer.data import DataError, Source
from explorer.engine import ConfigError, Finished, ProbeReport, RunConfig, Trainer, TrainingError, runfolder
from explorer.engine.control import RunControl
from models import ParamError

from .probe.meter import paint_meter
from .threads import (
    TRAINING_NICE,
    TRAINING_SWITCH_INTERVAL,
    SwitchInterval,
    cpu_threads,
    default_threads,
    gui_friendly_threads,
    lower_thread_priority,
    new_thread,
    one_thread_for_the_gui,
)

__all__ = [
    "TrainingWorker",
    "TrainingController",
    "describe_error",
    "gui_friendly_threads",
    "one_thread_for_the_gui",
    "TRAINING_SWITCH_INTERVAL",
    "TRAINING_NICE",
]


def _is_out_of_memory(e: BaseException) -> bool:
    return isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError" or "out of memory" in str(e).lower()


def describe_error(e: BaseException, run_dir: Path | None = None) -> str:
    """A message for the user: what went wrong and what to try."""
    if isinstance(e, ParamError):
        msg = f"Invalid model parameter '{e.param}': {e.message}"
    elif isinstance(e, ConfigError):
        msg = f"Invalid setting '{e.key}': {str(e).split(': ', 1)[-1]}"
    elif isinstance(e, DataError):
        msg = f"The data cannot be used: {e}"
    elif _is_out_of_memory(e):
        msg = "Out of memory. Try a smaller batch size, smaller images or a smaller model."
    elif isinstance(e, TrainingError):
        msg = str(e)
    else:
        msg = f"Training failed with an unexpected error: {type(e).__name__}: {e}"
    if run_dir is not None and runfolder.weights_file(run_dir) is not None:
        msg += f" The last good weights are kept in {run_dir}."
    return msg


class TrainingWorker(QObject):
    event = Signal(object)  # Status | DataReady | ModelReady | StepReport | EpochReport | Finished
    probeReady = Signal()  # a new probe waits in take_probe()
    log = Signal(str)
    done = Signal()  # run() returned; the thread may quit
    controlChanged = Signal(str)  # the run control's new state (from the thread that changed it)

    def __init__(
        self,
        config: RunConfig,
        run_dir: str | os.PathLike[str] | None,
        source: Source | None = None,
        *,
        report_interval: float = 0.2,
        cpu_threads: int | None = None,
        switch_interval: float | None = TRAINING_SWITCH_INTERVAL,
    ) -> None:
        super().__init__()
        self.config = config
        self.cpu_threads = cpu_threads
        self.switch_interval = switch_interval
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.source = source
        self.report_interval = report_interval
        self.control = RunControl()  # the run's state; the trainer this worker runs owns it
        self.control.add_listener(self.controlChanged.emit)
        self._lock = threading.Lock()
        self._probes: dict[str, ProbeReport] = {}  # the newest probe per image, not yet taken
        self._probe_signalled = False
        self.probes_received = 0
        self.probes_dropped = 0

    def take_probes(self) -> list[ProbeReport]:
        """The newest probe of each probed image, oldest first (GUI thread); [] if taken already."""
        with self._lock:
            probes, self._probes = list(self._probes.values()), {}
            self._probe_signalled = False
        return sorted(probes, key=lambda p: p.global_step)

    def take_probe(self) -> ProbeReport | None:
        """The newest probe (GUI thread); None if it was taken already."""
        probes = self.take_probes()
        return probes[-1] if probes else None

    # -- the worker thread ------------------------------------------------------------------------
    @Slot()
    def run(self) -> None:
        default_threads()  # before the first run changes it
        lower_thread_priority(TRAINING_NICE)  # this thread's own; its OpenMP threads are made after
        threads_before = cpu_threads(self.cpu_threads)
        try:
            trainer = self._make_trainer()
            with SwitchInterval(self.switch_interval):
                self._drive(trainer.run())
        except Exception as e:  # noqa: BLE001 - every failure becomes a message; the app stays up
            if not isinstance(e, (ParamError, ConfigError, DataError, TrainingError)) and not _is_out_of_memory(e):
                self.log.emit(traceback.format_exc())
            self.event.emit(
                Finished(
                    status="failed",
                    message=describe_error(e, self.run_dir),
                    metrics={},
                    run_dir=str(self.run_dir) if self.run_dir is not None and self.run_dir.is_dir() else None,
                )
            )
        finally:
            cpu_threads(threads_before)
            app = QCoreApplication.instance()
            if app is not None:  # hand the object back so the GUI thread can free it
                self.moveToThread(app.thread())
            self.done.emit()

    def _make_trainer(self) -> Trainer:
        """The run's trainer (made in the worker thread)."""
        return Trainer(
            self.config,
            self.run_dir,
            source=self.source,
            report_interval=self.report_interval,
            control=self.control,
        )

    def _drive(self, events: Iterator[object]) -> None:
        """Iterates the trainer's events to their end, handing each to the window."""
        for ev in events:
            self._handle(ev)

    def _handle(self, ev: object) -> None:
        if isinstance(ev, ProbeReport):
            self._keep_probe(ev)
        else:
            self.event.emit(ev)
        time.sleep(0)  # a report point: hand the GIL to the window if it waits

    def _keep_probe(self, ev: ProbeReport) -> None:
        # Own copies: nothing the UI holds may alias memory the engine could reuse.
        probe = dataclasses.replace(
            ev,
            image=ev.image.copy(),
            probabilities=ev.probabilities.copy(),
            intermediates={k: v.copy() for k, v in ev.intermediates.items()},
        )
        with self._lock:
            self.probes_received += 1
            if probe.path in self._probes:
                self.probes_dropped += 1
            self._probes[probe.path] = probe
            signal = not self._probe_signalled
            self._probe_signalled = True
        if signal:
            self.probeReady.emit()


# The run control's states as the window shows them; a finished run whose thread is still
# winding down shows as stopping (Train stays disabled until the thread is gone).
_SHOWN_STATE = {
    "idle": "starting",
    "preparing": "starting",
    "training": "running",
    "paused": "paused",
    "stopping": "stopping",
    "finished": "stopping",
}


class TrainingController(QObject):
    """Starts one training at a time and owns its thread (GUI thread only)."""

    started = Signal(str)  # run folder
    event = Signal(object)  # every non-probe event, in order
    probe = Signal(object)  # the newest ProbeReport
    log = Signal(str)
    stateChanged = Signal(str)  # idle | starting | running | paused | stopping
    finished = Signal(object)  # the Finished event
    idle = Signal()  # the thread is gone

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread: QThread | None = None
        self._worker: TrainingWorker | None = None
        self._shown = "idle"  # the state last announced through stateChanged (not a second owner)
        self._probe_paths: list[str] = []  # the user's choice of probe images, kept across runs
        self.stop_requested_at: float | None = None
        self.last_finished: Finished | None = None

    @property
    def control(self) -> RunControl | None:
        """The running training's state owner (None when no training runs)."""
        return self._worker.control if self._worker is not None else None

    @property
    def state(self) -> str:
        """idle | starting | running | paused | stopping, read from the run control."""
        control = self.control
        return "idle" if control is None else _SHOWN_STATE[control.state]

    def is_running(self) -> bool:
        return self._thread is not None

    @property
    def worker(self) -> TrainingWorker | None:
        return self._worker

    @Slot()
    def _announce_state(self) -> None:
        state = self.state
        if state != self._shown:
            self._shown = state
            self.stateChanged.emit(state)

    @Slot(str)
    def _on_control_changed(self, _state: str) -> None:
        self._announce_state()  # the state now, which may be newer than the signal's

    def start(
        self,
        config: RunConfig,
        run_dir: str | os.PathLike[str] | None,
        source: Source | None = None,
        *,
        report_interval: float = 0.2,
        cpu_threads: int | None = None,
        switch_interval: float | None = TRAINING_SWITCH_INTERVAL,
    ) -> None:
        """Trains in a new thread. ``cpu_threads``: PyTorch CPU threads while it runs (None: as is);
        ``switch_interval``: the GIL switch interval while it runs (None: as is)."""
        if self._thread is not None:
            raise RuntimeError("a training run is already in progress")
        self.last_finished = None
        self.stop_requested_at = None
        worker = self._new_worker(
            config,
            run_dir,
            source,
            report_interval=report_interval,
            cpu_threads=cpu_threads,
            switch_interval=switch_interval,
        )
        worker.control.set_probe_paths(self._probe_paths)
        thread = new_thread("training", stop=worker.control.request_stop)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.event.connect(self._on_event)
        worker.probeReady.connect(self._on_probe_ready)
        worker.log.connect(self._on_log)
        worker.done.connect(self._on_worker_done)
        worker.controlChanged.connect(self._on_control_changed)
        thread.finished.connect(self._on_thread_finished)
        paint_meter().cost.connect(self._charge_paint)
        self._worker, self._thread = worker, thread
        self._announce_state()
        thread.start()
        self.started.emit(str(run_dir) if run_dir is not None else "")

    def _new_worker(self, *args: Any, **kwargs: Any) -> TrainingWorker:
        """The worker of a run started with ``TrainingWorker``'s arguments (a bench measuring the
        app's cost trains with its own)."""
        return TrainingWorker(*args, **kwargs)

    # -- control ----------------------------------------------------------------------------------
    def stop(self) -> None:
        control = self.control
        if control is not None and self.state != "stopping":
            self.stop_requested_at = time.perf_counter()
            control.request_stop()
            self._announce_state()

    def pause(self) -> None:
        control = self.control
        if control is not None and self.state in ("running", "starting"):
            control.pause()
            self._announce_state()

    def resume(self) -> None:
        control = self.control
        if control is not None and self.state == "paused":
            control.resume()
            self._announce_state()

    def set_probe_paths(self, paths: list[str]) -> None:
        """The image(s) the live view probes, from the next probe of this and later runs
        (empty: the first validation image)."""
        self._probe_paths = [str(p) for p in paths]
        control = self.control
        if control is not None:
            control.set_probe_paths(self._probe_paths)

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Stops and waits for the thread (blocking; for quitting). Returns True when none is left."""
        thread, worker = self._thread, self._worker
        if thread is None:
            return True
        if worker is not None:
            worker.control.request_stop()
        thread.quit()  # leaves the thread's event loop as soon as run() returns
        ok = thread.wait(timeout_ms)
        if ok:
            self._cleanup(thread)
        return ok

    # -- from the worker (queued into the GUI thread) ---------------------------------------------
    @Slot(object)
    def _on_event(self, ev: object) -> None:
        if isinstance(ev, Finished):
            self.last_finished = ev
        self.event.emit(ev)
        if isinstance(ev, Finished):
            self.finished.emit(ev)

    @Slot()
    def _on_probe_ready(self) -> None:
        worker = self._worker
        for probe in worker.take_probes() if worker is not None else []:
            self.probe.emit(probe)

    @Slot(str)
    def _on_log(self, text: str) -> None:
        self.log.emit(text)

    @Slot()
    def _on_worker_done(self) -> None:
        if self._thread is not None:
            self._thread.quit()

    @Slot()
    def _on_thread_finished(self) -> None:
        if self._thread is not None and not self._thread.isRunning():
            self._cleanup(self._thread)

    @Slot(float)
    def _charge_paint(self, seconds: float) -> None:
        """The window's CPU time drawing probe reports (:mod:`.probe.meter`) is probing's cost:
        the run's probe hook counts it against its budget."""
        control = self.control
        if control is not None:
            control.charge_probing(seconds)

    def _cleanup(self, thread: QThread) -> None:
        if thread is not self._thread:
            return
        paint_meter().cost.disconnect(self._charge_paint)
        thread.wait()
        self._thread = None
        self._worker = None
        self._announce_state()
        self.idle.emit()
