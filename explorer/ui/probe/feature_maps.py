"""Channel grids: conv feature maps (channel, y, x) and first-layer filters (out, in, ky, kx).

A grid is ONE atlas image: the tiles laid out row by row with white gaps between them, drawn by a
single ``ImageItem`` (one texture upload per paint, however many channels). A click on a tile
enlarges that channel below the grid (the click position is mapped back to the tile).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from .paint import MAPS_CMAP, ColorBar, Section, colorize, lut, normalize_maps

__all__ = ["ChannelGrid", "FeatureMapSection", "FilterSection", "MAX_MAPS", "atlas"]

MAX_MAPS = 32  # tiles shown per layer
COLUMNS = 8
CELL_PX = 54  # on-screen side of a square tile (others keep about its area)
MAX_TILE_PX = 96  # no tile side longer than this on screen
MAX_GRID_PX = 620  # the whole grid's width at most
BAR_PX = 80  # room for a colour bar and its axis
ENLARGED_PX = 220  # on-screen height of an enlarged tile
GAP_RGB = 255  # the gaps between tiles: white, like the background


def atlas(rgb: np.ndarray, cols: int, gap: int) -> np.ndarray:
    """(n, h, w, 3) tiles -> one (rows*(h+gap)-gap, cols*(w+gap)-gap, 3) image, tile i at row
    i // cols, column i % cols, white gaps (and white cells after the last tile)."""
    n, h, w, c = rgb.shape
    rows = (n + cols - 1) // cols
    out = np.full((rows, h + gap, cols, w + gap, c), GAP_RGB, np.uint8)
    full = np.full((rows * cols, h, w, c), GAP_RGB, np.uint8)
    full[:n] = rgb
    out[:, :h, :, :w] = full.reshape(rows, cols, h, w, c).transpose(0, 2, 1, 3, 4)
    out = out.reshape(rows * (h + gap), cols * (w + gap), c)
    return np.ascontiguousarray(out[: rows * (h + gap) - gap, : cols * (w + gap) - gap])


class ChannelGrid(pg.GraphicsLayoutWidget):
    """``n`` tiles of (h, w) pixels, ``cols`` per row, tile i at row i // cols, column i % cols."""

    def __init__(self, n: int, hw: tuple[int, int], cols: int = COLUMNS) -> None:
        super().__init__()
        h, w = hw
        self.n = n
        self.cols = cols = max(1, min(cols, n))
        rows = (n + cols - 1) // cols
        self._hw = hw
        self.gap = gap = max(1, int(round(0.08 * max(h, w))))
        self.setBackground("w")
        self.ci.setContentsMargins(0, 0, 0, 0)
        self.vb = self.addViewBox(row=0, col=0, lockAspect=True, enableMouse=False, invertY=True, enableMenu=False)
        span = (cols * (w + gap) - gap, rows * (h + gap) - gap)
        self.vb.setRange(xRange=(0, span[0]), yRange=(0, span[1]), padding=0)
        self.item = pg.ImageItem(axisOrder="row-major")
        self.vb.addItem(self.item)
        self.shown: np.ndarray | None = None  # the (n, h, w, 3) tiles painted last
        #: called with the tile index a click landed on
        self.on_click: Callable[[int], None] | None = None
        self.scene().sigMouseClicked.connect(self._clicked)
        # screen pixels per map pixel: tiles of about CELL_PX² on screen, no side over MAX_TILE_PX,
        # the grid no wider than MAX_GRID_PX
        scale = min(CELL_PX / math.sqrt(h * w), MAX_TILE_PX / w, MAX_TILE_PX / h, MAX_GRID_PX / span[0])
        self._size = (int(math.ceil(span[0] * scale)) + 2, int(math.ceil(span[1] * scale)) + 2)
        self.setFixedSize(*self._size)
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    @property
    def tiles(self) -> list[np.ndarray]:
        """The painted tiles, cut back out of the atlas (what the screen shows, tile by tile)."""
        img = self.item.image
        if img is None:
            return []
        h, w = self._hw
        out = []
        for i in range(self.n):
            r, c = divmod(i, self.cols)
            y, x = r * (h + self.gap), c * (w + self.gap)
            out.append(img[y : y + h, x : x + w])
        return out

    def tile_at(self, x: float, y: float) -> int | None:
        """The tile under view position (x, y) (map pixels), None in a gap or outside."""
        h, w = self._hw
        c, dx = divmod(x, w + self.gap)
        r, dy = divmod(y, h + self.gap)
        if x < 0 or y < 0 or dx >= w or dy >= h or c >= self.cols:
            return None
        i = int(r) * self.cols + int(c)
        return i if i < self.n else None

    def _clicked(self, ev) -> None:  # noqa: ANN001 - a scene mouse event
        if self.on_click is None or ev.button() != Qt.MouseButton.LeftButton:
            return
        p = self.vb.mapSceneToView(ev.scenePos())
        i = self.tile_at(p.x(), p.y())
        if i is not None:
            self.on_click(i)

    def add_bar(self, label: str) -> None:
        """A colour bar right of the tiles, for grids whose tiles share one set of levels."""
        self.bar = ColorBar(label)
        self.addItem(self.bar, row=0, col=1)
        self._levels: tuple[float, float] | None = None
        self.ci.setContentsMargins(0, 8, 0, 8)
        self.setFixedSize(self._size[0] + BAR_PX, max(self._size[1] + 16, 120))

    def set_bar(self, levels: tuple[float, float], cmap: str) -> None:
        if levels != self._levels:
            self._levels = levels
            self.bar.setColorMap(cmap)
            self.bar.setLevels(levels)

    def show_rgb(self, rgb: np.ndarray) -> None:
        """(n, h, w, 3) RGB bytes, one tile each, painted as one atlas image."""
        self.shown = rgb = np.asarray(rgb[: self.n])
        self.item.setImage(atlas(rgb, self.cols, self.gap), levels=None, autoLevels=False)


