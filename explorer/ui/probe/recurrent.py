"""One recurrent layer and direction: time × units, with its state, every gate and the cell state
selectable (the entries the declaration groups under that layer and direction)."""

from __future__ import annotations

import html

import numpy as np

from .paint import HeatmapPlot, Section, Selector, levels_for
from .plan import option_label

__all__ = ["RecurrentSection"]


class RecurrentSection(Section):
    """Shows one of ``keys`` at a time (the selector's choice) as a (unit, time) heatmap."""

    @staticmethod
    def layout_of(arrays: list[np.ndarray]) -> tuple:
        return ()  # the plot follows any length and width

    def __init__(self, keys: list[str], info: dict[str, dict], arrays: list[np.ndarray]) -> None:
        super().__init__(keys, info[keys[0]]["title"])
        self._info = {k: info[k] for k in keys}
        self.selected = keys[0]
        self.shown: np.ndarray | None = None  # the array painted last (tests)
        self.selector = Selector({k: (option_label(info[k]), info[k]["title"]) for k in keys}, self.select)
        self.buttons = self.selector.buttons
        self.body.addWidget(self.selector)
        units = int(np.prod(arrays[0].shape[1:]))
        self.plot = HeatmapPlot("time step", "unit", "value", height=int(min(190, max(140, 70 + 4 * units))))
        self.body.addWidget(self.plot)
        self._arrays: dict[str, np.ndarray] = {}

    def select(self, key: str) -> None:
        """Shows entry ``key`` (one of this section's keys)."""
        self.selected = key
        self.buttons[key].setChecked(True)
        self.title.setText(f"<b>{html.escape(self._info[key]['title'])}</b>")
        if key in self._arrays:
            self._paint()

    def update_from(self, ctx) -> None:  # noqa: ANN001
        self._arrays = {k: ctx.arrays[k] for k in self.keys}
        self._paint()

    def _paint(self) -> None:
        d = self._info[self.selected]
        a = np.asarray(self._arrays[self.selected], dtype=np.float32)
        a = a.reshape(a.shape[0], -1)  # declared axes (time, unit)
        levels = levels_for(a, d.get("range"))
        self.shown = a
        self.plot.show_values(a.T, levels)  # time along x, units along y
        t, u = a.shape
        bounded = "the declared range" if d.get("range") is not None else "symmetric, at least ±1"
        self.note.setText(f"{t} time steps × {u} units; colour levels {levels[0]:g} … {levels[1]:g} ({bounded})")
