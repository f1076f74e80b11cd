"""Soft attention (token, y, x) over the encoder grid: the probe image with the map of the chosen
word laid over it, each grid cell covering the input box the declaration's ``grid`` gives it."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QButtonGroup, QGridLayout, QPushButton, QWidget

from .paint import OVERLAY_CMAP, TOGGLE_QSS, BarLevels, FixedRange, Section, colorize, lut, to_u8

__all__ = ["AttentionSection", "upsample", "overlay"]

WORDS_PER_ROW = 10
ALPHA = 0.6  # weight of the attention colours over the image


def upsample(amap: np.ndarray, grid: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """(gh, gw) -> (H, W): pixel (y, x) takes the value of the grid cell whose input box holds it
    (cell (i, j) covers rows i*H//gh .. (i+1)*H//gh, as ``models._intermediates.cell_box``)."""
    (gh, gw), (h, w) = grid, size
    iy = np.searchsorted(np.arange(gh) * h // gh, np.arange(h), side="right") - 1
    ix = np.searchsorted(np.arange(gw) * w // gw, np.arange(w), side="right") - 1
    return np.asarray(amap, dtype=np.float32)[iy[:, None], ix[None, :]]


def overlay(image: np.ndarray, amap: np.ndarray, grid: tuple[int, int]) -> tuple[np.ndarray, tuple[float, float]]:
    """The image (H, W, C) uint8 with ``amap`` over it as RGB bytes, and the levels used
    (0 .. the map's maximum)."""
    rgb = image if image.ndim == 3 and image.shape[2] == 3 else np.repeat(image.reshape(*image.shape[:2], 1), 3, 2)
    up = upsample(amap, grid, rgb.shape[:2])
    levels = (0.0, float(max(up.max(), 1e-6)))
    heat = colorize(to_u8(up, levels), lut(OVERLAY_CMAP))
    out = (1.0 - ALPHA) * rgb.astype(np.float32) + ALPHA * heat.astype(np.float32)
    return np.ascontiguousarray(np.clip(out + 0.5, 0, 255).astype(np.uint8)), levels


class AttentionSection(Section):
    @staticmethod
    def layout_of(arrays: list[np.ndarray]) -> tuple:
        return ()  # words come and go with every caption; buttons are rebuilt only when they change

    def __init__(self, keys: list[str], info: dict[str, dict], arrays: list[np.ndarray]) -> None:
        d = info[keys[0]]
        super().__init__(keys, d["title"])
        self._grid = tuple(d["grid"]) if d.get("grid") is not None else tuple(arrays[0].shape[1:])
        self.selected = 0
        self.words: list[str] = []
        self.buttons: list[QPushButton] = []
        self._group = QButtonGroup(self)
        self._words_box = QWidget()
        self._words_box.setStyleSheet(TOGGLE_QSS)
        self._words_layout = QGridLayout(self._words_box)
        self._words_layout.setContentsMargins(0, 0, 0, 0)
        self._words_layout.setHorizontalSpacing(4)
        self.body.addWidget(self._words_box)
        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground("w")
        self.view.setFixedHeight(230)
        self.vb = self.view.addViewBox(row=0, col=0, lockAspect=True, enableMouse=False, invertY=True)
        self.vb.setMenuEnabled(False)
        self.item = pg.ImageItem(axisOrder="row-major")
        self.vb.addItem(self.item)
        self.bar = pg.ColorBarItem(
            values=(0.0, 1.0), width=12, colorMap=pg.colormap.get(OVERLAY_CMAP), label="attention weight",
            interactive=False, pen="#90a4ae",
        )  # fmt: skip
        self.view.addItem(self.bar, row=0, col=1)
        self._range = FixedRange(self.vb)
        self._bar = BarLevels(self.bar)
        self.body.addWidget(self.view)
        self._maps: np.ndarray | None = None
        self._image: np.ndarray | None = None
        self.shown_map: np.ndarray | None = None  # the (gh, gw) map painted last (tests)

    def update_from(self, ctx) -> None:  # noqa: ANN001
        self._maps = maps = ctx.arrays[self.keys[0]]
        self._image = ctx.image
        n = maps.shape[0]
        words = [ctx.words[i] if i < len(ctx.words) else f"#{i + 1}" for i in range(n)]
        if words != self.words:
            self._set_words(words)
        self.selected = min(self.selected, max(n - 1, 0))
        self._paint()

    def select(self, index: int) -> None:
        """Shows the attention of word ``index``."""
        self.selected = index
        if 0 <= index < len(self.buttons):
            self.buttons[index].setChecked(True)
        if self._maps is not None:
            self._paint()

    def _set_words(self, words: list[str]) -> None:
        for b in self.buttons:
            self._group.removeButton(b)
            self._words_layout.removeWidget(b)
            b.deleteLater()
        self.buttons = []
        self.words = words
        for i, word in enumerate(words):
            b = QPushButton(word)
            b.setCheckable(True)
            b.setToolTip(f"word {i + 1}: where the decoder looked when it emitted '{word}'")
            b.clicked.connect(lambda _=False, k=i: self.select(k))
            self._group.addButton(b)
            self._words_layout.addWidget(b, i // WORDS_PER_ROW, i % WORDS_PER_ROW)
            self.buttons.append(b)
        if not words:
            self.set_note("no words emitted yet")

    def _paint(self) -> None:
        maps, image = self._maps, self._image
        if maps.shape[0] == 0 or image is None:
            self.item.clear()
            self.shown_map = None
            return
        i = self.selected
        self.buttons[i].setChecked(True)
        self.shown_map = maps[i]
        rgb, levels = overlay(image, maps[i], self._grid)
        self.item.setImage(rgb, levels=None, autoLevels=False)
        self._range.fit(rgb.shape[1], rgb.shape[0])
        self._bar.set(levels)
        gh, gw = self._grid
        self.set_note(
            f"word {i + 1} of {maps.shape[0]}, '{self.words[i]}': its attention over the {gh} × {gw} encoder "
            f"grid (y × x), each cell drawn over the image region it covers; colour 0 … {levels[1]:.3g} "
            "(this word's largest weight; the weights of a word sum to 1)"
        )
