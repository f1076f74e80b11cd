"""What drawing probe reports costs the window, so that training can count it as probing.

Every :class:`~explorer.ui.probe.ProbeView` opens the GUI thread's :func:`paint_meter` before it
draws a live report (or a section of it scrolled into view). The meter reads the thread's CPU time
(``time.thread_time``: its own work, not the time it waited for a core) and closes at the next turn
of the event loop, after Qt has drawn what the views changed; ``cost`` then carries the seconds.
Views that draw in the same turn share one reading, so nothing is counted twice. The training
controller (:class:`~explorer.ui.worker.TrainingController`) hands the cost to its run
(:meth:`~explorer.engine.control.RunControl.charge_probing`), where the probe hook counts it
against its budget: a window slow to draw thins the live probes out instead of slowing training.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, QTimer, Signal, Slot

__all__ = ["PaintMeter", "paint_meter"]


class PaintMeter(QObject):
    """The GUI thread's CPU time from :meth:`open` to the end of the next event-loop turn."""

    cost = Signal(float)  # seconds of the GUI thread's CPU

    def __init__(self) -> None:
        super().__init__()
        self._since: float | None = None

    def open(self) -> None:
        """Starts a reading, or joins the one this turn of the event loop already started."""
        if self._since is None:
            self._since = time.thread_time()
            QTimer.singleShot(0, self, self._close)

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
