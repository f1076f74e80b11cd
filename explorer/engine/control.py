"""The one owner of a run's state: stop, pause, progress and what to probe.

A :class:`RunControl` belongs to one :class:`~explorer.engine.trainer.Trainer` run. Front
ends (the CLI, the UI's worker and window) ask it and send it requests from any thread;
only the training loop moves its phase and progress. Nothing else keeps a copy of
"is it paused" or "was stop pressed" (superqt's ``GeneratorWorker`` idea: one place owns
pause/abort, everyone else asks).

States (:attr:`RunControl.state`): ``idle`` (not started), ``preparing`` (reading data,
building the model), ``training``, ``paused`` (a pause was requested; the loop holds at
the next batch boundary, blocked on an event, not spinning), ``stopping`` (a stop was
requested; the loop ends at the next batch, training or validation), ``finished``.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "RunControl",
    "StopGuard",
    "RunProgress",
    "IDLE",
    "PREPARING",
    "TRAINING",
    "PAUSED",
    "STOPPING",
    "FINISHED",
]

IDLE, PREPARING, TRAINING, PAUSED, STOPPING, FINISHED = (
    "idle",
    "preparing",
    "training",
    "paused",
    "stopping",
    "finished",
)


@dataclass(frozen=True)
class RunProgress:
    """Where the run is (a snapshot; plain values)."""

    data_done: int = 0  # decoded files while reading data
    data_total: int = 0
    epoch: int = 0  # 1-based epoch in progress (0 before the first)
    epochs: int = 0
    step: int = 0  # last finished step of the epoch in progress
    steps: int = 0
    global_step: int = 0
    validating: bool = False  # between the last training step of an epoch and its report


Listener = Callable[[str], None]


class RunControl:
    """Thread-safe run state. Requests (:meth:`request_stop`, :meth:`pause`, :meth:`resume`,
    :meth:`set_probe_paths`) may come from any thread; the trainer calls the rest."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._go = threading.Event()  # cleared while paused; the loop blocks on it
        self._go.set()
        self._phase = IDLE
        self._holding = False
        self._progress = RunProgress()
        self._probe_paths: tuple[str, ...] = ()
        self._probe_version = 0
        self._listeners: list[Listener] = []
        self._shown = IDLE  # the state listeners were last told
        self._probing_charge = 0.0  # seconds of probing done outside the trainer, not yet taken

    # -- asking (any thread) ---------------------------------------------------------------------
    @property
    def state(self) -> str:
        with self._lock:
            return self._state_locked()

    def _state_locked(self) -> str:
        if self._phase == FINISHED:
            return FINISHED
        if self._stop.is_set():
            return STOPPING
        if not self._go.is_set():
            return PAUSED
        return self._phase

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def pause_requested(self) -> bool:
        return not self._go.is_set()

    @property
    def holding(self) -> bool:
        """True while the training loop is blocked by a pause."""
        with self._lock:
            return self._holding

    @property
    def progress(self) -> RunProgress:
        with self._lock:
            return self._progress

    @property
    def probe_paths(self) -> tuple[int, tuple[str, ...]]:
        """(version, paths): the images the probe hook shows; () = the default image."""
        with self._lock:
            return self._probe_version, self._probe_paths

    def add_listener(self, listener: Listener) -> None:
        """``listener(state)`` after every change of :attr:`state`, on the thread that changed it."""
        with self._lock:
            self._listeners.append(listener)

    # -- requests (any thread) -------------------------------------------------------------------
    def request_stop(self) -> None:
        """End the run at the next batch (training or validation); also ends a paused run."""
        self._change(self._stop.set, self._go.set)

    def pause(self) -> None:
        """Hold the loop at the next batch boundary until :meth:`resume` or :meth:`request_stop`."""
        with self._lock:
            ignore = self._phase == FINISHED or self._stop.is_set()
        if not ignore:
            self._change(self._go.clear)

    def resume(self) -> None:
        self._change(self._go.set)

    def charge_probing(self, seconds: float) -> None:
        """Adds ``seconds`` of work that probing caused outside the trainer (the window drawing a
        probe report, in the GUI thread) to what the probe hook counts against its budget."""
        if seconds > 0:
            with self._lock:
                self._probing_charge += seconds

    def take_probing_charge(self) -> float:
        """The seconds :meth:`charge_probing` added since the last call (the probe hook's)."""
        with self._lock:
            seconds, self._probing_charge = self._probing_charge, 0.0
        return seconds

    def set_probe_paths(self, paths: Sequence[str]) -> None:
        """Which image(s) the probe hook shows from its next probe on; empty = the default
        (the first validation image). Images outside the data set are decoded as the model's input."""
        with self._lock:
            self._probe_paths = tuple(str(p) for p in paths)
            self._probe_version += 1

    # -- the training loop ------------------------------------------------------------------------
    def set_phase(self, phase: str) -> None:
        self._change(lambda: setattr(self, "_phase", phase))

    def update(self, **progress: int | bool) -> None:
        """Replace some :class:`RunProgress` fields."""
        with self._lock:
            self._progress = dataclasses.replace(self._progress, **progress)

    def hold(self) -> float:
        """Blocks the calling thread while a pause is requested; returns the seconds it held."""
        if self._go.is_set():
            return 0.0
        t0 = time.perf_counter()
        with self._lock:
            self._holding = True
        try:
            self._go.wait()
        finally:
            with self._lock:
                self._holding = False
        return time.perf_counter() - t0

    # -- internals --------------------------------------------------------------------------------
    def _change(self, *actions: Callable[[], object]) -> None:
        with self._lock:
            for act in actions:
                act()
            state = self._state_locked()
            changed, self._shown = state != self._shown, state
            listeners = list(self._listeners)
        if changed:
            for listener in listeners:
                listener(state)


class StopGuard:
    """Stops a forward pass between two of its modules once a stop is requested.

    Attached (forward pre-hooks on every module of the model) for the life of a run; while
    :attr:`raising` is set, the next module to run raises ``raising()``. A stop requested in
    the middle of a long batch (a validation pass of 256 images through a resnet, a
    caption being decoded word by word) takes effect within one layer, not one batch. The
    trainer sets :attr:`raising` only around training steps and validation, so probes and
    the final measurement of the weights are never cut.
    """

    def __init__(self, control: RunControl) -> None:
        self.control = control
        self.raising: Callable[[], BaseException] | None = None
        self._handles: list[object] = []

    def attach(self, model: object) -> StopGuard:
        self._handles = [m.register_forward_pre_hook(self._check) for m in model.modules()]  # type: ignore[attr-defined]
        return self

    def detach(self) -> None:
        for h in self._handles:
            h.remove()  # type: ignore[attr-defined]
        self._handles = []

    def _check(self, _module: object, _args: object) -> None:
        if self.raising is not None and self.control.stop_requested:
            raise self.raising()
