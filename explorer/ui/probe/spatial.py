"""A ConvRNN/ConvGRU/ConvLSTM hidden state (time, channel, y, x): the channels of one time step,
picked with a slider (the last step until the user moves it)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider

from .feature_maps import ITEMS_PER_STEP, MAX_MAPS, ChannelGrid, stretched_rgb
from .paint import Section, cmap_for, colorize, lut, to_u8

__all__ = ["SpatialStateSection"]


class SpatialStateSection(Section):
    @staticmethod
    def layout_of(arrays: list[np.ndarray]) -> tuple:
        return tuple(arrays[0].shape[1:])  # the grid depends on (channel, y, x), not on the steps

    def __init__(self, keys: list[str], info: dict[str, dict], arrays: list[np.ndarray]) -> None:
        _, c, h, w = arrays[0].shape
        d = info[keys[0]]
        super().__init__(keys, d["title"])
        self._range = d.get("range")
        self._follow_last = True
        self._array: np.ndarray | None = None
        n = min(c, MAX_MAPS)
        shown = f"channels 0-{n - 1} of {c}" if c > n else f"{c} channels"
        colour = (
            f"colour levels {self._range[0]:g} … {self._range[1]:g} (declared range), the same for every tile"
            if self._range is not None
            else "colour: each tile from its own minimum (dark) to maximum (yellow)"
        )
        self.note.setText(f"{shown} at one time step, one tile each, y × x = {h} × {w}; {colour}")
        row = QHBoxLayout()
        self.step_label = QLabel("time step")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 0)
        self.slider.setPageStep(1)
        self.slider.valueChanged.connect(self._on_step)
        row.addWidget(self.step_label)
        row.addWidget(self.slider, 1)
        self.body.addLayout(row)
        self.grid = ChannelGrid(n, (h, w))
        self.body.addWidget(self.grid)
        self.step = 0

    def build_step(self) -> bool:
        if self.grid.complete:
            return False
        self.grid.add_items(ITEMS_PER_STEP)
        return True

    def update_from(self, ctx) -> None:  # noqa: ANN001
        self._array = a = ctx.arrays[self.keys[0]]
        last = a.shape[0] - 1
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(last, 0))
        if self._follow_last:
            self.slider.setValue(last)
        self.slider.blockSignals(False)
        self._paint()

    def _on_step(self, value: int) -> None:
        self._follow_last = value == self.slider.maximum()
        if self._array is not None:
            self._paint()

    def _paint(self) -> None:
        a = self._array
        self.step = t = self.slider.value()
        self.step_label.setText(f"time step {t + 1} of {a.shape[0]}")
        maps = np.asarray(a[t, : self.grid.n], dtype=np.float32)
        if self._range is not None:
            levels = (float(self._range[0]), float(self._range[1]))
            rgb = colorize(to_u8(maps, levels), lut(cmap_for(levels)))
        else:
            rgb = stretched_rgb(maps)
        self.grid.show_rgb(rgb)
