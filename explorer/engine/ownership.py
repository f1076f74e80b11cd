"""Who may write a run folder, and how a new run becomes visible: complete or not at all.

**The lock.** A training (new or resumed) holds ``.NAME.lock`` beside the run folder ``NAME``
for its whole life: an OS lock (``fcntl.flock`` on Linux/macOS, ``msvcrt.locking`` on
Windows) on that file, which also holds the holder's pid, host and start time. A second
writer fails at once with a message naming the holder. The OS drops the lock when its
process dies, so a lock file left by a killed process is stale and simply taken over; on a
file system without OS locks, a recorded holder that is a dead process on this host is
taken over too.

**The destination.** A new run refuses an existing run folder (resume it or replace it
with ``overwrite``), a non-empty folder that is not a run, and a file. It is written in a
fresh folder ``.NAME.new-XXXX`` beside the destination and renamed into place after its
first complete save (:meth:`Destination.publish`); a run replaced with ``overwrite`` is
first moved aside to ``.NAME.old-XXXX`` and deleted once the new one is in place. So at
every moment of a kill the destination is absent, the old run untouched, or a complete new
run: new labels never meet old weights. Leftovers of a killed writer are cleaned up by the
next writer (under the lock); an old run moved aside whose replacement never arrived is
moved back.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .runfolder import CHECKPOINT, CONFIG, WEIGHTS, RunFolderError

__all__ = ["RunLock", "Destination", "is_run_folder", "lock_path", "recover", "recover_now", "staging_folders"]

_RUN_FILES = (CONFIG, WEIGHTS, CHECKPOINT)


def lock_path(run_dir: Path) -> Path:
    return run_dir.parent / f".{run_dir.name}.lock"


def staging_folders(dest: Path) -> list[Path]:
    """The staging folders of new runs for ``dest`` (a training's, or a killed one's leftovers)."""
    parent = dest.parent
    return sorted(parent.glob(f".{dest.name}.new-*")) if parent.is_dir() else []


def is_run_folder(path: Path) -> bool:
    """A folder holding any of a run's own files (a damaged run still counts)."""
    return path.is_dir() and any((path / name).exists() for name in _RUN_FILES)


def _os_lock(fd: int) -> None:
    """Take the OS lock without waiting; BlockingIOError/PermissionError when held."""
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def describe_holder(info: dict[str, Any]) -> str:
    if not info:
        return "another process"
    when = info.get("started")
    since = (
        f" since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(when))}" if isinstance(when, int | float) else ""
    )
    return f"process {info.get('pid', '?')} on {info.get('host', '?')}{since}"


