"""Channel grids: conv feature maps (channel, y, x) and first-layer filters (out, in, ky, kx).

One ``ImageItem`` per tile inside one view box, created a few at a time (``build_step``) and then
only fed new RGB bytes.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg

from .paint import MAPS_CMAP, Section, colorize, lut, normalize_maps

__all__ = ["ChannelGrid", "FeatureMapSection", "FilterSection", "MAX_MAPS"]

MAX_MAPS = 32  # tiles shown per layer
COLUMNS = 8
CELL_PX = 54  # on-screen side of a square tile (others keep about its area)
MAX_TILE_PX = 96  # no tile side longer than this on screen
MAX_GRID_PX = 620  # the whole grid's width at most
BAR_PX = 80  # room for a colour bar and its axis
ITEMS_PER_STEP = 8


class ChannelGrid(pg.GraphicsLayoutWidget):
    """``n`` tiles of (h, w) pixels, ``cols`` per row, tile i at row i // cols, column i % cols."""

    def __init__(self, n: int, hw: tuple[int, int], cols: int = COLUMNS) -> None:
        super().__init__()
        h, w = hw
        self.n = n
        self.cols = cols = max(1, min(cols, n))
        rows = (n + cols - 1) // cols
        self._hw = hw
        self._gap = gap = max(1.0, 0.08 * max(h, w))
        self.setBackground("w")
        self.ci.setContentsMargins(0, 0, 0, 0)
        self.vb = self.addViewBox(row=0, col=0, lockAspect=True, enableMouse=False, invertY=True)
        self.vb.setMenuEnabled(False)
        span = (cols * (w + gap) - gap, rows * (h + gap) - gap)
        self.vb.setRange(xRange=(0, span[0]), yRange=(0, span[1]), padding=0)
        self.items: list[pg.ImageItem] = []
        # screen pixels per map pixel: tiles of about CELL_PX² on screen, no side over MAX_TILE_PX,
        # the grid no wider than MAX_GRID_PX
        scale = min(CELL_PX / math.sqrt(h * w), MAX_TILE_PX / w, MAX_TILE_PX / h, MAX_GRID_PX / span[0])
        self._size = (int(math.ceil(span[0] * scale)) + 2, int(math.ceil(span[1] * scale)) + 2)
        self.setFixedSize(*self._size)

    @property
    def complete(self) -> bool:
        return len(self.items) == self.n

    def add_bar(self, label: str) -> None:
        """A colour bar right of the tiles, for grids whose tiles share one set of levels."""
        self.bar = pg.ColorBarItem(
            values=(0.0, 1.0), width=12, colorMap=pg.colormap.get(MAPS_CMAP), label=label, interactive=False,
            pen="#90a4ae",
        )  # fmt: skip
        self.addItem(self.bar, row=0, col=1)
        self._levels: tuple[float, float] | None = None
        self.ci.setContentsMargins(0, 8, 0, 8)
        self.setFixedSize(self._size[0] + BAR_PX, max(self._size[1] + 16, 120))

    def set_bar(self, levels: tuple[float, float], cmap: str) -> None:
        if levels != self._levels:
            self._levels = levels
            self.bar.setColorMap(pg.colormap.get(cmap))
            self.bar.setLevels(levels)

    def add_items(self, count: int) -> None:
        h, w = self._hw
        for i in range(len(self.items), min(self.n, len(self.items) + count)):
            r, col = divmod(i, self.cols)
            item = pg.ImageItem(axisOrder="row-major")
            item.setPos(col * (w + self._gap), r * (h + self._gap))
            self.vb.addItem(item)
            self.items.append(item)

    def show_rgb(self, rgb: np.ndarray) -> None:
        """(n, h, w, 3) RGB bytes, one tile each."""
        for item, m in zip(self.items, rgb):
            item.setImage(m, levels=None, autoLevels=False)


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
        self.note.setText(
            f"{shown}, one tile each (row by row), y × x = {h} × {w}; colour: each tile from its own "
            "minimum (dark) to maximum (yellow)"
        )
        self.grid = ChannelGrid(n, (h, w))
        self.body.addWidget(self.grid)

    def build_step(self) -> bool:
        if self.grid.complete:
            return False
        self.grid.add_items(ITEMS_PER_STEP)
        return True

    def update_from(self, ctx) -> None:  # noqa: ANN001
        self.grid.show_rgb(stretched_rgb(ctx.arrays[self.keys[0]][: self.grid.n]))


class FilterSection(FeatureMapSection):
    """A conv layer's weights (out, in, ky, kx): one row of ``in`` tiles per output filter."""

    def __init__(self, keys: list[str], info: dict[str, dict], arrays: list[np.ndarray]) -> None:
        o, i, kh, kw = arrays[0].shape
        Section.__init__(self, keys, info[keys[0]]["title"])
        cols = min(i, COLUMNS)
        n = min(o * i, MAX_MAPS)
        self.note.setText(
            f"{o} filters × {i} input channels, ky × kx = {kh} × {kw}; tiles in (filter, input channel) "
            f"order, first {n}; colour: each tile from its own minimum to maximum weight"
        )
        self.grid = ChannelGrid(n, (kh, kw), cols=cols)
        self.body.addWidget(self.grid)

    def update_from(self, ctx) -> None:  # noqa: ANN001
        a = ctx.arrays[self.keys[0]]
        self.grid.show_rgb(stretched_rgb(a.reshape(-1, *a.shape[2:])[: self.grid.n]))
