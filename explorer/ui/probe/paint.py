"""Shared painting pieces of the probe sections: colour maps applied in numpy, explicit levels,
plots with named axes and a colour bar.

Every image handed to pyqtgraph is display-ready RGB bytes (its fastest path: no level
computation, no per-frame colour table); the levels used are ours and are shown on a colour bar.
"""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import QButtonGroup, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

__all__ = [
    "MAPS_CMAP",
    "DIVERGING_CMAP",
    "OVERLAY_CMAP",
    "lut",
    "colorize",
    "normalize_maps",
    "to_u8",
    "levels_for",
    "cmap_for",
    "heatmap_rgb",
    "TOGGLE_QSS",
    "HeatmapPlot",
    "Selector",
    "Section",
    "set_text",
    "FixedRange",
    "BarLevels",
    "ColorBar",
    "Axes",
]

MAPS_CMAP = "viridis"  # sequential: feature maps, gates in (0, 1), probabilities
DIVERGING_CMAP = "CET-D1"  # symmetric: states in (-1, 1) or unbounded around 0
OVERLAY_CMAP = "inferno"  # attention over the image
_LUTS: dict[str, np.ndarray] = {}
#: compact toggle buttons whose checked one stands out
TOGGLE_QSS = (
    "QPushButton { padding: 2px 8px; }QPushButton:checked { background: #3949ab; color: white; border-color: #3949ab; }"
)


def lut(name: str) -> np.ndarray:
    """A 256-entry RGB byte colour table (cached)."""
    if name not in _LUTS:
        _LUTS[name] = np.ascontiguousarray(pg.colormap.get(name).getLookupTable(nPts=256, mode="byte")[:, :3])
    return _LUTS[name]


def colorize(u8: np.ndarray, table: np.ndarray) -> np.ndarray:
    """uint8 indices (..., H, W) -> RGB bytes (..., H, W, 3) through a 256-entry colour map
    (``np.take``: about 4x faster than fancy indexing ``table[u8]``, same bytes)."""
    return np.take(table, u8, axis=0)


def normalize_maps(maps: np.ndarray) -> np.ndarray:
    """(N, H, W) float -> uint8, each map stretched to its own min..max (flat maps are mid-grey)."""
    lo = maps.min(axis=(1, 2), keepdims=True)
    hi = maps.max(axis=(1, 2), keepdims=True)
    span = hi - lo
    out = np.where(span > 1e-12, (maps - lo) / np.where(span > 1e-12, span, 1.0), 0.5)
    return np.ascontiguousarray((out * 255.0 + 0.5).astype(np.uint8))


def to_u8(a: np.ndarray, levels: tuple[float, float]) -> np.ndarray:
    """Float values -> uint8 colour indices, ``levels`` (lo, hi) mapping to 0 and 255 (clipped)."""
    lo, hi = levels
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    return np.clip((np.asarray(a, dtype=np.float32) - lo) * scale + 0.5, 0, 255).astype(np.uint8)


def levels_for(a: np.ndarray, value_range: list | tuple | None) -> tuple[float, float]:
    """The declared range when there is one; else symmetric levels (-m, m), m >= 1, so that
    tanh-like values keep fixed colours and larger ones (an LSTM cell state) still fit."""
    if value_range is not None:
        return float(value_range[0]), float(value_range[1])
    m = float(max(1.0, np.abs(a).max())) if a.size else 1.0
    return -m, m


def cmap_for(levels: tuple[float, float]) -> str:
    """Diverging colours for ranges around zero, sequential ones for ranges from zero up."""
    return DIVERGING_CMAP if levels[0] < 0 < levels[1] else MAPS_CMAP


def heatmap_rgb(a: np.ndarray, levels: tuple[float, float]) -> np.ndarray:
    """(rows, cols) values -> (rows, cols, 3) RGB bytes with the colour map ``levels`` implies."""
    return colorize(to_u8(a, levels), lut(cmap_for(levels)))


def set_text(label: QLabel, text: str) -> None:
    """Sets a label's text only when it differs (each setText re-lays out the scrolled list)."""
    if label.text() != text:
        label.setText(text)


class FixedRange:
    """Remembers the extent a view box was last fitted to, so it is fitted only when it changes."""

    def __init__(self, vb: pg.ViewBox) -> None:
        self.vb = vb
        self.extent: tuple[int, int] | None = None

    def fit(self, w: int, h: int) -> None:
        if (w, h) != self.extent:
            self.extent = (w, h)
            self.vb.setRange(xRange=(0, w), yRange=(0, h), padding=0)


