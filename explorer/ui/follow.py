"""Following a run another process writes: its event log, polled on the GUI thread.

:class:`RunFollower` reads ``RUN_DIR``'s event log (:mod:`explorer.engine.eventlog`) with a
``QTimer`` every :data:`POLL_MS` (each read is small and incremental, never waits on the writer)
and re-emits the events through the same signals as the in-app
:class:`~explorer.ui.worker.TrainingController` (``event``, ``probe``, ``stateChanged``,
``finished``, ``idle``), so the window feeds them to the same slots: curves, progress, probe
view, inspector, log. The run may be a CLI run, a torchrun job, or one on another machine
writing to a shared file system; it may not have started yet.

:meth:`RunFollower.launch` starts a training in a separate process (``python -m explorer train``,
or torchrun for several processes: :func:`train_command`) through ``QProcess`` (the GUI
process never forks itself), in a session of its own, and follows its run folder the same way.
Stop sends the process group SIGINT (the trainer stops after the batch and saves what it can:
the run stays resumable), then SIGTERM and SIGKILL if it does not end.
"""

from __future__ import annotations

import os
import signal
import sys
from collections import deque
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QTimer, Signal, Slot

from explorer.engine import ConfigError, EpochReport, Finished, ModelReady, ProbeReport, RunConfig, StepReport
from explorer.engine.eventlog import EventLogReader, LogStarted
from explorer.engine.runfolder import RunFolderError, read_config

__all__ = ["RunFollower", "train_command", "POLL_MS"]

POLL_MS = 250  # how often the log is read while the run is going
IDLE_POLL_MS = 1000  # after it finished (a resume or an overwrite may follow)
_READ_BYTES = 256 << 10  # at most this much of the log per tick (~1,300 lines; a long log takes several)
_STOP_ESCALATE_MS = (15000, 10000)  # SIGINT -> SIGTERM -> SIGKILL
_SETSID = "import os, sys; os.setsid(); os.execv(sys.argv[1], sys.argv[1:])"


def train_command(
    data: str, config_file: str | os.PathLike[str], run_dir: str | os.PathLike[str], processes: int
) -> list[str]:
    """The command line of a training in a separate process (the one place that builds it).

    One process runs the CLI directly; several go through the CLI's own ``--nproc-per-node``,
    which starts torchrun (one node, gloo on CPU, NCCL on CUDA) the one way the project knows.
    """
    train = [sys.executable, "-m", "explorer", "train", data, "--config", str(config_file), "--out", str(run_dir)]
    train.append("--quiet")
    return train if processes <= 1 else [*train, f"--nproc-per-node={processes}"]


