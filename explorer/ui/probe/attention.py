"""Soft attention (token, y, x) over the encoder grid: the probe image with the map of the chosen
word laid over it, each grid cell covering the input box the declaration's ``grid`` gives it.

The caption's words are buttons; Play steps through them on a timer. The beam search's candidates
(``report.candidates``, best first, with their scores) are listed below: clicking one shows its
words and their attention, "forward pass" goes back to the greedy caption the probe computed. A
replayed epoch shows the candidates its snapshot kept; a snapshot written before they were kept
has none (``candidates`` None), and a line says so."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
)

from .paint import OVERLAY_CMAP, TOGGLE_QSS, BarLevels, ColorBar, FixedRange, Section, colorize, lut, to_u8
from .toggles import ToggleGrid

__all__ = ["AttentionSection", "upsample", "overlay"]

WORDS_PER_ROW = 8
PLAY_MS = 800  # per word while playing
ALPHA = 0.6  # weight of the attention colours over the image
NOT_KEPT = "beam candidates: none kept with this report (an epoch snapshot written before they were kept)"


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
        self._words_box = ToggleGrid(WORDS_PER_ROW, self.select)
        self.body.addWidget(self._words_box)
        controls = QHBoxLayout()
        self.play_button = QPushButton("▶ Play")
        self.play_button.setCheckable(True)
        self.play_button.setToolTip("step through the words, one every %.1f s" % (PLAY_MS / 1000))
        self.play_button.setStyleSheet(TOGGLE_QSS)
        self.play_button.toggled.connect(self.play)
        controls.addWidget(self.play_button)
        controls.addStretch(1)
        self.body.addLayout(controls)
        self._play_timer = QTimer(self)
        self._play_timer.setInterval(PLAY_MS)
        self._play_timer.timeout.connect(self._next_word)
        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground("w")
        self.view.setFixedHeight(230)
        self.vb = self.view.addViewBox(row=0, col=0, lockAspect=True, enableMouse=False, invertY=True, enableMenu=False)
        self.item = pg.ImageItem(axisOrder="row-major")
        self.vb.addItem(self.item)
        self.bar = ColorBar("attention weight", OVERLAY_CMAP)
        self.view.addItem(self.bar, row=0, col=1)
        self._range = FixedRange(self.vb)
        self._bar = BarLevels(self.bar)
        self.body.addWidget(self.view)
        self.beam_title = QLabel("")
        self.beam_title.setProperty("role", "hint")
        self.beam_title.setWordWrap(True)
        self.beam = QListWidget()
        self.beam.setMaximumHeight(96)
        self.beam.itemClicked.connect(lambda item: self.show_candidate(self.beam.row(item)))
        self.beam_title.hide()
        self.beam.hide()
        self.body.addWidget(self.beam_title)
        self.body.addWidget(self.beam)
        self.candidate: int | None = None  # the beam candidate shown (None: the forward pass's caption)
        self._candidates: list[dict] = []
        self._beam_key: list[tuple] = []  # what the listed rows show (rebuilt only when it changes)
        self._forward: tuple[np.ndarray, list[str]] | None = None
        self._maps: np.ndarray | None = None
        self._image: np.ndarray | None = None
        self.shown_map: np.ndarray | None = None  # the (gh, gw) map painted last (tests)

    def update_from(self, ctx) -> None:  # noqa: ANN001
        maps = ctx.arrays[self.keys[0]]
        self._image = ctx.image
        n = maps.shape[0]
        words = [ctx.words[i] if i < len(ctx.words) else f"#{i + 1}" for i in range(n)]
        self._forward = (maps, words)
        cands = getattr(ctx.report, "candidates", None)
        self._set_candidates(list(cands or []))
        if cands is None:
            self.beam_title.setText(NOT_KEPT)
        self.beam_title.setVisible(bool(self._candidates) or cands is None)
        if self.candidate is not None and self.candidate < len(self._candidates):
            self.beam.setCurrentRow(self.candidate)
            c = self._candidates[self.candidate]
            maps, words = np.asarray(c["alphas"]), list(c["words"])
        else:
            self.candidate = None
        self._show(maps, words)

    def _show(self, maps: np.ndarray, words: list[str]) -> None:
        self._maps = maps
        if words != self.words:
            self._set_words(words)
        self.selected = min(self.selected, max(maps.shape[0] - 1, 0))
        self._paint()

    def _set_candidates(self, cands: list[dict]) -> None:
        rows = [f"{float(c['score']):+.3f}   {' '.join(c['words']) or '(nothing)'}" for c in cands]
        self._candidates = cands
        self.beam_title.setText(
            f"beam search, {len(cands)} candidates, best first (score: the caption's log-probability, "
            "length-normalised; click one to see its words' attention)"
        )
        key = [(c["score"], c.get("logp"), c.get("ended"), list(c["words"])) for c in cands]
        if self.beam.count() and key == self._beam_key:
            return
        self._beam_key = key
        self.beam.clear()
        forward = QListWidgetItem("forward pass (greedy): the caption above")
        forward.setToolTip("the words the probe's forward pass emitted, one at a time, each the most likely")
        for c, row in zip(cands, rows):
            item = QListWidgetItem(row)
            item.setToolTip(
                f"score {float(c['score']):.4f} = log-probability {float(c['logp']):.4f} / steps ** 0.7"
                + (" (ended at END)" if c.get("ended") else " (stopped at the length limit)")
            )
            self.beam.addItem(item)
        self.beam.addItem(forward)
        self.beam_title.setVisible(bool(cands))
        self.beam.setVisible(bool(cands))

    @property
    def candidate_rows(self) -> list[str]:
        """The listed beam candidates' text (tests)."""
        return [self.beam.item(i).text() for i in range(len(self._candidates))]

    def show_candidate(self, index: int | None) -> None:
        """Shows beam candidate ``index``'s words and attention (None, or the last row: the
        forward pass's caption)."""
        if index is None or not 0 <= index < len(self._candidates):
            self.candidate = None
            if self._forward is not None:
                self._show(*self._forward)
            return
        self.candidate = index
        self.beam.setCurrentRow(index)
        c = self._candidates[index]
        self._show(np.asarray(c["alphas"]), list(c["words"]))

    def play(self, on: bool) -> None:
        """Starts (from the first word when at the last) or stops stepping through the words."""
        if self.play_button.isChecked() != on:
            self.play_button.setChecked(on)  # re-enters through toggled
            return
        if on:
            if self.selected >= len(self.words) - 1:
                self.select(0)
            self._play_timer.start()
            self.play_button.setText("❚❚ Pause")
        else:
            self._play_timer.stop()
            self.play_button.setText("▶ Play")

    def _next_word(self) -> None:
        if self.selected + 1 >= len(self.words):
            self.play(False)
            return
        self.select(self.selected + 1)

    def select(self, index: int) -> None:
        """Shows the attention of word ``index``."""
        self.selected = index
        self._words_box.check(index)
        if self._maps is not None:
            self._paint()

    @property
    def buttons(self) -> list[QPushButton]:
        """One button per word, in order."""
        return self._words_box.buttons

    def _set_words(self, words: list[str]) -> None:
        self.words = words
        self._words_box.set_items(
            [(w, f"word {i + 1}: where the decoder looked when it emitted '{w}'") for i, w in enumerate(words)]
        )
        if not words:
            self.set_note("no words emitted yet")

    def _paint(self) -> None:
        maps, image = self._maps, self._image
        if maps is None or maps.shape[0] == 0 or image is None:
            self.item.clear()
            self.shown_map = None
            return
        i = self.selected
        self._words_box.check(i)
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