class ColorBar(pg.GraphicsLayout):
    """A vertical colour bar with a value axis and its label: a view box holding the colour map as
    a 256-row image and an axis beside it (what ``pg.ColorBarItem`` draws, without the PlotItem it
    is built on: ~4 ms to build instead of ~30, so building a section never stalls the window)."""

    def __init__(self, label: str, cmap: str = MAPS_CMAP, width: int = 12, levels: tuple[float, float] = (0.0, 1.0)):
        super().__init__()
        self.setContentsMargins(0, 0, 0, 0)
        self.setSpacing(0)
        self.vb = pg.ViewBox(enableMenu=False, enableMouse=False, border=pg.mkPen("#90a4ae"))
        self.vb.setFixedWidth(width)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.vb.addItem(self.image)
        self.axis = pg.AxisItem("right")
        self.axis.linkToView(self.vb)
        self.axis.setLabel(label)
        self.axis.enableAutoSIPrefix(False)  # weights like 0.06 stay 0.06, not "60 (x0.001)"
        self.addItem(self.vb, row=0, col=0)
        self.addItem(self.axis, row=0, col=1)
        self.cmap: str | None = None
        self.levels: tuple[float, float] = levels
        self.setColorMap(cmap)
        self.setLevels(levels)

    def setColorMap(self, cmap: str) -> None:  # noqa: N802 - pg.ColorBarItem's name
        """The colour map by name (low values at the bottom)."""
        if cmap != self.cmap:
            self.cmap = cmap
            self.image.setImage(lut(cmap)[:, None, :], levels=None, autoLevels=False)
            self._place()

    def setLevels(self, levels: tuple[float, float]) -> None:  # noqa: N802
        self.levels = (float(levels[0]), float(levels[1]))
        self._place()

    def _place(self) -> None:
        lo, hi = self.levels
        if hi <= lo:
            hi = lo + 1e-6
        self.image.setRect(QRectF(0.0, lo, 1.0, hi - lo))
        self.vb.setRange(xRange=(0, 1), yRange=(lo, hi), padding=0)


class Axes(pg.GraphicsLayout):
    """A view box with a left and a bottom axis, both labelled (the part of ``pg.PlotItem`` the
    heatmaps use, ~6 ms to build instead of ~25)."""

    def __init__(self, x_label: str, y_label: str) -> None:
        super().__init__()
        self.setContentsMargins(0, 0, 0, 0)
        self.setSpacing(0)
        self.vb = pg.ViewBox(enableMenu=False, enableMouse=False)
        self.axes = {"left": pg.AxisItem("left"), "bottom": pg.AxisItem("bottom")}
        for side, label in (("left", y_label), ("bottom", x_label)):
            self.axes[side].linkToView(self.vb)
            self.axes[side].setLabel(label)
        self.addItem(self.axes["left"], row=0, col=0)
        self.addItem(self.vb, row=0, col=1)
        self.addItem(self.axes["bottom"], row=1, col=1)

    def getAxis(self, side: str) -> pg.AxisItem:  # noqa: N802 - pg.PlotItem's name
        return self.axes[side]

    def addItem(self, item, *args, **kwargs) -> None:  # noqa: ANN001, ANN002, ANN003, N802
        """Layout pieces go into the layout; anything else is drawn in the view box."""
        if args or kwargs:
            super().addItem(item, *args, **kwargs)
        else:
            self.vb.addItem(item)

    def removeItem(self, item) -> None:  # noqa: ANN001, N802
        self.vb.removeItem(item)

    def setRange(self, **kwargs) -> None:  # noqa: ANN003, N802
        self.vb.setRange(**kwargs)

    def setLabel(self, side: str, text: str) -> None:  # noqa: N802
        self.axes[side].setLabel(text)

    def invertY(self, b: bool = True) -> None:  # noqa: N802
        self.vb.invertY(b)


class BarLevels:
    """A colour bar whose levels (and colour map) are set only when they change."""

    def __init__(self, bar: ColorBar) -> None:
        self.bar = bar
        self.levels: tuple[float, float] | None = None
        self.cmap: str | None = None

    def set(self, levels: tuple[float, float], cmap: str | None = None) -> None:
        if cmap is not None and cmap != self.cmap:
            self.cmap = cmap
            self.bar.setColorMap(cmap)
        if levels != self.levels:
            self.levels = levels
            self.bar.setLevels(levels)


