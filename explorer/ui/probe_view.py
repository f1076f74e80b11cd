"""Inside the model: the probe image, the model's current prediction, and what each layer sees.

* conv layers (activations ``(C, H, W)``): a grid of channel maps, one ``ImageItem`` per map;
* recurrent layers (keys ending ``:fwd`` / ``:bwd``, activations ``(T, H)``): a heatmap with time
  along x and hidden units along y.

Items are built once per model (when the set of layers or their shapes change) and then only get
``setImage``. Levels are explicit and ours: each channel map is stretched to its own min..max,
hidden states use fixed symmetric levels, and the colour map is applied in numpy, so pyqtgraph
receives display-ready RGB bytes (its fastest path: no level computation, no per-frame colour
table). Reports are coalesced: the newest one is painted by a ~5 Hz timer, older ones are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer, Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QScrollArea, QSizePolicy, QVBoxLayout, QWidget

from explorer.engine import ProbeReport

from .style import COLORS

__all__ = ["ProbeView", "MAX_MAPS", "conv_keys", "rnn_keys"]

MAX_MAPS = 32  # channel maps shown per conv layer
COLUMNS = 8
CELL_PX = 54  # on-screen size of one channel map
PAINT_MS = 200
BUILD_PAUSE_MS = 12  # between building steps: lets a 10 ms timer (and input) through
ITEMS_PER_STEP = 8
_MAPS_LUT = np.ascontiguousarray(pg.colormap.get("viridis").getLookupTable(nPts=256, mode="byte")[:, :3])
_STATE_LUT = np.ascontiguousarray(pg.colormap.get("CET-D1").getLookupTable(nPts=256, mode="byte")[:, :3])


def conv_keys(inter: dict[str, np.ndarray]) -> list[str]:
    return [k for k, v in inter.items() if v.ndim == 3 and ":" not in k]


def rnn_keys(inter: dict[str, np.ndarray]) -> list[str]:
    return [k for k, v in inter.items() if v.ndim == 2 and (k.endswith(":fwd") or k.endswith(":bwd"))]


def colorize(u8: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """uint8 indices (..., H, W) -> RGB bytes (..., H, W, 3) through a 256-entry colour map."""
    return np.ascontiguousarray(lut[u8])


def normalize_maps(maps: np.ndarray) -> np.ndarray:
    """(N, H, W) float -> uint8, each map stretched to its own min..max (flat maps are mid-grey)."""
    lo = maps.min(axis=(1, 2), keepdims=True)
    hi = maps.max(axis=(1, 2), keepdims=True)
    span = hi - lo
    out = np.where(span > 1e-12, (maps - lo) / np.where(span > 1e-12, span, 1.0), 0.5)
    return np.ascontiguousarray((out * 255.0 + 0.5).astype(np.uint8))


class _ConvSection(QWidget):
    """One conv layer: a title and a grid of channel maps (one ImageItem each) in one view."""

    def __init__(self, name: str, shape: tuple[int, int, int]) -> None:
        super().__init__()
        c, h, w = shape
        self.n = min(c, MAX_MAPS)
        self.cols = cols = min(COLUMNS, self.n)
        rows = (self.n + cols - 1) // cols
        self._hw = (h, w)
        self._gap = gap = max(1.0, 0.08 * max(h, w))
        more = f" (first {self.n} of {c} channels)" if c > self.n else f" ({c} channels)"
        self.title = QLabel(f"<b>{name}</b>  {h}×{w}{more}")
        self.glw = pg.GraphicsLayoutWidget()
        self.glw.setBackground("w")
        self.glw.ci.setContentsMargins(0, 0, 0, 0)
        self.vb = self.glw.addViewBox(lockAspect=True, enableMouse=False, invertY=True)
        self.vb.setMenuEnabled(False)
        self.vb.setRange(xRange=(0, cols * (w + gap) - gap), yRange=(0, rows * (h + gap) - gap), padding=0.01)
        self.items: list[pg.ImageItem] = []
        aspect = h / max(w, 1)
        self.glw.setFixedHeight(int(rows * CELL_PX * aspect + (rows - 1) * 4 + 8))
        self.glw.setMinimumWidth(int(cols * CELL_PX * 0.6))
        self.glw.setMaximumWidth(int(cols * CELL_PX * 1.3))
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 4, 0, 4)
        lay.setSpacing(2)
        lay.addWidget(self.title)
        lay.addWidget(self.glw)

    @property
    def complete(self) -> bool:
        return len(self.items) == self.n

    def add_items(self, count: int) -> None:
        """Creates up to ``count`` more map items (the view is built in small steps)."""
        h, w = self._hw
        for i in range(len(self.items), min(self.n, len(self.items) + count)):
            r, col = divmod(i, self.cols)
            item = pg.ImageItem(axisOrder="row-major")
            item.setPos(col * (w + self._gap), r * (h + self._gap))
            self.vb.addItem(item)
            self.items.append(item)

    def update_maps(self, act: np.ndarray) -> None:
        rgb = colorize(normalize_maps(np.asarray(act[: self.n], dtype=np.float32)), _MAPS_LUT)
        for item, m in zip(self.items, rgb):
            item.setImage(m, levels=None, autoLevels=False)


class _StateSection(QWidget):
    def __init__(self, name: str, shape: tuple[int, int]) -> None:
        super().__init__()
        t, h = shape
        self.title = QLabel(f"<b>{name}</b>  hidden state: {t} steps × {h} units")
        self.plot = pg.PlotWidget()
        pi = self.plot.getPlotItem()
        pi.setMenuEnabled(False)
        pi.setMouseEnabled(x=False, y=False)
        pi.hideButtons()
        pi.setLabel("bottom", "time step")
        pi.setLabel("left", "unit")
        self.item = pg.ImageItem(axisOrder="row-major")
        pi.addItem(self.item)
        pi.setRange(xRange=(0, t), yRange=(0, h), padding=0)
        self.plot.setFixedHeight(int(min(220, max(110, h * 2 + 50))))
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 4, 0, 4)
        lay.setSpacing(2)
        lay.addWidget(self.title)
        lay.addWidget(self.plot)

    def update_states(self, act: np.ndarray) -> None:
        a = np.asarray(act, dtype=np.float32).T  # (H, T): time along x
        m = (
            float(max(1.0, np.abs(a).max())) if a.size else 1.0
        )  # levels (-m, m): tanh-bounded states keep fixed colours
        u8 = np.clip((a + m) * (255.0 / (2 * m)) + 0.5, 0, 255).astype(np.uint8)
        self.item.setImage(colorize(u8, _STATE_LUT), levels=None, autoLevels=False)


class ProbeView(QWidget):
    """Shows the newest :class:`ProbeReport`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pending: ProbeReport | None = None
        self._signature: tuple = ()
        self._labels: list[str] = []
        self.sections: dict[str, _ConvSection | _StateSection] = {}
        self._note: QLabel | None = None
        self._to_build: list[tuple[str, tuple[int, ...]]] = []
        self.painted = 0  # reports painted (tests)

        # probe image + prediction
        self.image_view = pg.GraphicsLayoutWidget()
        self.image_view.setFixedSize(112, 112)
        self.image_view.ci.setContentsMargins(0, 0, 0, 0)
        vb = self.image_view.addViewBox(lockAspect=True, enableMouse=False, invertY=True)
        vb.setMenuEnabled(False)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        vb.addItem(self.image_item)
        self._image_vb = vb
        self.caption = QLabel("Start training to see what the model sees.")
        self.caption.setWordWrap(True)
        self.caption.setProperty("role", "hint")
        self.bars_plot = pg.PlotWidget()
        self.bars_plot.setFixedHeight(112)
        bp = self.bars_plot.getPlotItem()
        bp.setMenuEnabled(False)
        bp.setMouseEnabled(x=False, y=False)
        bp.hideButtons()
        bp.setYRange(0, 1, padding=0.02)
        bp.setLabel("left", "p")
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.6, brush=COLORS["train"])
        bp.addItem(self.bars)
        self.frames_plot = pg.PlotWidget()
        self.frames_plot.setFixedHeight(112)
        fp = self.frames_plot.getPlotItem()
        fp.setMenuEnabled(False)
        fp.setMouseEnabled(x=False, y=False)
        fp.hideButtons()
        fp.setLabel("bottom", "time step")
        fp.setLabel("left", "symbol")
        self.frames_item = pg.ImageItem(axisOrder="row-major")
        fp.addItem(self.frames_item)
        self.frames_plot.hide()
        top = QHBoxLayout()
        top.addWidget(self.image_view)
        col = QVBoxLayout()
        col.addWidget(self.caption)
        col.addWidget(self.bars_plot)
        col.addWidget(self.frames_plot)
        top.addLayout(col, 1)

        # layers
        self._layers = QWidget()
        self._layers_layout = QVBoxLayout(self._layers)
        self._layers_layout.setContentsMargins(0, 0, 6, 0)
        self._layers_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self._layers)
        scroll.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

        title = QLabel("Inside the model")
        title.setProperty("role", "section")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(title)
        layout.addLayout(top)
        layout.addWidget(scroll, 1)

        self._timer = QTimer(self)
        self._timer.setInterval(PAINT_MS)
        self._timer.timeout.connect(self.paint_pending)
        self._timer.start()

    def set_labels(self, labels: Sequence[str]) -> None:
        self._labels = list(labels)
        n = len(labels)
        ax = self.bars_plot.getPlotItem().getAxis("bottom")
        ax.setTicks([[(i, str(lab)[:10]) for i, lab in enumerate(labels)]])
        self.bars_plot.getPlotItem().setXRange(-0.6, max(n, 1) - 0.4, padding=0)

    @Slot(object)
    def set_report(self, report: ProbeReport) -> None:
        """Keeps only the newest report; the timer paints it."""
        self._pending = report

    def clear(self) -> None:
        self._pending = None
        self._signature = ()
        self._remove_sections()
        self.image_item.clear()
        self.bars.setOpts(x=[], height=[])
        self.caption.setText("Start training to see what the model sees.")

    @Slot()
    def paint_pending(self) -> None:
        r = self._pending
        if r is None:
            return
        inter = r.intermediates
        keys = conv_keys(inter) + rnn_keys(inter)
        signature = tuple((k, inter[k].shape) for k in keys)
        if signature != self._signature:
            self._remove_sections()
            self._signature = signature
            self._to_build = [(k, inter[k].shape) for k in keys]
            if not keys:
                self._note = QLabel("This model reports no intermediate activations.")
                self._note.setProperty("role", "hint")
                self._layers_layout.insertWidget(0, self._note)
        if self._build_step():
            # New model: its views are built in small steps, one per event-loop turn with a pause
            # between them, so the window never freezes for the whole set; the report waits.
            QTimer.singleShot(BUILD_PAUSE_MS, self.paint_pending)
            return
        self._pending = None
        self.painted += 1
        img = r.image[..., 0] if r.image.ndim == 3 and r.image.shape[2] == 1 else r.image
        self.image_item.setImage(np.ascontiguousarray(img), levels=None, autoLevels=False)  # uint8: shown as is
        h, w = img.shape[:2]
        self._image_vb.setRange(xRange=(0, w), yRange=(0, h), padding=0)
        probs = np.asarray(r.probabilities, dtype=float)
        where = f"<b>{Path(r.path).name}</b> (epoch {r.epoch}, step {r.global_step})"
        if probs.ndim == 2:  # per-frame (CTC) output: time x symbols, as a heat map
            self.bars_plot.hide()
            self.frames_plot.show()
            u8 = np.clip(probs.T * 255.0 + 0.5, 0, 255).astype(np.uint8)  # levels fixed at 0..1
            self.frames_item.setImage(colorize(u8, _MAPS_LUT), levels=None, autoLevels=False)
            self.frames_plot.getPlotItem().setRange(xRange=(0, probs.shape[0]), yRange=(0, probs.shape[1]), padding=0)
            self.caption.setText(f"{where}: per-frame symbol probabilities (time × symbols)")
        else:
            self.frames_plot.hide()
            self.bars_plot.show()
            if len(self._labels) != len(probs):
                self.set_labels([str(i) for i in range(len(probs))])
            self.bars.setOpts(x=np.arange(len(probs)), height=probs, width=0.6)
            k = int(np.argmax(probs)) if len(probs) else 0
            guess = self._labels[k] if k < len(self._labels) else str(k)
            self.caption.setText(f"{where}: the model says <b>{guess}</b> ({probs[k]:.0%})" if len(probs) else where)
        for key in keys:
            sec = self.sections[key]
            if isinstance(sec, _ConvSection):
                sec.update_maps(inter[key])
            else:
                sec.update_states(inter[key])

    def _build_step(self) -> bool:
        """Does one small piece of building; False when everything exists."""
        for sec in self.sections.values():
            if isinstance(sec, _ConvSection) and not sec.complete:
                sec.add_items(ITEMS_PER_STEP)
                return True
        if self._to_build:
            k, shape = self._to_build.pop(0)
            sec: _ConvSection | _StateSection = _ConvSection(k, shape) if len(shape) == 3 else _StateSection(k, shape)
            self._layers_layout.insertWidget(len(self.sections), sec)
            self.sections[k] = sec
            return True
        return False

    def _remove_sections(self) -> None:
        self._to_build = []
        for sec in list(self.sections.values()) + ([self._note] if self._note is not None else []):
            self._layers_layout.removeWidget(sec)
            sec.deleteLater()
        self.sections.clear()
        self._note = None

    def stop(self) -> None:
        self._timer.stop()
