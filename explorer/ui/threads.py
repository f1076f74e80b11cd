"""Every thread the UI starts is registered here, so tests can prove none is left running."""

from __future__ import annotations

import weakref

from PySide6.QtCore import QThread, QThreadPool

__all__ = ["new_thread", "new_pool", "running_threads", "busy_pools"]

_threads: weakref.WeakSet[QThread] = weakref.WeakSet()
_pools: weakref.WeakSet[QThreadPool] = weakref.WeakSet()


def new_thread(name: str, parent=None) -> QThread:  # noqa: ANN001 - QObject | None
    t = QThread(parent)
    t.setObjectName(name)
    _threads.add(t)
    return t


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
