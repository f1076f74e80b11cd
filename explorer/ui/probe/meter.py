"""What drawing probe reports costs the window, so that training can count it as probing.

Every :class:`~explorer.ui.probe.ProbeView` opens the GUI thread's :func:`paint_meter` before it
draws a live report (or a section of it scrolled into view). The meter reads the thread's CPU time
(``time.thread_time``: its own work, not the time it waited for a core) and closes :data:`CLOSE_MS`
later, after Qt has drawn what the views changed; ``cost`` then carries the seconds.
Views that draw while a reading is open share it, so nothing is counted twice. The training
controller (:class:`~explorer.ui.worker.TrainingController`) hands the cost to its run
(:meth:`~explorer.engine.control.RunControl.charge_probing`), where the probe hook counts it
against its budget: a window slow to draw thins the live probes out instead of slowing training.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, QTimer, Signal, Slot

__all__ = ["CLOSE_MS", "PaintMeter", "paint_meter"]

#: How long a reading stays open (ms). Qt draws what a paint changed in later turns of the event
#: loop: pyqtgraph's scene collects its dirty items in a queued call, and the window's repaint is a
#: low-priority posted event after it; a timer fires once those are done. A reading closed at the
#: next turn (a 0 ms timer) saw a crnn's probes cost 70 ms of the window's CPU in a 1-epoch app
#: run, one closed after 50 ms 137 ms (7 probes). Other work of the window in the same few
#: milliseconds (a tick, a click) is counted too: probing is charged a little more, never less.
CLOSE_MS = 20


class PaintMeter(QObject):
    """The GUI thread's CPU time from :meth:`open` until :data:`CLOSE_MS` later."""

    cost = Signal(float)  # seconds of the GUI thread's CPU

    def __init__(self) -> None:
        super().__init__()
        self._since: float | None = None

    def open(self) -> None:
        """Starts a reading, or joins the one already open (views drawing together share it)."""
        if self._since is None:
            self._since = time.thread_time()
            QTimer.singleShot(CLOSE_MS, self, self._close)

    @Slot()
    def _close(self) -> None:
        since, self._since = self._since, None
        if since is not None:
            self.cost.emit(max(0.0, time.thread_time() - since))


_METER: PaintMeter | None = None


def paint_meter() -> PaintMeter:
    """The GUI thread's meter (made at first use, in the GUI thread)."""
    global _METER
    if _METER is None:
        _METER = PaintMeter()
    return _METER
