"""Loss and accuracy curves: items created once, ``setData`` at most ~10 times a second.

Reports only append to Python lists; a timer pushes them to the plot when something changed,
so a burst of step reports costs one redraw. The x axis is in epochs (fractional during an
epoch), so the live train curve and the per-epoch validation points share it.

Ranges are managed here, not auto-ranged per frame: x spans the run's epochs, accuracy 0..1, and
the loss axis only grows when a value leaves it. Axes then rarely change, and they are cached as
pixmaps, so a redraw repaints the curves, not the tick labels (that was most of the cost).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtWidgets import QGraphicsItem, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from explorer.engine import EpochReport, StepReport
from explorer.engine.tasks import Task

from .style import COLORS

__all__ = ["CurvesView"]

REDRAW_MS = 100
AXIS_CHARS = 24  # the longest y-axis label that fits beside the shortest plot (160 px)


def _plot(title: str, y_label: str) -> pg.PlotWidget:
    w = pg.PlotWidget()
    item = w.getPlotItem()
    item.setTitle(title, size="11pt", color=COLORS["text"])
    item.setLabel("bottom", "epoch")
    item.setLabel("left", y_label)
    item.showGrid(x=True, y=True, alpha=0.25)
    item.setDownsampling(mode="peak")
    item.setClipToView(True)
    item.setMenuEnabled(False)
    item.disableAutoRange()
    for name in ("left", "bottom"):
        item.getAxis(name).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
    w.setMinimumHeight(160)
    return w


class _Series:
    def __init__(self) -> None:
        self.x: list[float] = []
        self.y: list[float] = []

    def add(self, x: float, y: float | None) -> None:
        if y is not None and np.isfinite(y):
            self.x.append(x)
            self.y.append(y)

    def clear(self) -> None:
        self.x.clear()
        self.y.clear()


class CurvesView(QWidget):
    KEYS = ("train_loss", "train_epoch_loss", "val_loss", "train_acc", "train_epoch_acc", "val_acc")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loss_plot = _plot("Loss", "loss")  # axes named by set_task
        self.acc_plot = _plot("Accuracy", "fraction correct")
        self.acc_plot.getPlotItem().setYRange(0, 1.0, padding=0.02)
        self._epochs = 1.0
        self._loss_top = 1.0
        self._set_x(1)
        self.loss_plot.getPlotItem().setYRange(0, self._loss_top, padding=0.02)
        live = pg.mkPen(COLORS["train_light"], width=1.2)
        train = pg.mkPen(COLORS["train"], width=2)
        val = pg.mkPen(COLORS["val"], width=2)
        self.series = {k: _Series() for k in self.KEYS}
        self.curves: dict[str, pg.PlotDataItem] = {}
        for plot, kind in ((self.loss_plot, "loss"), (self.acc_plot, "acc")):
            pi = plot.getPlotItem()
            self.curves[f"train_{kind}"] = pi.plot([], [], pen=live, name="train (live)")
            self.curves[f"train_epoch_{kind}"] = pi.plot(
                [],
                [],
                pen=train,
                symbol="s",
                symbolSize=6,
                symbolBrush=COLORS["train"],
                symbolPen=None,
                name="train (epoch)",
            )
            self.curves[f"val_{kind}"] = pi.plot(
                [], [], pen=val, symbol="o", symbolSize=7, symbolBrush=COLORS["val"], symbolPen=None, name="validation"
            )
        # one legend for both plots, outside them: it never hides a curve
        self.legend = QLabel(
            f"<span style='color:{COLORS['train_light']}'>━━</span> train (live) &nbsp;&nbsp; "
            f"<span style='color:{COLORS['train']}'>━■━</span> train (epoch mean) &nbsp;&nbsp; "
            f"<span style='color:{COLORS['val']}'>━●━</span> validation"
        )
        self.legend.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.legend.setProperty("role", "hint")
        plots = QHBoxLayout()
        plots.setContentsMargins(0, 0, 0, 0)
        plots.addWidget(self.loss_plot)
        plots.addWidget(self.acc_plot)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(plots, 1)
        layout.addWidget(self.legend)
        self._dirty = False
        self.redraws = 0
        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self.flush)
        self._timer.start()

    def set_task(self, task: Task | None) -> None:
        """Names the axes after what the task's loss and accuracy measure ("CTC", "texts read exactly")."""
        self.loss_plot.getPlotItem().setLabel("left", task.loss_name if task is not None else "loss")
        acc, item = task.accuracy_name if task is not None else "fraction correct", self.acc_plot.getPlotItem()
        long = len(acc) > AXIS_CHARS  # beside a short plot it would be clipped: a line under the title instead
        sub = f"<br><span style='font-size:9pt'>{html.escape(acc)}</span>" if long else ""
        item.setTitle("Accuracy" + sub, size="11pt", color=COLORS["text"])
        item.setLabel("left", "fraction" if long else acc)

    # -- ranges ------------------------------------------------------------------------------------
    def _set_x(self, epochs: float) -> None:
        self._epochs = float(max(epochs, 1))
        for plot in (self.loss_plot, self.acc_plot):
            plot.getPlotItem().setXRange(0, self._epochs, padding=0.02)

    def _fit_loss(self) -> None:
        ys = [y for k in ("train_loss", "train_epoch_loss", "val_loss") for y in self.series[k].y]
        if not ys:
            return
        top = max(ys)
        if top > self._loss_top or top < self._loss_top / 4:  # grow at once; shrink only when far off
            self._loss_top = top * 1.15
            self.loss_plot.getPlotItem().setYRange(0, self._loss_top, padding=0.02)

    # -- input -------------------------------------------------------------------------------------
    def reset(self, epochs: int = 1) -> None:
        for s in self.series.values():
            s.clear()
        self._set_x(epochs)
        self._loss_top = 1.0
        self.loss_plot.getPlotItem().setYRange(0, self._loss_top, padding=0.02)
        self._dirty = True
        self.flush()

    def add_step(self, r: StepReport) -> None:
        if r.epochs != self._epochs:
            self._set_x(r.epochs)
        x = (r.epoch - 1) + r.step / max(r.steps, 1)
        self.series["train_loss"].add(x, r.loss)
        self.series["train_acc"].add(x, r.accuracy)
        self._dirty = True

    def add_epoch(self, r: EpochReport | Mapping[str, Any]) -> None:
        d = r.to_dict() if isinstance(r, EpochReport) else r
        x = float(d["epoch"])
        if float(d.get("epochs") or x) > self._epochs:
            self._set_x(float(d.get("epochs") or x))
        self.series["train_epoch_loss"].add(x, d.get("train_loss"))
        self.series["train_epoch_acc"].add(x, d.get("train_accuracy"))
        self.series["val_loss"].add(x, d.get("val_loss"))
        self.series["val_acc"].add(x, d.get("val_accuracy"))
        self._dirty = True

    def load_history(self, history: Iterable[Mapping[str, Any]]) -> None:
        """Shows a finished run (``history.json`` records)."""
        for s in self.series.values():
            s.clear()
        history = list(history)
        self._set_x(max([float(r.get("epochs") or r.get("epoch") or 1) for r in history] or [1.0]))
        for rec in history:
            self.add_epoch(rec)
        self._dirty = True
        self.flush()

    # -- drawing -----------------------------------------------------------------------------------
    @Slot()
    def flush(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        self.redraws += 1
        for key, curve in self.curves.items():
            s = self.series[key]
            curve.setData(np.asarray(s.x, dtype=float), np.asarray(s.y, dtype=float))
        self._fit_loss()

    def stop(self) -> None:
        self._timer.stop()
