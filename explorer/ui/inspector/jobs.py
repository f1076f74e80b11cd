"""Background work for the inspector: a function run on a registered thread pool, its result (or
error text) delivered to the GUI thread; the GUI thread never waits for a model or the disk."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Signal

from ..threads import new_pool

__all__ = ["Jobs"]


class _Relay(QObject):
    done = Signal(object, object)  # (callback, result)
    failed = Signal(object, str)  # (callback for errors, message)


class _Job(QRunnable):
    def __init__(self, fn: Callable[[], Any], on_done, on_error, relay: _Relay) -> None:  # noqa: ANN001
        super().__init__()
        self.fn, self.on_done, self.on_error, self.relay = fn, on_done, on_error, relay

    def run(self) -> None:
        try:
            result = self.fn()
        except Exception as e:  # noqa: BLE001 - reported to the user, never raised in a pool thread
            self.relay.failed.emit(self.on_error, f"{type(e).__name__}: {e}")
            return
        self.relay.done.emit(self.on_done, result)


class Jobs(QObject):
    """``submit(fn, on_done, on_error)``: ``fn()`` on a worker thread, the callback in the GUI thread."""

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = new_pool(name, 1, self)
        self._relay = _Relay(self)
        self._relay.done.connect(lambda cb, r: cb(r))
        self._relay.failed.connect(lambda cb, msg: cb(msg) if cb is not None else None)

    def submit(self, fn: Callable[[], Any], on_done: Callable[[Any], None], on_error=None) -> None:  # noqa: ANN001
        self.pool.start(_Job(fn, on_done, on_error, self._relay))

    def wait(self, ms: int = 30000) -> bool:
        return self.pool.waitForDone(ms)
