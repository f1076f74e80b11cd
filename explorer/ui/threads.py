"""Every thread the UI starts is registered here, so tests can prove none is left running."""

from __future__ import annotations

import weakref
from collections.abc import Callable

from PySide6.QtCore import QThread, QThreadPool

__all__ = ["new_thread", "new_pool", "running_threads", "busy_pools", "stop_all"]

_threads: weakref.WeakSet[QThread] = weakref.WeakSet()
_pools: weakref.WeakSet[QThreadPool] = weakref.WeakSet()
_stoppers: weakref.WeakKeyDictionary[QThread, Callable[[], None]] = weakref.WeakKeyDictionary()


def new_thread(name: str, parent=None, stop: Callable[[], None] | None = None) -> QThread:  # noqa: ANN001
    """A registered QThread; ``stop`` asks its work to end (used by :func:`stop_all`)."""
    t = QThread(parent)
    t.setObjectName(name)
    _threads.add(t)
    if stop is not None:
        _stoppers[t] = stop
    return t


def stop_all(timeout_ms: int = 10000) -> None:
    """Last resort (tests): asks every registered thread to stop, quits and waits for it."""
    for t in list(_threads):
        try:
            if t.isRunning():
                stop = _stoppers.get(t)
                if stop is not None:
                    stop()
                t.quit()
                t.wait(timeout_ms)
        except RuntimeError:
            pass


def new_pool(name: str, max_threads: int = 1, parent=None) -> QThreadPool:  # noqa: ANN001
    pool = QThreadPool(parent)
    pool.setObjectName(name)
    pool.setMaxThreadCount(max_threads)
    pool.setExpiryTimeout(2000)
    _pools.add(pool)
    return pool


def running_threads() -> list[str]:
    """Names of registered QThreads that still run."""
    out = []
    for t in list(_threads):
        try:
            if t.isRunning():
                out.append(t.objectName())
        except RuntimeError:  # the C++ object is gone: not running
            pass
    return out


def busy_pools() -> list[str]:
    out = []
    for p in list(_pools):
        try:
            if p.activeThreadCount() > 0:
                out.append(p.objectName())
        except RuntimeError:
            pass
    return out
