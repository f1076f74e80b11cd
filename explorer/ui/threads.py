"""Every thread the UI starts is registered here, so tests can prove none is left running; and the
CPU settings of the UI's threads: one PyTorch thread for the window's (:func:`one_torch_thread`),
PyTorch's default, a nicer priority and a short GIL switch interval for training's."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import weakref
from collections.abc import Callable, Iterator

from PySide6.QtCore import QThread, QThreadPool

__all__ = [
    "new_thread",
    "new_pool",
    "running_threads",
    "busy_pools",
    "stop_all",
    "default_threads",
    "one_torch_thread",
    "one_thread_for_the_gui",
    "gui_friendly_threads",
    "cpu_threads",
    "lower_thread_priority",
    "SwitchInterval",
    "TRAINING_NICE",
    "TRAINING_SWITCH_INTERVAL",
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


def cpu_threads(n: int | None) -> int:
    """Sets PyTorch's CPU thread count (None: unchanged); returns the previous count."""
    import torch

    before = torch.get_num_threads()
    if n is not None and n != before:
        torch.set_num_threads(n)
    return before


def gui_friendly_threads() -> int:
    """CPU threads for training in the app: as many as the CLI trains with (PyTorch's default,
    one per core). Leaving a core to the window (the former choice, 1 thread on 2 cores) gives
    up most of a core the window rarely uses: it paints a probe a second and wakes for input,
    and the short GIL switch interval below keeps it responsive while training runs Python
    (``docs/inspector_bench.md``, "Throughput")."""
    return default_threads()


@contextlib.contextmanager
def one_thread_for_the_gui() -> Iterator[None]:
    """While open, the calling thread (the GUI's) has one PyTorch CPU thread (:func:`one_torch_thread`);
    on closing, its count of before again."""
    import torch

    before = one_torch_thread()
    try:
        yield
    finally:
        torch.set_num_threads(before)


#: The GIL switch interval while the app trains (Python's default is 5 ms): when the window
#: wants the GIL while the training thread runs Python between two PyTorch calls, it waits at
#: most this long, so input and paints are not held up by a stream of 5 ms waits.
TRAINING_SWITCH_INTERVAL = 0.001


#: How much nicer than the window the training threads are (Linux): the window's thread then gets
#: a core at once when it wakes to paint or take input, instead of queueing behind PyTorch's busy
#: threads, and the paint's short burst is all training gives up. Measured in the app on the 2-core
#: CPU (crnn, the inspector open): stall p99 30-39 ms at 0, 22-25 ms at 5-8, same samples/s
#: (docs/inspector_bench.md, seventh round). 0 leaves them as they are.
TRAINING_NICE = 5


def lower_thread_priority(nice: int) -> None:
    """Makes the calling thread (and the threads it starts from now on, PyTorch's OpenMP pool among
    them) ``nice`` steps nicer. Linux only, where a thread has its own nice value; elsewhere (and
    when refused) nothing changes."""
    if nice <= 0 or not sys.platform.startswith("linux"):
        return
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except OSError:
        pass


class SwitchInterval:
    """Sets the process's GIL switch interval while training runs (None: unchanged)."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds, self.before = seconds, sys.getswitchinterval()

    def __enter__(self) -> None:
        self.before = sys.getswitchinterval()
        if self.seconds is not None:
            sys.setswitchinterval(self.seconds)

    def __exit__(self, *exc: object) -> None:
        if self.seconds is not None:
            sys.setswitchinterval(self.before)
