"""A convolutional cell (ConvRNN / ConvGRU / ConvLSTM): its spatial state (time, channel, y, x)
and, where declared, its spatial gates and cell state, as the channels of one time step picked
with a slider (the last step until the user moves it)."""

from __future__ import annotations

import html

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider

from .feature_maps import MAX_MAPS, ChannelGrid
from .paint import Section, Selector, cmap_for, colorize, levels_for, lut, set_text, to_u8
from .plan import option_label

__all__ = ["SpatialStateSection"]


class SpatialStateSection(Section):
    @staticmethod
    def layout_of(arrays: list[np.ndarray]) -> tuple:
        return tuple(a.shape[1:] for a in arrays)  # tiles depend on (channel, y, x), not on the steps

    def __init__(self, keys: list[str], info: dict[str, dict], arrays: list[np.ndarray]) -> None:
        _, c, h, w = arrays[0].shape
        super().__init__(keys, info[keys[0]]["title"])
        self._info = {k: info[k] for k in keys}
        self.selected = keys[0]
        self._follow_last = True
        self._arrays: dict[str, np.ndarray] = {}
        self.shown: np.ndarray | None = None  # the (channel, y, x) maps painted last (tests)
        self.selector = Selector({k: (option_label(info[k]), info[k]["title"]) for k in keys}, self.select)
        self.buttons = self.selector.buttons
        self.body.addWidget(self.selector)
        row = QHBoxLayout()
        self.step_label = QLabel("time step")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 0)
        self.slider.setPageStep(1)
        self.slider.valueChanged.connect(self._on_step)
        row.addWidget(self.step_label)
        row.addWidget(self.slider, 1)
        self.body.addLayout(row)
        self.grid = ChannelGrid(min(c, MAX_MAPS), (h, w))
        self.grid.add_bar("value")
        self.body.addWidget(self.grid)
        self._shape = (c, h, w)
        self.step = 0
        #: called with (time step, the input box it read) when the slider moves (the image marks it)
        self.on_hover = None

    def select(self, key: str) -> None:
        self.selected = key
        self.buttons[key].setChecked(True)
        self.title.setText(f"<b>{html.escape(self._info[key]['title'])}</b>")
        if self._arrays:
            self._paint()

    def update_from(self, ctx) -> None:  # noqa: ANN001
        self._arrays = {k: ctx.arrays[k] for k in self.keys}
        last = self._arrays[self.selected].shape[0] - 1
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(last, 0))
        if self._follow_last:
            self.slider.setValue(last)
        self.slider.blockSignals(False)
        self._paint()

    def _on_step(self, value: int) -> None:
        self._follow_last = value == self.slider.maximum()
        if self._arrays:
            self._paint()
        regions = self._info[self.selected].get("regions")
        if self.on_hover is not None:
            self.on_hover(value, tuple(regions[value]) if regions and value < len(regions) else None)

    def _paint(self) -> None:
        d = self._info[self.selected]
        a = self._arrays[self.selected]
        self.step = t = min(self.slider.value(), a.shape[0] - 1)
        set_text(self.step_label, f"time step {t + 1} of {a.shape[0]}")
        levels = levels_for(a, d.get("range"))  # over all steps: colours mean the same on every step
        self.shown = maps = np.asarray(a[t, : self.grid.n], dtype=np.float32)
        self.grid.show_rgb(colorize(to_u8(maps, levels), lut(cmap_for(levels))))
        self.grid.set_bar(levels, cmap_for(levels))
        c, h, w = self._shape
        n = self.grid.n
        shown = f"channels 0-{n - 1} of {c}" if c > n else f"{c} channels"
        bounded = "the declared range" if d.get("range") is not None else "symmetric, at least ±1, over all steps"
        self.set_note(
            f"{shown} at one time step, one tile each (row by row), y × x = {h} × {w}; "
            f"colour levels {levels[0]:g} … {levels[1]:g} ({bounded}), the same for every tile"
        )
