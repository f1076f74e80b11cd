"""Rows of exclusive toggle buttons over items that change with every probe: a caption's words, the
Grad-CAM targets (predicted class, decoded characters, caption words).

During training the caption or the decoded text changes with nearly every probe. Deleting and
creating the buttons each time was most of those sections' paint time (widget creation, style
sheet polish, a relayout of the scrolled list); :class:`ToggleGrid` keeps its buttons, relabels
those still needed and hides the rest.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QButtonGroup, QGridLayout, QPushButton, QWidget

from .paint import TOGGLE_QSS

__all__ = ["ToggleGrid"]


class ToggleGrid(QWidget):
    """Exclusive toggle buttons, ``per_row`` to a row, one per item (text, tooltip);
    ``on_select(i)`` when button ``i`` is clicked. ``buttons`` are the shown ones, in order."""

    def __init__(self, per_row: int, on_select: Callable[[int], None]) -> None:
        super().__init__()
        self.setStyleSheet(TOGGLE_QSS)
        self._layout = QGridLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setHorizontalSpacing(4)
        self._group = QButtonGroup(self)
        self._per_row = per_row
        self._on_select = on_select
        self._pool: list[QPushButton] = []  # every button made so far; the first len(items) are shown
        self.buttons: list[QPushButton] = []
        self.items: list[tuple[str, str]] = []

    def set_items(self, items: list[tuple[str, str]]) -> None:
        """Shows one button per (text, tooltip), reusing the buttons there are."""
        if items == self.items:
            return
        while len(self._pool) < len(items):
            i = len(self._pool)
            b = QPushButton()
            b.setCheckable(True)
            b.clicked.connect(lambda _=False, k=i: self._on_select(k))
            self._group.addButton(b)
            self._layout.addWidget(b, i // self._per_row, i % self._per_row)
            self._pool.append(b)
        for b, (text, tip) in zip(self._pool, items):
            if b.text() != text:
                b.setText(text)
            if b.toolTip() != tip:
                b.setToolTip(tip)
            if b.isHidden():
                b.show()
        for b in self._pool[len(items) :]:
            if not b.isHidden():
                b.hide()
        self.buttons = self._pool[: len(items)]
        self.items = list(items)

    def check(self, index: int) -> None:
        """Checks button ``index`` (the group unchecks the others); out of range: nothing."""
        if 0 <= index < len(self.buttons):
            self.buttons[index].setChecked(True)
