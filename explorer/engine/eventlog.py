"""The run's event log: what the trainer reported, for a process that did not start the run.

**Format.** ``RUN_DIR/events.jsonl`` (:data:`~explorer.engine.runfolder.EVENTS`) holds one JSON
object per line, appended and flushed as the trainer yields its events
(:mod:`explorer.engine.events`): ``{"type": "StepReport", "time": ..., <the event's fields>}``.
The first line of every training session is a header (``"type": "LogStarted"``: a fresh
``run_id``, the writer's pid and host, its start time, whether it resumed the run). A line is
written with one ``write`` call and ends with a newline; a reader uses only complete lines and
ignores a line that does not parse, so a torn last line (a writer killed mid-write, a reader
faster than the file system) is simply read once it is complete, or never.

The arrays of a :class:`~explorer.engine.events.ProbeReport` do not go into the log: they are
written (atomically) to ``probes/live_<global step>_<n>.npz``, which the line names; only the
newest :data:`LIVE_PROBES_KEPT` files are kept, so the disk a run uses does not grow with its
length (the per-epoch snapshots of :mod:`.replay` are the run's lasting record). A reader that
falls behind skips the probes whose files are gone.

**Where the log is, from the first step.** Only the process that writes the run writes its log
(through its :class:`~explorer.engine.runwriter.RunWriter`): a new run is written in a staging
folder beside the destination (``.NAME.new-XXXX``, see :mod:`.ownership`) until its first epoch
save moves the folder into place, and the log is in that folder from the start, so it moves with
the run (the writer's open file stays valid across the rename). A resumed run appends to the log
in place. A reader (:class:`EventLogReader`, :func:`follow`) given ``RUN_DIR`` therefore looks at
``RUN_DIR/events.jsonl`` and at the staging folders beside ``RUN_DIR`` and follows the log whose
header is newest; it keeps its file open, so a publish (rename) is seamless, and it notices a
newer log (a run started with ``--overwrite``) or a rewritten file and starts again from that
log's header. The folder may appear after the reader starts.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import secrets
import socket
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_write
from .candidates import join_candidates, split_candidates
from .events import DataReady, EpochReport, Event, Finished, ModelReady, ProbeReport, Status, StepReport
from .ownership import lock_path, staging_folders
from .runfolder import EVENTS, PROBES

__all__ = [
    "LIVE_PROBES_KEPT",
    "LogStarted",
    "EventLog",
    "EventLogReader",
    "follow",
    "event_to_record",
    "record_to_event",
]

LIVE_PROBES_KEPT = 8  # live probe files kept beside the log (older ones are deleted)
_LIVE_PREFIX = "live_"
_MAX_READ = 8 << 20  # bytes read per poll at most (a long log is read over several polls)


@dataclasses.dataclass(frozen=True)
class LogStarted:
    """The header of one training session in the log (not a trainer event)."""

    run_id: str
    pid: int
    host: str
    started: float
    resumed: bool


_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (LogStarted, Status, DataReady, ModelReady, StepReport, EpochReport, ProbeReport, Finished)
}
_PROBE_ARRAYS = ("image", "probabilities")
_FIELDS = {name: frozenset(f.name for f in dataclasses.fields(cls)) for name, cls in _TYPES.items()}


# -- one event <-> one line -----------------------------------------------------------------------
def event_to_record(ev: Event | LogStarted, probe_file: str | None = None) -> dict[str, Any]:
    """The JSON object of one event; a probe's arrays stay out (``probe_file`` names where they are)."""
    rec: dict[str, Any] = {"type": type(ev).__name__, "time": time.time()}
    for f in dataclasses.fields(ev):  # type: ignore[arg-type]
        if isinstance(ev, ProbeReport) and (f.name in _PROBE_ARRAYS or f.name == "intermediates"):
            continue
        value = getattr(ev, f.name)
        if isinstance(ev, ProbeReport) and f.name == "candidates" and value is not None:
            value = split_candidates(value)[0]  # their arrays go to the probe file
        rec[f.name] = list(value) if isinstance(value, tuple) else value
    if isinstance(ev, ProbeReport):
        rec["file"] = probe_file
        rec["names"] = list(ev.intermediates)
    return rec


def record_to_event(
    rec: dict[str, Any], load_arrays: Callable[[str], dict[str, np.ndarray] | None] | None = None
) -> Event | LogStarted | None:
    """The event of one log line; None for an unknown type, a malformed record, or a probe whose
    arrays cannot be loaded (``load_arrays(file)`` -> the npz's arrays, or None)."""
    cls = _TYPES.get(rec.get("type")) if isinstance(rec, dict) else None
    if cls is None:
        return None
    names = _FIELDS[cls.__name__]
    kwargs = {k: v for k, v in rec.items() if k in names}
    try:
        if cls is DataReady:
            kwargs["input_shape"] = tuple(kwargs["input_shape"])
        if cls is ProbeReport:
            arrays = load_arrays(rec["file"]) if load_arrays is not None and rec.get("file") else None
            if arrays is None:
                return None
            kwargs["image"] = arrays["image"]
            kwargs["probabilities"] = arrays["probabilities"]
            kwargs["intermediates"] = {n: arrays[f"x.{n}"] for n in rec.get("names", [])}
            if kwargs.get("candidates") is not None:  # their arrays are in the npz as c.<i>.<key>
                kwargs["candidates"] = join_candidates(kwargs["candidates"], arrays)
        return cls(**kwargs)
    except (KeyError, TypeError, ValueError):
        return None