class RunFollower(QObject):
    """Follows one run folder at a time (GUI thread only); see the module docstring."""

    started = Signal(str)  # the run folder now followed
    event = Signal(object)  # every non-probe event, in order
    probe = Signal(object)  # the newest ProbeReport of a tick (per probe image)
    log = Signal(str)
    stateChanged = Signal(str)  # idle | starting | running | stopping
    finished = Signal(object)  # a Finished event (read from the log, or made when the writer vanished)
    idle = Signal()  # no run being written any more (the follower still watches the folder)
    runStarted = Signal(object)  # LogStarted: a (new or resumed) training session begins in the log
    configRead = Signal(object)  # an external run's own RunConfig (its config.json), once per session

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.run_dir: Path | None = None
        self.reader: EventLogReader | None = None
        self.process: QProcess | None = None
        self.last_finished: Finished | None = None
        self.state = "idle"
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.poll)
        self._output: deque[str] = deque(maxlen=40)  # the process's last lines, for a failure message
        self._stop_requested = False
        self._quiet_ticks = 0
        self._escalation = 0
        self._kill_timer = QTimer(self)
        self._kill_timer.setSingleShot(True)
        self._kill_timer.timeout.connect(self._escalate)
        self._config_file: Path | None = None
        self._config_seen = False

    # -- asking -----------------------------------------------------------------------------------
    @property
    def following(self) -> bool:
        return self.reader is not None

    def is_running(self) -> bool:
        """A run is being written (or its process is alive): Train must wait."""
        return self.state != "idle" or self.process is not None

    # -- starting ---------------------------------------------------------------------------------
    def follow(self, run_dir: str | os.PathLike[str]) -> None:
        """Follows ``run_dir`` from the start of its log (it may not exist yet)."""
        self.unfollow()
        self.run_dir = Path(os.path.abspath(run_dir))
        self.reader = EventLogReader(self.run_dir, newest_probes_only=True)
        self.last_finished = None
        self._stop_requested = False
        self._quiet_ticks = 0
        self._config_seen = False
        self._set_state("starting")
        self._timer.start(POLL_MS)
        self.started.emit(str(self.run_dir))
        self.poll()

    def launch(
        self, argv: list[str], run_dir: str | os.PathLike[str], config_file: str | os.PathLike[str] | None = None
    ) -> None:
        """Starts ``argv`` (a training writing ``run_dir``) as a separate process and follows it.
        ``config_file``: a temporary file of the command, removed when the process ends."""
        if self.process is not None:
            raise RuntimeError("a training process is already running")
        self.follow(run_dir)
        self._config_file = Path(config_file) if config_file is not None else None
        p = QProcess(self)
        p.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        p.readyReadStandardOutput.connect(self._on_output)
        p.finished.connect(self._on_process_finished)
        p.errorOccurred.connect(self._on_process_error)
        self.process = p
        self._output.clear()
        if sys.platform == "win32":  # pragma: no cover - no sessions there
            p.start(argv[0], argv[1:])
        else:  # a session (and process group) of its own: Stop reaches torchrun's workers too
            p.start(sys.executable, ["-c", _SETSID, *argv])
        self.log.emit("started: " + " ".join(argv))

    # -- stopping ---------------------------------------------------------------------------------
    def stop(self) -> None:
        """A launched process: ask it to stop (the run stays resumable). An external run: stop
        following it (it goes on)."""
        if self.process is not None:
            if self._stop_requested:
                return
            self._stop_requested = True
            self._set_state("stopping")
            self._signal_group(signal.SIGINT)
            self._escalation = 0
            self._kill_timer.start(_STOP_ESCALATE_MS[0])
        elif self.following:
            self.log.emit(f"stopped following {self.run_dir}")
            self.unfollow()

    def _signal_group(self, sig: int) -> None:
        p = self.process
        if p is None or p.state() == QProcess.ProcessState.NotRunning:
            return
        pid = int(p.processId())
        if sys.platform == "win32":  # pragma: no cover
            p.kill() if sig == getattr(signal, "SIGKILL", -1) else p.terminate()
            return
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    @Slot()
    def _escalate(self) -> None:
        if self.process is None:
            return
        if self._escalation == 0:
            self.log.emit("the training process did not stop; terminating it")
            self._signal_group(signal.SIGTERM)
            self._escalation = 1
            self._kill_timer.start(_STOP_ESCALATE_MS[1])
        else:
            self.log.emit("the training process did not end; killing it")
            self._signal_group(getattr(signal, "SIGKILL", signal.SIGTERM))

    def unfollow(self) -> None:
        """Stops reading (a launched process keeps running until it ends or is stopped)."""
        self._timer.stop()
        if self.reader is not None:
            self.reader.close()
            self.reader = None
        if self.process is None:
            self._set_state("idle")

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Stops a launched process and waits for it (blocking; for quitting); stops following."""
        p = self.process
        ok = True
        if p is not None:
            self._stop_requested = True
            self._signal_group(signal.SIGINT)
            ok = p.waitForFinished(max(0, timeout_ms - 5000))
            if not ok:
                self._signal_group(getattr(signal, "SIGKILL", signal.SIGTERM))
                ok = p.waitForFinished(5000)
        self._timer.stop()
        if self.reader is not None:
            self.reader.close()
            self.reader = None
        return ok

    # -- reading ----------------------------------------------------------------------------------
    @Slot()
    def poll(self) -> int:
        """Reads what the log gained since the last tick and delivers it; returns how many events."""
        reader = self.reader
        if reader is None:
            return 0
        events = reader.poll(_READ_BYTES)
        probes: dict[str, ProbeReport] = {}
        for ev in events:
            if isinstance(ev, ProbeReport):
                probes[ev.path] = ev
            else:
                self._deliver(ev)
        for p in sorted(probes.values(), key=lambda p: p.global_step):
            self.probe.emit(p)
        if events:
            self._quiet_ticks = 0
            if len(events) > 100:  # catching up with a long log: the next part at the next turn
                QTimer.singleShot(0, self, self.poll)
            return len(events)
        self._quiet_ticks += 1
        # an external writer that vanished without a Finished (killed, its machine gone)
        if (
            self.process is None
            and self.last_finished is None
            and self.state in ("starting", "running", "stopping")
            and self._quiet_ticks >= 4
            and reader.seen_events
            and not reader.writer_alive()
        ):
            self._deliver(
                Finished(
                    status="failed",
                    message=f"the training writing {self.run_dir} ended without finishing "
                    "(its process is gone); the run can be resumed from its last epoch",
                    metrics={},
                    run_dir=str(self.run_dir) if self.run_dir is not None and self.run_dir.is_dir() else None,
                )
            )
        return 0

    def run_config(self) -> RunConfig | None:
        """The followed run's own settings (its ``config.json``, written when its training starts, in
        the folder its log is in), or None while there is none (not written yet, unreadable)."""
        if self.run_dir is None:
            return None
        log = self.reader.path if self.reader is not None else None
        for folder in ([log.parent] if log is not None else []) + [self.run_dir]:
            try:
                d = read_config(folder)
                return RunConfig.from_dict({k: d[k] for k in ("arch", "params", "data", "train") if k in d})
            except (RunFolderError, ConfigError):
                continue
        return None

    def _check_config(self) -> None:
        if self.process is not None:  # a launched run trains the project's own settings
            return
        if not self._config_seen and (cfg := self.run_config()) is not None:
            self._config_seen = True
            self.configRead.emit(cfg)

    def _deliver(self, ev: object) -> None:
        if isinstance(ev, LogStarted):
            self._config_seen = False  # a resumed or replaced run may have other settings
            self.last_finished = None
            self._timer.setInterval(POLL_MS)
            if self.state == "idle":
                self._set_state("starting")
            self.runStarted.emit(ev)
            return
        if isinstance(ev, Finished):
            self.last_finished = ev
            self.event.emit(ev)
            self.finished.emit(ev)
            self._timer.setInterval(IDLE_POLL_MS)
            self._set_state("idle" if self.process is None else "stopping")
            return
        if (self.state == "starting" and isinstance(ev, ModelReady | StepReport)) or self.state == "idle":
            self._set_state("running")
        if isinstance(ev, ModelReady | EpochReport):  # config.json is written before the model is built
            self._check_config()
        self.event.emit(ev)

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.stateChanged.emit(state)
            if state == "idle":
                self.idle.emit()

    # -- the process ------------------------------------------------------------------------------
    @Slot()
    def _on_output(self) -> None:
        p = self.process
        if p is None:
            return
        text = bytes(p.readAllStandardOutput().data()).decode("utf-8", "replace")
        for line in text.replace("\r", "\n").splitlines():
            if line.strip():
                self._output.append(line)
                self.log.emit(line)

    @Slot(QProcess.ProcessError)
    def _on_process_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self.log.emit(f"cannot start the training process: {self.process.errorString() if self.process else ''}")
            self._on_process_finished(-1, QProcess.ExitStatus.CrashExit)

    @Slot(int, QProcess.ExitStatus)
    def _on_process_finished(self, code: int, _status: QProcess.ExitStatus) -> None:
        p = self.process
        if p is None:
            return
        self._on_output()
        self._kill_timer.stop()
        self.process = None
        p.deleteLater()
        if self._config_file is not None:
            self._config_file.unlink(missing_ok=True)
            self._config_file = None
        while self.poll():  # the log's last lines (the Finished)
            pass
        if self.last_finished is None:
            stopped = self._stop_requested
            tail = " ".join(list(self._output)[-3:])
            self._deliver(
                Finished(
                    status="stopped" if stopped else "failed",
                    message=("the training process was stopped" if stopped else f"the training process ended ({code})")
                    + (f": {tail}" if tail and not stopped else ""),
                    metrics={},
                    run_dir=str(self.run_dir) if self.run_dir is not None and self.run_dir.is_dir() else None,
                )
            )
        self._set_state("idle")