class HeatmapPlot(pg.GraphicsLayoutWidget):
    """A plot with named axes, one ImageItem fed RGB bytes and a colour bar stating the levels.

    With ``bar=False`` the colour bar is left for :meth:`build_bar`, so that a section can build
    the plot over two event-loop turns (each piece is several ms); :meth:`show_values` builds it
    if nobody did."""

    def __init__(self, x_label: str, y_label: str, bar_label: str, height: int, *, bar: bool = True) -> None:
        super().__init__()
        self.setBackground("w")
        self.ci.setContentsMargins(2, 8, 4, 8)  # room for the colour bar's end labels
        self.plot = pi = Axes(x_label, y_label)
        self.addItem(pi, row=0, col=0)
        self.item = pg.ImageItem(axisOrder="row-major")
        pi.addItem(self.item)
        self._bar_label = bar_label
        self.bar: ColorBar | None = None
        self._levels: tuple[float, float] | None = None
        self._extent: tuple[int, int] = (0, 0)
        self.named_ticks: set[str] = set()  # axes whose ticks a subclass names (characters)
        self.setFixedHeight(height)
        if bar:
            self.build_bar()

    def build_bar(self) -> bool:
        """Builds the colour bar; False when it was already there."""
        if self.bar is not None:
            return False
        self.bar = ColorBar(self._bar_label)
        self.addItem(self.bar, row=0, col=1)
        return True

    def show_values(self, a: np.ndarray, levels: tuple[float, float]) -> None:
        """Paints ``a`` (rows = y, cols = x) with ``levels``; the bar follows when they change."""
        self.item.setImage(heatmap_rgb(a, levels), levels=None, autoLevels=False)
        self.set_levels(levels)
        self.set_extent(a.shape[0], a.shape[1])

    def set_levels(self, levels: tuple[float, float]) -> None:
        """The colour bar's map and levels (only when they change)."""
        if levels != self._levels:
            self.build_bar()
            self._levels = levels
            self.bar.setColorMap(cmap_for(levels))
            self.bar.setLevels(levels)

    def set_extent(self, rows: int, cols: int) -> None:
        """The view range and tick spacing for a (rows, cols) image (only when it changes: a section
        calls it while building, so that its first paint does not pay for it)."""
        extent = (cols, rows)
        if extent != self._extent:
            self._extent = extent
            self.plot.setRange(xRange=(0, extent[0]), yRange=(0, extent[1]), padding=0)
            for side, n in (("bottom", extent[0]), ("left", extent[1])):  # whole steps / units, never 0.2
                if side not in self.named_ticks:
                    self.plot.getAxis(side).setTickSpacing(*((1, 1) if n <= 12 else ()))


class Section(QWidget):
    """One block of the probe's list: a title, a note line and the section's own views.

    Subclasses set ``keys`` (the intermediates they draw) and implement :meth:`update_from`;
    ``build_step`` lets a section with many items build them a few at a time.
    """

    def __init__(self, keys: list[str], title: str) -> None:
        super().__init__()
        self.keys = keys
        self.title = QLabel(f"<b>{html.escape(title)}</b>")
        self.note = QLabel("")
        self.note.setProperty("role", "hint")
        self.note.setWordWrap(True)
        self.body = QVBoxLayout(self)
        self.body.setContentsMargins(0, 6, 0, 6)
        self.body.setSpacing(2)
        self.body.addWidget(self.title)
        self.body.addWidget(self.note)

    def set_note(self, text: str) -> None:
        """The note line; Qt is told only when it changes (a relayout of the whole list otherwise)."""
        set_text(self.note, text)

    def build_step(self) -> bool:
        """Builds a little more; False when complete."""
        return False

    def update_from(self, ctx) -> None:  # noqa: ANN001 - a ProbeContext
        raise NotImplementedError


class Selector(QWidget):
    """A row of exclusive toggle buttons, one per key, calling ``on_select(key)`` when clicked."""

    def __init__(self, options: dict[str, tuple[str, str]], on_select) -> None:  # noqa: ANN001
        """``options``: key -> (button text, tooltip), in order."""
        super().__init__()
        self.setStyleSheet(TOGGLE_QSS)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(4)
        self.group = QButtonGroup(self)
        self.buttons: dict[str, QPushButton] = {}
        for key, (text, tip) in options.items():
            b = QPushButton(text)
            b.setCheckable(True)
            b.setToolTip(tip)
            b.clicked.connect(lambda _=False, k=key: on_select(k))
            self.group.addButton(b)
            self.buttons[key] = b
            row.addWidget(b)
        row.addStretch(1)
        if options:
            next(iter(self.buttons.values())).setChecked(True)
        self.setVisible(len(options) > 1)