def _probe_arrays(ev: ProbeReport) -> dict[str, np.ndarray]:
    arrays = {"image": np.ascontiguousarray(ev.image), "probabilities": np.asarray(ev.probabilities)}
    arrays.update({f"x.{n}": np.asarray(a) for n, a in ev.intermediates.items()})
    arrays.update(split_candidates(ev.candidates or [])[1])  # e.g. a beam candidate's attention
    return arrays


def _load_npz(path: Path) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, KeyError):
        return None


# -- the writer -------------------------------------------------------------------------------------
class EventLog:
    """Appends events to ``folder/events.jsonl`` (the run's writer only; see the module docstring).

    ``append(ev, folder)`` takes the folder the run is in now: a new run's staging folder moves
    into place after its first save, and the live probe files go where the log is.
    """

    def __init__(self, folder: str | os.PathLike[str], *, resumed: bool) -> None:
        folder = Path(folder)
        path = folder / EVENTS
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._probes: deque[str] = deque()
        self._seq = 0
        try:
            size = os.fstat(self._fd).st_size
            if size:  # a resumed run: end a line torn by a killed writer, drop its live probes
                with open(path, "rb") as f:
                    f.seek(size - 1)
                    if f.read(1) != b"\n":
                        os.write(self._fd, b"\n")
                for old in (folder / PROBES).glob(f"{_LIVE_PREFIX}*.npz"):
                    old.unlink(missing_ok=True)
            header = LogStarted(
                run_id=secrets.token_hex(8),
                pid=os.getpid(),
                host=socket.gethostname(),
                started=time.time(),
                resumed=resumed,
            )
            self._write(event_to_record(header))
        except BaseException:
            self.close()
            raise

    def _write(self, rec: dict[str, Any]) -> None:
        line = json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n"
        assert self._fd is not None
        os.write(self._fd, line.encode("utf-8"))  # one write: a line is whole or torn at the end

    def append(self, ev: Event, folder: str | os.PathLike[str]) -> None:
        if self._fd is None:
            return
        probe_file = None
        if isinstance(ev, ProbeReport):
            probe_file = self._write_probe(ev, Path(folder))
        self._write(event_to_record(ev, probe_file))

    def _write_probe(self, ev: ProbeReport, folder: Path) -> str:
        self._seq += 1
        name = f"{PROBES}/{_LIVE_PREFIX}{ev.global_step:09d}_{self._seq:04d}.npz"
        arrays = _probe_arrays(ev)

        def save(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)

        atomic_write(folder / name, save)
        self._probes.append(name)
        while len(self._probes) > LIVE_PROBES_KEPT:
            (folder / self._probes.popleft()).unlink(missing_ok=True)
        return name

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


# -- the reader -------------------------------------------------------------------------------------
def _header(path: Path) -> dict[str, Any] | None:
    """The header record of the log at ``path`` (None while it has none)."""
    try:
        with open(path, "rb") as f:
            line = f.readline(1 << 16)
    except OSError:
        return None
    if not line.endswith(b"\n"):
        return None
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    return rec if isinstance(rec, dict) and rec.get("type") == LogStarted.__name__ else None