class Enlarged(pg.GraphicsLayoutWidget):
    """One tile of a grid, large, with its axes in map pixels (hidden until a tile is clicked)."""

    def __init__(self, hw: tuple[int, int]) -> None:
        super().__init__()
        h, w = hw
        self.setBackground("w")
        self.ci.setContentsMargins(2, 4, 4, 4)
        self.plot = pi = self.addPlot(row=0, col=0, enableMenu=False)
        pi.setMouseEnabled(x=False, y=False)
        pi.hideButtons()
        pi.setAspectLocked(True)
        pi.invertY(True)
        pi.setLabel("bottom", "x (px)")
        pi.setLabel("left", "y (px)")
        self.item = pg.ImageItem(axisOrder="row-major")
        pi.addItem(self.item)
        pi.setRange(xRange=(0, w), yRange=(0, h), padding=0)
        width = int(ENLARGED_PX * w / max(h, 1)) + 60
        self.setFixedSize(min(max(width, 160), MAX_GRID_PX), ENLARGED_PX + 40)
        self.hide()


def stretched_rgb(maps: np.ndarray) -> np.ndarray:
    """(N, h, w) -> RGB bytes, each map stretched to its own min..max."""
    return colorize(normalize_maps(np.asarray(maps, dtype=np.float32)), lut(MAPS_CMAP))


class FeatureMapSection(Section):
    """A conv layer's activation (channel, y, x): the first ``MAX_MAPS`` channels tiled."""

    @staticmethod
    def layout_of(arrays: list[np.ndarray]) -> tuple:
        return tuple(arrays[0].shape)

    def __init__(self, keys: list[str], info: dict[str, dict], arrays: list[np.ndarray]) -> None:
        c, h, w = arrays[0].shape
        super().__init__(keys, info[keys[0]]["title"])
        n = min(c, MAX_MAPS)
        shown = f"channels 0-{n - 1} of {c}" if c > n else f"{c} channels"
        self.set_note(
            f"{shown}, one tile each (row by row), y × x = {h} × {w}; colour: each tile from its own "
            "minimum (dark) to maximum (yellow)"
        )
        self.grid = ChannelGrid(n, (h, w))
        self.body.addWidget(self.grid)
        self._add_enlarged((h, w), "channel")

    def _add_enlarged(self, hw: tuple[int, int], what: str) -> None:
        """Below the grid: the clicked tile, large (click it again to close)."""
        self._what = what
        self.enlarged_index: int | None = None
        self.enlarged_label = QLabel("")
        self.enlarged_label.setProperty("role", "hint")
        self.enlarged_label.setWordWrap(True)
        self.enlarged_label.hide()
        self._hw_tile = hw
        self.enlarged: Enlarged | None = None  # built on the first click (a plot costs ~20 ms to build)
        self.body.addWidget(self.enlarged_label)
        self.grid.on_click = self.enlarge

    def enlarge(self, index: int | None) -> None:
        """Shows tile ``index`` large below the grid (None, or the shown one again: closes it)."""
        if index is None or index == self.enlarged_index:
            self.enlarged_index = None
            if self.enlarged is not None:
                self.enlarged.hide()
            self.enlarged_label.hide()
            return
        if self.enlarged is None:
            self.enlarged = Enlarged(self._hw_tile)
            self.body.addWidget(self.enlarged)
        self.enlarged_index = index
        self._paint_enlarged()
        self.enlarged.show()
        self.enlarged_label.show()

    def _paint_enlarged(self) -> None:
        i = self.enlarged_index
        if i is None or self.grid.shown is None or self.enlarged is None:
            return
        self.enlarged.item.setImage(self.grid.shown[i], levels=None, autoLevels=False)
        self.enlarged_label.setText(f"{self._tile_name(i)}, enlarged (click it in the grid again to close)")

    def _tile_name(self, i: int) -> str:
        return f"channel {i}"

    def update_from(self, ctx) -> None:  # noqa: ANN001
        self.grid.show_rgb(stretched_rgb(ctx.arrays[self.keys[0]][: self.grid.n]))
        self._paint_enlarged()


class FilterSection(FeatureMapSection):
    """A conv layer's weights (out, in, ky, kx): one row of ``in`` tiles per output filter."""

    def __init__(self, keys: list[str], info: dict[str, dict], arrays: list[np.ndarray]) -> None:
        o, i, kh, kw = arrays[0].shape
        Section.__init__(self, keys, info[keys[0]]["title"])
        cols = min(i, COLUMNS)
        n = min(o * i, MAX_MAPS)
        self.set_note(
            f"{o} filters × {i} input channels, ky × kx = {kh} × {kw}; tiles in (filter, input channel) "
            f"order, first {n}; colour: each tile from its own minimum to maximum weight"
        )
        self.grid = ChannelGrid(n, (kh, kw), cols=cols)
        self.body.addWidget(self.grid)
        self._in = i
        self._add_enlarged((kh, kw), "filter")

    def _tile_name(self, k: int) -> str:
        return f"filter {k // self._in}, input channel {k % self._in}"

    def update_from(self, ctx) -> None:  # noqa: ANN001
        a = ctx.arrays[self.keys[0]]
        self.grid.show_rgb(stretched_rgb(a.reshape(-1, *a.shape[2:])[: self.grid.n]))
        self._paint_enlarged()
