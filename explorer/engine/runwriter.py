"""The trainer's side of a run folder: the lock, the staging folder, saves that fail cleanly.

A :class:`RunWriter` is entered for the life of one training (see :mod:`.ownership`):
a new run is written in a staging folder published after its first complete epoch save;
a resumed run is written in place. :meth:`save_epoch` turns an ``OSError`` (a full disk,
a folder made read-only) into :class:`SaveFailed`, after which nothing more is written,
so the folder keeps config, weights, checkpoint and history of the last saved epoch.
:meth:`log` appends each event the trainer yields to the run's event log (:mod:`.eventlog`),
in the folder the run is in (the staging folder first, so a follower sees the first steps).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from . import checkpoint
from .eventlog import EventLog
from .ownership import Destination, RunLock, describe_holder, recover

if TYPE_CHECKING:
    from .session import Session

__all__ = ["RunWriter", "SaveFailed", "describe_os_error"]


def describe_os_error(e: OSError) -> str:
    where = f" ({e.filename})" if e.filename else ""
    return f"{e.strerror or e}{where}"


class SaveFailed(Exception):
    """A save of the run folder failed; nothing more is written."""

    def __init__(self, epoch: int, error: OSError) -> None:
        super().__init__(f"cannot save epoch {epoch}: {describe_os_error(error)}")
        self.epoch, self.error = epoch, error


class RunWriter:
    """Owns the writing of one run folder (``dest``; None = nothing is written)."""

    def __init__(self, dest: Path | None, *, resume: bool, overwrite: bool) -> None:
        self.dest = dest
        self.resume = resume
        self.lock = RunLock(dest) if dest is not None else None
        self.destination = Destination(dest, overwrite) if dest is not None and not resume else None
        self.broken = False  # a save failed: write nothing more
        self.saves = 0  # epoch saves completed by this training
        self.notes: list[str] = []
        self.events: EventLog | None = None  # the event log, opened at the first event
        self._log_failed = False

    def __enter__(self) -> RunWriter:
        if self.lock is None:
            return self
        self.lock.acquire()
        try:
            if self.lock.stale:
                self.notes.append(
                    f"took over the lock of {describe_holder(self.lock.stale)}, which is no longer running"
                )
            if self.destination is not None:
                self.destination.begin()
            else:
                recover(self.lock.run_dir)
        except BaseException:
            self.lock.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.events is not None:
                self.events.close()
            if self.destination is not None:
                self.destination.discard()
        finally:
            if self.lock is not None:
                self.lock.release()

    # -- where to write ----------------------------------------------------------------------
    @property
    def write_dir(self) -> Path | None:
        """Where the run's files go now: the staging folder until published, then the run."""
        d = self.destination
        if d is not None and not d.published:
            return d.staging
        return self.dest

    @property
    def has_run(self) -> bool:
        """True once the destination holds this run (published, or resumed in place)."""
        return self.dest is not None and (self.destination is None or self.destination.published)

    @property
    def can_write(self) -> bool:
        return self.write_dir is not None and not self.broken

    # -- saves --------------------------------------------------------------------------------
    def save_epoch(self, s: Session, epoch: int) -> None:
        """Weights, checkpoint and history of ``epoch`` as one save; publishes a new run after
        its first. Raises :class:`SaveFailed` (the folder keeps the previous save)."""
        if not self.can_write:
            return
        try:
            checkpoint.save_epoch(s)
            self.saves += 1
            if self.destination is not None and not self.destination.published:
                self.destination.publish()
                s.out_dir = self.dest
        except OSError as e:
            self.broken = True
            raise SaveFailed(epoch, e) from None

    def log(self, event: object) -> None:
        """Appends ``event`` to the run's event log; a failure stops the log (and becomes a note)."""
        folder = self.write_dir
        if folder is None or self._log_failed:
            return
        try:
            if self.events is None:
                self.events = EventLog(folder, resumed=self.resume)
            self.events.append(event, folder)  # type: ignore[arg-type]
        except OSError as e:
            self._log_failed = True
            self.notes.append(f"could not write the event log: {describe_os_error(e)}")

    def write(self, what: str, action: object) -> None:
        """Runs a late write (weights and metrics at the end); a failure becomes a note."""
        if not self.can_write:
            return
        try:
            action()  # type: ignore[operator]
        except OSError as e:
            self.broken = True
            self.notes.append(f"could not write {what}: {describe_os_error(e)}")

    def where(self, last_epoch: int) -> str:
        """What the destination holds, for a failure message."""
        if self.dest is None:
            return ""
        if not self.has_run:
            return f"Nothing was written to {self.dest}."
        return f"{self.dest} keeps epoch {last_epoch} (config, weights, checkpoint and history)."