class EventLogReader:
    """Reads the event log of ``run_dir`` incrementally (see the module docstring).

    :meth:`poll` never waits: it returns the events appended since the last call (possibly none).
    With ``newest_probes_only``, of the probes one poll finds only the newest per probe image is
    loaded (what a live view shows), so catching up with a long log stays cheap.
    """

    def __init__(self, run_dir: str | os.PathLike[str], *, newest_probes_only: bool = False) -> None:
        self.run_dir = Path(os.path.abspath(run_dir))
        self.newest_probes_only = newest_probes_only
        self._file: io.BufferedReader | None = None
        self._path: Path | None = None
        self._ino: tuple[int, int] | None = None
        self._started = -1.0
        self._buf = b""
        self._headers: dict[tuple[int, int], float] = {}  # file identity -> its header's start time
        self.finished: Finished | None = None  # the last event read, when it is a Finished
        self.seen_events = False

    @property
    def path(self) -> Path | None:
        """The log being followed (its path when it was opened)."""
        return self._path

    # -- which log --------------------------------------------------------------------------------
    def _candidates(self) -> list[Path]:
        logs = [self.run_dir / EVENTS]
        logs += [d / EVENTS for d in staging_folders(self.run_dir)]
        return [p for p in logs if p.is_file()]

    def _newest_log(self) -> tuple[Path, tuple[int, int], float] | None:
        best = None
        for p in self._candidates():
            try:
                st = p.stat()
            except OSError:
                continue
            ident = (st.st_dev, st.st_ino)
            started = self._headers.get(ident)
            if started is None:
                h = _header(p)
                if h is None or not isinstance(h.get("started"), int | float):
                    continue
                started = self._headers[ident] = float(h["started"])
            if best is None or started > best[2]:
                best = (p, ident, started)
        return best

    def _open(self, path: Path, ident: tuple[int, int], started: float) -> None:
        self.close()
        try:
            self._file = open(path, "rb")  # noqa: SIM115 - kept open across polls (and renames)
        except OSError:
            return
        self._path, self._ino, self._started, self._buf = path, ident, started, b""
        self.finished = None

    def _switch_if_replaced(self) -> None:
        newest = self._newest_log()
        if newest is not None and newest[1] != self._ino and newest[2] > self._started:
            self._open(*newest)
            return
        if self._file is not None:  # the same file rewritten shorter: read it again
            try:
                size = os.fstat(self._file.fileno()).st_size
            except OSError:
                return
            if size < self._file.tell():
                self._file.seek(0)
                self._buf = b""

    # -- reading ----------------------------------------------------------------------------------
    def poll(self, max_bytes: int = _MAX_READ) -> list[Event | LogStarted]:
        """The events appended since the last poll (never blocks on the writer)."""
        if self._file is None:
            newest = self._newest_log()
            if newest is None:
                return []
            self._open(*newest)
            if self._file is None:
                return []
        chunk = self._file.read(max_bytes)
        if not chunk:
            self._switch_if_replaced()
            return []
        data = self._buf + chunk
        end = data.rfind(b"\n") + 1
        self._buf = data[end:]
        records = []
        for line in data[:end].splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a damaged line is ignored
            if isinstance(rec, dict):
                records.append(rec)
        return self._events(records)

    def _events(self, records: list[dict[str, Any]]) -> list[Event | LogStarted]:
        skip: set[int] = set()
        if self.newest_probes_only:
            newest: dict[Any, int] = {}
            for i, rec in enumerate(records):
                if rec.get("type") == ProbeReport.__name__:
                    if rec.get("path") in newest:
                        skip.add(newest[rec.get("path")])
                    newest[rec.get("path")] = i
        out: list[Event | LogStarted] = []
        for i, rec in enumerate(records):
            if i in skip:
                continue
            ev = record_to_event(rec, self._load_arrays)
            if ev is None:
                continue
            out.append(ev)
            self.seen_events = True
            self.finished = ev if isinstance(ev, Finished) else None
        return out

    def _load_arrays(self, name: str) -> dict[str, np.ndarray] | None:
        rel = Path(name)
        if rel.is_absolute() or ".." in rel.parts:
            return None
        folders = [self._path.parent] if self._path is not None else []
        folders.append(self.run_dir)  # a staging folder published meanwhile
        for folder in folders:
            arrays = _load_npz(folder / rel)
            if arrays is not None and all(k in arrays for k in _PROBE_ARRAYS):
                return arrays
        return None

    def writer_alive(self) -> bool:
        """Whether a training holds the run's lock (a holder on another host counts as alive)."""
        lock = lock_path(self.run_dir)
        try:
            info = json.loads(lock.read_text(encoding="utf-8", errors="replace").strip() or "{}")
        except FileNotFoundError:
            return False
        except (OSError, ValueError):
            return True
        if not isinstance(info, dict):
            return True
        pid = info.get("pid")
        if info.get("host") == socket.gethostname() and isinstance(pid, int):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return False
            except OSError:
                return True
        return True

    def close(self) -> None:
        f, self._file = self._file, None
        if f is not None:
            f.close()

    def __enter__(self) -> EventLogReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def follow(
    run_dir: str | os.PathLike[str],
    *,
    interval: float = 0.25,
    timeout: float | None = None,
    newest_probes_only: bool = False,
) -> Iterator[Event | LogStarted]:
    """Yields the events of ``run_dir``'s log as they are written, starting with those already
    there, until the run has finished and its writer is gone (or ``timeout`` seconds pass
    without a new event). The folder may not exist yet."""
    with EventLogReader(run_dir, newest_probes_only=newest_probes_only) as reader:
        quiet_since = time.monotonic()
        while True:
            events = reader.poll()
            yield from events
            if events:
                quiet_since = time.monotonic()
                continue
            if reader.finished is not None and not reader.writer_alive():
                return
            if timeout is not None and time.monotonic() - quiet_since > timeout:
                return
            time.sleep(interval)
