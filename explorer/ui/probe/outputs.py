"""What the model outputs for the probe image, by the declared output kind: class probabilities as
bars (``logits``), per-frame CTC probabilities with characters on the y axis (``ctc_frames``), and
the decoded text or caption, shown large."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from ..style import COLORS
from .paint import Axes, HeatmapPlot, Section, set_text

__all__ = ["CtcPlot", "CtcSection", "OutputPanel", "ctc_class_names"]

BLANK = "blank"
TICK_PX = 12  # at least this many pixels between character ticks
CTC_LEVELS = (0.0, 1.0)  # probabilities


def ctc_class_names(classes: int, charset: Sequence[str]) -> list[str]:
    """Class 0 is the CTC blank, class i >= 1 is ``charset[i - 1]`` (a space shown as ␣)."""
    names = [BLANK]
    for i in range(1, classes):
        c = str(charset[i - 1]) if i - 1 < len(charset) else f"?{i}"
        names.append("␣" if c == " " else c)
    return names


class CtcPlot(HeatmapPlot):
    """(time, class) probabilities: time along x, one row per class labelled by its character."""

    def __init__(self, *, bar: bool = True) -> None:
        super().__init__("time step (frame)", "character", "probability", height=170, bar=bar)
        self.names: list[str] = []
        self.named_ticks.add("left")

    def show_frames(self, probs: np.ndarray, charset: Sequence[str]) -> None:
        probs = np.asarray(probs, dtype=np.float32)
        names = ctc_class_names(probs.shape[1], charset)
        if names != self.names:
            self.names = names
            rows = len(names)
            self.setFixedHeight(int(min(360, max(170, rows * 13 + 60))))
            every = max(1, int(np.ceil(TICK_PX * rows / max(self.height() - 60, 1))))
            ticks = [(i + 0.5, n) for i, n in enumerate(names) if i % every == 0]
            self.plot.getAxis("left").setTicks([ticks, []])
        self.show_values(probs.T, CTC_LEVELS)  # rows = classes, columns = frames


class CtcSection(Section):
    """A declared ``ctc_frames`` intermediate (the same view as the output's)."""

    @staticmethod
    def layout_of(arrays: list[np.ndarray]) -> tuple:
        return ()

    def __init__(self, keys: list[str], info: dict[str, dict], arrays: list[np.ndarray]) -> None:
        super().__init__(keys, info[keys[0]]["title"])
        self.plot = CtcPlot()
        self.body.addWidget(self.plot)

    def update_from(self, ctx) -> None:  # noqa: ANN001
        self.plot.show_frames(ctx.arrays[self.keys[0]], ctx.labels)


class OutputPanel(QWidget):
    """The header's right column: where the probe comes from, the decoded text, and the output plot."""

    def __init__(self) -> None:
        super().__init__()
        self.where = QLabel("Start training to see what the model sees.")
        self.where.setWordWrap(True)
        self.where.setProperty("role", "hint")
        self.text = QLabel("")
        self.text.setWordWrap(True)
        self.text.setTextFormat(Qt.TextFormat.PlainText)  # captions may hold "<unk>"
        self.text.setStyleSheet("font-size: 17px; font-weight: 600;")
        self.text.hide()
        self.bars_plot = pg.GraphicsLayoutWidget()
        self.bars_plot.setBackground("w")
        self.bars_plot.setFixedHeight(170)  # a bar area of ~110 px: the 0 / 0.5 / 1 ticks stay apart
        self.bars_axes = bp = Axes("class", "probability")
        self.bars_plot.addItem(bp, row=0, col=0)
        bp.setRange(yRange=(0, 1), padding=0.02)
        bp.getAxis("left").setTicks([[(0.0, "0"), (0.5, "0.5"), (1.0, "1")]])
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.6, brush=COLORS["train"])
        bp.addItem(self.bars)
        self.bars_plot.hide()
        self._ctc: CtcPlot | None = None  # built (by build_step) for a CTC model only
        self._ctc_primed = False
        self._lay = lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.where)
        lay.addWidget(self.text)
        lay.addWidget(self.bars_plot)
        lay.addStretch(1)
        self._tick_labels: list[str] = []

    def build_step(self, kind: str | None) -> bool:
        """Builds a piece of what output ``kind`` is shown with (the CTC plot: its axes, its colour
        bar, then showing it with its levels set, each in its own event-loop turn, so that neither
        the building nor the first paint holds the window for long); False when nothing is left."""
        if kind != "ctc_frames":
            return False
        if self._ctc is None:
            self._ctc = CtcPlot(bar=False)
            self._ctc.hide()
            self._lay.insertWidget(3, self._ctc)
            return True
        if self._ctc.build_bar():
            return True
        if not self._ctc_primed:  # once: what the first paint would do
            self._ctc_primed = True
            self._ctc.set_levels(CTC_LEVELS)
            self._ctc.show()
            return True
        return False

    @property
    def ctc(self) -> CtcPlot:
        """The per-frame CTC plot (most models never need it; a probe view builds it in steps with
        :meth:`build_step` before the first paint, anyone else gets it built here)."""
        while self.build_step("ctc_frames"):
            pass
        return self._ctc

    @property
    def ctc_shown(self) -> bool:
        return self._ctc is not None and self._ctc.isVisible()

    def clear(self) -> None:
        self.bars.setOpts(x=[], height=[])
        self.text.hide()
        self.where.setText("Start training to see what the model sees.")

    def update_from(self, ctx) -> None:  # noqa: ANN001
        r = ctx.report
        kind = (r.output_info or {}).get("kind")
        when = f"epoch {r.epoch}, step {r.global_step}" if r.epoch or r.global_step else "the opened model's weights"
        self.where.setText(f"<b>{html.escape(Path(r.path).name)}</b> ({when})")
        self.bars_plot.setVisible(kind == "logits")
        if kind == "ctc_frames" or self._ctc is not None:
            self.ctc.setVisible(kind == "ctc_frames")
        if kind == "logits":
            self._show_bars(np.asarray(r.probabilities, dtype=float), ctx.labels)
        elif kind == "ctc_frames":
            self.ctc.show_frames(r.probabilities, ctx.labels)
        text = r.text if r.text is not None else (" ".join(ctx.words) if ctx.words else None)
        if kind != "logits" and text is not None:
            verb = "reads" if kind == "ctc_frames" else "says"
            self._set_text(f"the model {verb}: «{text}»" if text else f"the model {verb} nothing yet")
        elif kind != "logits" or not len(r.probabilities):
            self.text.hide()

    def _show_bars(self, probs: np.ndarray, labels: Sequence[str]) -> None:
        names = [str(labels[i]) if i < len(labels) else str(i) for i in range(len(probs))]
        if names != self._tick_labels:
            self._tick_labels = names
            every = max(1, len(names) // 20)
            self.bars_axes.getAxis("bottom").setTicks([[(i, n[:10]) for i, n in enumerate(names) if i % every == 0]])
            self.bars_axes.setRange(xRange=(-0.6, max(len(names), 1) - 0.4), padding=0)
        self.bars.setOpts(x=np.arange(len(probs)), height=probs, width=0.6)
        if len(probs):
            k = int(np.argmax(probs))
            self._set_text(f"the model says: {names[k]} ({probs[k]:.0%})")

    def _set_text(self, text: str) -> None:
        size = 17 if len(text) <= 70 else 14  # a long caption stays a few lines
        if self.text.property("size") != size:
            self.text.setProperty("size", size)
            self.text.setStyleSheet(f"font-size: {size}px; font-weight: 600;")
        set_text(self.text, text)
        if self.text.isHidden():
            self.text.show()
