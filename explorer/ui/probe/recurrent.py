"""One recurrent layer and direction: time × units, with its state, every gate and the cell state
selectable (the entries the declaration groups under that layer and direction)."""

from __future__ import annotations

import html
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg

from .paint import HeatmapPlot, Section, Selector, levels_for, set_text
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
        self._plot_height = int(min(190, max(140, 70 + 4 * units)))
        # the plot, its place in the layout, its colour bar and its first view range and levels are
        # built by build_step, each in its own event-loop turn (together they cost more than a frame)
        self.plot: HeatmapPlot | None = None
        self._first: np.ndarray | None = arrays[0]  # what the first paint will show, for build_step
        self._arrays: dict[str, np.ndarray] = {}
        #: called with (time step, the input box (y0, x0, y1, x1) it read) under the mouse, or (None, None)
        self.on_hover: Callable[[int | None, tuple | None], None] | None = None
        self.hovered: int | None = None
        self._marker: pg.InfiniteLine | None = None

    def build_step(self) -> bool:
        if self.plot is None:
            self.plot = HeatmapPlot("time step", "unit", "value", height=self._plot_height, bar=False)
            return True
        if self._marker is None:  # into the layout (its view is created and shown: several ms)
            self.body.addWidget(self.plot)
            self._marker = pg.InfiniteLine(angle=90, pen=pg.mkPen("#ff1744", width=2))
            self._marker.hide()
            self.plot.plot.addItem(self._marker)
            self.plot.scene().sigMouseMoved.connect(self._on_mouse)
            return True
        if self.plot.build_bar():
            return True
        if self._first is not None:  # the view range and colour levels the first paint would set
            a = np.asarray(self._first, dtype=np.float32).reshape(self._first.shape[0], -1)
            self.plot.set_extent(a.shape[1], a.shape[0])
            self.plot.set_levels(levels_for(a, self._info[self.selected].get("range")))
            self._first = None
            return True
        return False

    def _build(self) -> None:
        """Finishes building (for a caller that paints without the probe view's build steps)."""
        while self.build_step():
            pass

    def _on_mouse(self, pos) -> None:  # noqa: ANN001 - a scene position
        a = self._arrays.get(self.selected)
        p = self.plot.plot.vb.mapSceneToView(pos)
        inside = a is not None and self.plot.plot.vb.sceneBoundingRect().contains(pos)
        t = int(np.floor(p.x())) if inside else -1
        self.hover_step(t if 0 <= t < a.shape[0] else None)

    def hover_step(self, t: int | None) -> None:
        """Marks time step ``t`` (None: none) and tells ``on_hover`` which input box it read."""
        if t == self.hovered:
            return
        self.hovered = t
        self._build()
        regions = self._info[self.selected].get("regions")
        box = tuple(regions[t]) if t is not None and regions and t < len(regions) else None
        self._marker.setVisible(t is not None)
        if t is not None:
            self._marker.setValue(t + 0.5)
        if self.on_hover is not None:
            self.on_hover(t, box)

    def select(self, key: str) -> None:
        """Shows entry ``key`` (one of this section's keys)."""
        self.selected = key
        self.buttons[key].setChecked(True)
        set_text(self.title, f"<b>{html.escape(self._info[key]['title'])}</b>")
        if key in self._arrays:
            self._paint()

    def update_from(self, ctx) -> None:  # noqa: ANN001
        self._arrays = {k: ctx.arrays[k] for k in self.keys}
        self._paint()

    def _paint(self) -> None:
        self._build()
        d = self._info[self.selected]
        a = np.asarray(self._arrays[self.selected], dtype=np.float32)
        a = a.reshape(a.shape[0], -1)  # declared axes (time, unit)
        levels = levels_for(a, d.get("range"))
        self.shown = a
        self.plot.show_values(a.T, levels)  # time along x, units along y
        t, u = a.shape
        bounded = "the declared range" if d.get("range") is not None else "symmetric, at least ±1"
        hint = "; hover a time step to see on the image what it read" if d.get("regions") else ""
        self.set_note(f"{t} time steps × {u} units; colour levels {levels[0]:g} … {levels[1]:g} ({bounded}){hint}")