class RunLock:
    """The write lock of one run folder (see the module docstring)."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(os.path.abspath(run_dir))  # "." and "runs/x/" name their folder
        self.path = lock_path(self.run_dir)
        self._fd: int | None = None
        self.stale: dict[str, Any] | None = None  # the dead holder this lock took over, if any

    def _read_info(self, fd: int | None = None) -> dict[str, Any]:
        try:
            if fd is not None:
                os.lseek(fd, 0, os.SEEK_SET)
                raw = os.read(fd, 4096)
            else:
                with open(self.path, "rb") as f:
                    raw = f.read(4096)
            info = json.loads(raw.decode("utf-8", "replace").strip() or "{}")
        except (OSError, ValueError):
            return {}
        return info if isinstance(info, dict) else {}

    def acquire(self) -> RunLock:
        """Raises RunFolderError naming the holder when another writer holds the lock."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(20):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                self._lock_or_refuse(fd)
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:  # the holder released (and removed) it meanwhile
                same = False
            except BaseException:
                os.close(fd)
                raise
            if same:
                self._fd = fd
                self._write_info(fd)
                return self
            os.close(fd)
        raise RunFolderError(f"{self.path}: cannot take the run's lock (it keeps changing)")

    def _lock_or_refuse(self, fd: int) -> None:
        try:
            _os_lock(fd)
        except (BlockingIOError, PermissionError):
            holder = describe_holder(self._read_info(fd))
            raise RunFolderError(
                f"{self.run_dir}: being written by {holder} (lock {self.path}); "
                "wait for that training to end or stop it"
            ) from None
        except OSError as e:  # no OS locks on this file system: trust a live recorded holder
            if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                raise
            info = self._read_info(fd)
            pid = info.get("pid")
            if info.get("host") == socket.gethostname() and isinstance(pid, int) and _pid_alive(pid):
                raise RunFolderError(
                    f"{self.run_dir}: being written by {describe_holder(info)} (lock {self.path})"
                ) from None
        info = self._read_info(fd)
        self.stale = info or None

    def _write_info(self, fd: int) -> None:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(), "run": str(self.run_dir)}
        data = json.dumps(info).encode()
        # msvcrt locks byte 0 against other readers; keep the text after it readable
        prefix = b"\n" if sys.platform == "win32" else b""
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, prefix + data + b"\n")

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if sys.platform != "win32":  # (Windows cannot remove an open file; it stays, unlocked)
                self.path.unlink(missing_ok=True)
        finally:
            os.close(fd)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _fsync_dir(path: Path) -> None:
    if sys.platform == "win32":  # pragma: no cover
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class Destination:
    """Where a new run goes: checks the destination, stages the run beside it, publishes it.

    Use under the destination's :class:`RunLock`.
    """

    def __init__(self, dest: str | os.PathLike[str], overwrite: bool = False) -> None:
        self.dest = Path(os.path.abspath(dest))
        self.overwrite = overwrite
        self.staging: Path | None = None
        self.published = False

    def check(self) -> None:
        """Refuses a destination a new run must not write (see the module docstring)."""
        d = self.dest
        if d.exists() and not d.is_dir():
            raise RunFolderError(f"{d}: is a file, not a folder; give a new folder for the run")
        if is_run_folder(d):
            if not self.overwrite:
                raise RunFolderError(
                    f"{d}: already holds a run; continue it with --resume {d}, or replace it with --overwrite"
                )
        elif d.is_dir() and any(d.iterdir()):
            raise RunFolderError(
                f"{d}: not empty and not a Model Explorer run folder; give a new or empty folder "
                "(nothing there was touched)"
            )

    def begin(self) -> Path:
        """Clean up a killed writer's leftovers, check the destination, make the staging folder."""
        recover(self.dest)
        self.check()
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        while True:  # not mkdtemp: the run folder gets the user's usual permissions (umask)
            staging = self.dest.parent / f".{self.dest.name}.new-{secrets.token_hex(4)}"
            try:
                staging.mkdir()
                break
            except FileExistsError:
                continue
        self.staging = staging
        return staging

    def publish(self) -> None:
        """Moves the staged run (with its first complete save) into place."""
        assert self.staging is not None and not self.published
        d = self.dest
        aside: Path | None = None
        if d.is_dir() and not any(d.iterdir()):
            d.rmdir()
        elif d.exists():
            aside = Path(tempfile.mkdtemp(prefix=f".{d.name}.old-", dir=d.parent))
            os.replace(d, aside / "run")  # the old run, intact, until the new one is in place
        os.replace(self.staging, d)
        self.published = True
        _fsync_dir(d.parent)
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)

    def discard(self) -> None:
        """Removes the staging folder of a run that never completed a save."""
        if self.staging is not None and not self.published:
            shutil.rmtree(self.staging, ignore_errors=True)


def recover(dest: Path) -> None:
    """Under ``dest``'s lock: undo what a writer killed mid-publish or mid-run left beside it."""
    parent = dest.parent
    if not parent.is_dir():
        return
    for old in sorted(parent.glob(f".{dest.name}.old-*")):
        inner = old / "run"
        if inner.is_dir() and not dest.exists():
            os.replace(inner, dest)  # the replacement never arrived: the old run comes back
        shutil.rmtree(old, ignore_errors=True)
    for new in parent.glob(f".{dest.name}.new-*"):
        shutil.rmtree(new, ignore_errors=True)


def recover_now(dest: str | os.PathLike[str]) -> None:
    """:func:`recover` under the lock, for a reader about to use ``dest`` (raises RunFolderError
    naming the holder when a training is writing it)."""
    with RunLock(dest) as lock:
        recover(lock.run_dir)
