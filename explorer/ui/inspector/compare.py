"""Probe views side by side: one :class:`~explorer.ui.probe.ProbeView` per image looked at, in a
splitter (drag to give one more room); a report goes to the view of its image."""

from __future__ import annotations

import os
from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSplitter, QVBoxLayout, QWidget

from explorer.engine import ProbeReport

from ..probe import ProbeView

__all__ = ["CompareArea"]


class CompareArea(QWidget):
    def __init__(self) -> None:
        super().__init__()
        self.views: dict[str, ProbeView] = {}
        self._labels: list[str] = []
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setChildrenCollapsible(False)
        self.empty = QLabel("Pick an image in the strip above (tick several to compare them side by side).")
        self.empty.setProperty("role", "hint")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.empty)
        layout.addWidget(self.splitter, 1)

    def set_labels(self, labels: Sequence[str]) -> None:
        self._labels = [str(s) for s in labels]
        for v in self.views.values():
            v.set_labels(self._labels)

    def set_paths(self, paths: Sequence[str]) -> None:
        """One view per path, in order; views of paths still shown are kept (no rebuild)."""
        paths = list(dict.fromkeys(str(p) for p in paths))
        for p in [p for p in self.views if p not in paths]:
            view = self.views.pop(p)
            view.stop()
            view.setParent(None)
            view.deleteLater()
        for i, p in enumerate(paths):
            if p not in self.views:
                view = ProbeView()
                view.set_labels(self._labels)
                view.caption.setText(f"<b>{os.path.basename(p)}</b>: waiting for the model…")
                self.views[p] = view
            self.splitter.insertWidget(i, self.views[p])
        if paths:
            self.splitter.setSizes([1000] * len(paths))
        self.empty.setVisible(not paths)

    def paths(self) -> list[str]:
        return list(self.views)

    def show_report(self, report: ProbeReport, add: bool = False) -> bool:
        """Sends ``report`` to its image's view (with ``add``, makes one when there is none);
        False when no view shows that image."""
        view = self.views.get(str(report.path))
        if view is None and add:
            self.set_paths([*self.views, str(report.path)])
            view = self.views[str(report.path)]
        if view is None:
            return False
        view.set_report(report)
        return True

    def stop(self) -> None:
        for v in self.views.values():
            v.stop()
