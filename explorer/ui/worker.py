"""The training worker: the engine's :class:`~explorer.engine.Trainer` generator in a QThread.

:class:`TrainingWorker` lives in its own thread and iterates ``Trainer.run()``; every event but
probes becomes a queued ``event`` signal (events are plain Python/numpy and the trainer never
touches one again once yielded). Probes are large and frequent, so only the newest one is kept,
in a slot guarded by a lock, and at most one ``probeReady`` signal is ever pending: when the UI
falls behind, older probes are overwritten instead of queueing up.

:class:`TrainingController` lives in the GUI thread, owns the thread, re-emits the worker's
signals to any number of views (connected to ``@Slot`` methods, never lambdas), and makes sure
the thread is stopped, quit and waited for on every path: normal end, Stop, error, window close.
Stop / Pause / Resume call the trainer's thread-safe methods directly (the worker's event loop
is busy running the generator, so a queued call would only arrive after training).
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
import traceback
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal, Slot

from explorer.data import DataError, Source
from explorer.engine import ConfigError, Finished, ProbeReport, RunConfig, Trainer, TrainingError
from models import ParamError

from .threads import new_thread

__all__ = ["TrainingWorker", "TrainingController", "describe_error"]


def _cpu_threads(n: int | None) -> int:
    """Sets PyTorch's CPU thread count (None: unchanged); returns the previous count.

    NOTE for the engine: a ``threads`` training option would make this import unnecessary.
    """
    import torch

    before = torch.get_num_threads()
    if n is not None and n != before:
        torch.set_num_threads(n)
    return before


def gui_friendly_threads() -> int:
    """CPU threads for training in the app: every core but one, which stays with the window."""
    return max(1, (os.cpu_count() or 1) - 1)


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
    if run_dir is not None and (run_dir / "weights.safetensors").is_file():
        msg += f" The last good weights are kept in {run_dir}."
    return msg


class TrainingWorker(QObject):
    event = Signal(object)  # Status | DataReady | ModelReady | StepReport | EpochReport | Finished
    probeReady = Signal()  # a new probe waits in take_probe()
    log = Signal(str)
    done = Signal()  # run() returned; the thread may quit

    def __init__(
        self,
        config: RunConfig,
        run_dir: str | os.PathLike[str] | None,
        source: Source | None = None,
        *,
        report_interval: float = 0.2,
        cpu_threads: int | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.cpu_threads = cpu_threads
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.source = source
        self.report_interval = report_interval
        self._lock = threading.Lock()
        self._trainer: Trainer | None = None
        self._stop = False
        self._paused = False
        self._probe: ProbeReport | None = None
        self._probe_signalled = False
        self.probes_received = 0
        self.probes_dropped = 0

    # -- control (any thread) ---------------------------------------------------------------------
    def stop(self) -> None:
        with self._lock:
            self._stop = True
            trainer = self._trainer
        if trainer is not None:
            trainer.request_stop()

    def pause(self) -> None:
        with self._lock:
            self._paused = True
            trainer = self._trainer
        if trainer is not None:
            trainer.request_pause()

    def resume(self) -> None:
        with self._lock:
            self._paused = False
            trainer = self._trainer
        if trainer is not None:
            trainer.request_resume()

    def take_probe(self) -> ProbeReport | None:
        """The newest probe (GUI thread); None if it was taken already."""
        with self._lock:
            probe, self._probe = self._probe, None
            self._probe_signalled = False
        return probe

    # -- the worker thread ------------------------------------------------------------------------
    @Slot()
    def run(self) -> None:
        threads_before = _cpu_threads(self.cpu_threads)
        try:
            trainer = Trainer(self.config, self.run_dir, source=self.source, report_interval=self.report_interval)
            with self._lock:
                self._trainer = trainer
                stop, paused = self._stop, self._paused
            if stop:
                trainer.request_stop()
            elif paused:
                trainer.request_pause()
            for ev in trainer.run():
                if isinstance(ev, ProbeReport):
                    self._keep_probe(ev)
                else:
                    self.event.emit(ev)
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
            _cpu_threads(threads_before)
            with self._lock:
                self._trainer = None
            app = QCoreApplication.instance()
            if app is not None:  # hand the object back so the GUI thread can free it
                self.moveToThread(app.thread())
            self.done.emit()

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
            if self._probe is not None:
                self.probes_dropped += 1
            self._probe = probe
            signal = not self._probe_signalled
            self._probe_signalled = True
        if signal:
            self.probeReady.emit()


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
        self._state = "idle"
        self.stop_requested_at: float | None = None
        self.last_finished: Finished | None = None

    @property
    def state(self) -> str:
        return self._state

    def is_running(self) -> bool:
        return self._thread is not None

    @property
    def worker(self) -> TrainingWorker | None:
        return self._worker

    def _set_state(self, state: str) -> None:
        if state != self._state:
            self._state = state
            self.stateChanged.emit(state)

    def start(
        self,
        config: RunConfig,
        run_dir: str | os.PathLike[str] | None,
        source: Source | None = None,
        *,
        report_interval: float = 0.2,
        cpu_threads: int | None = None,
    ) -> None:
        """Trains in a new thread. ``cpu_threads``: PyTorch CPU threads while it runs (None: as is)."""
        if self._thread is not None:
            raise RuntimeError("a training run is already in progress")
        self.last_finished = None
        self.stop_requested_at = None
        worker = TrainingWorker(config, run_dir, source, report_interval=report_interval, cpu_threads=cpu_threads)
        thread = new_thread("training", stop=worker.stop)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.event.connect(self._on_event)
        worker.probeReady.connect(self._on_probe_ready)
        worker.log.connect(self._on_log)
        worker.done.connect(self._on_worker_done)
        thread.finished.connect(self._on_thread_finished)
        self._worker, self._thread = worker, thread
        self._set_state("starting")
        thread.start()
        self.started.emit(str(run_dir) if run_dir is not None else "")

    # -- control ----------------------------------------------------------------------------------
    def stop(self) -> None:
        if self._worker is not None and self._state != "stopping":
            self.stop_requested_at = time.perf_counter()
            self._worker.stop()
            self._set_state("stopping")

    def pause(self) -> None:
        if self._worker is not None and self._state in ("running", "starting"):
            self._worker.pause()
            self._set_state("paused")

    def resume(self) -> None:
        if self._worker is not None and self._state == "paused":
            self._worker.resume()
            self._set_state("running")

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Stops and waits for the thread (blocking; for quitting). Returns True when none is left."""
        thread, worker = self._thread, self._worker
        if thread is None:
            return True
        if worker is not None:
            worker.stop()
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
        elif self._state == "starting":
            self._set_state("running")
        self.event.emit(ev)
        if isinstance(ev, Finished):
            self.finished.emit(ev)

    @Slot()
    def _on_probe_ready(self) -> None:
        worker = self._worker
        probe = worker.take_probe() if worker is not None else None
        if probe is not None:
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

    def _cleanup(self, thread: QThread) -> None:
        if thread is not self._thread:
            return
        thread.wait()
        self._thread = None
        self._worker = None
        self._set_state("idle")
        self.idle.emit()
