"""Every thread the UI starts is registered here, so tests can prove none is left running; and the
PyTorch CPU threads of the window's threads (:func:`one_torch_thread`)."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable

from PySide6.QtCore import QThread, QThreadPool

__all__ = [
    "new_thread",
    "new_pool",
    "running_threads",
    "busy_pools",
    "stop_all",
    "default_threads",
    "one_torch_thread",
]

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


def default_threads() -> int:
    """PyTorch's CPU thread count as the process started (read once, before any run changed it)."""
    import torch

    global _DEFAULT_THREADS
    if _DEFAULT_THREADS is None:
        _DEFAULT_THREADS = torch.get_num_threads()
    return _DEFAULT_THREADS


_DEFAULT_THREADS: int | None = None


def one_torch_thread() -> int:
    """Gives the calling thread one PyTorch CPU thread for as long as it lives, and leaves PyTorch's
    default to the threads started later (training's worker among them). For the window's threads
    that run a little PyTorch (the GUI thread, the dry runs' pool); returns the thread's count before.

    Why: the first PyTorch op a thread runs gives it an OpenMP team of the default size, kept for the
    thread's life. With more OpenMP threads in the process than cores, libgomp stops spinning between
    parallel regions, and training's team then sleeps and is woken at every one: a single conv on
    the GUI thread before a run made the app's crnn train at 228-234 samples/s against 319-323
    without it (2 cores; ``docs/inspector_bench.md``, tenth round). A dry run's pool thread, kept 2 s
    after its job, did the same for the first seconds of every run started after a change of model.

    PyTorch keeps the CPU thread count per thread once a thread has read it (its OpenMP and MKL
    settings) and a process-wide default for threads that have not; ``torch.set_num_threads`` sets
    both, so the default is put back from a short-lived thread."""
    import torch

    before = torch.get_num_threads()  # this thread reads its count now, so that it keeps the one set next
    if before == 1:
        return before
    n = default_threads()
    torch.set_num_threads(1)
    restore = threading.Thread(target=torch.set_num_threads, args=(n,), name="torch-default-threads")
    restore.start()
    restore.join()
    return before
