"""The evaluation of the run on its validation images: the confusion matrix (classes, or
characters for a CTC reader) where clicking a cell lists the images in it, the most confidently
wrong images, and per-class precision / recall / F1. Computed on a worker thread
(:func:`explorer.engine.evaluation.validation_details`); double-click an image to look inside the
model with it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)  # fmt: skip

from ..probe.paint import HeatmapPlot
from .strip import ThumbnailStrip, load_thumbnails

__all__ = ["EvaluationView", "ConfusionPlot"]

EMPTY_NAME = "∅"  # the insertion / deletion row and column of the character confusion


class ConfusionPlot(HeatmapPlot):
    """Counts (rows = truth, columns = prediction), names on both axes, the count in each cell."""

    cellClicked = Signal(int, int)

    def __init__(self, what: str) -> None:
        super().__init__(f"predicted {what}", f"true {what}", "images", 360)
        self.named_ticks = {"bottom", "left"}
        self.counts: np.ndarray | None = None
        self._texts: list[pg.TextItem] = []
        self.setMinimumHeight(300)
        self.setMaximumHeight(16777215)  # grows with the panel
        self.scene().sigMouseClicked.connect(self._on_click)

    def set_counts(self, counts: np.ndarray, rows: list[str], columns: list[str]) -> None:
        self.counts = counts = np.asarray(counts)
        self.show_values(counts.astype(np.float32), (0.0, float(max(counts.max(), 1))))
        self.plot.getAxis("bottom").setTicks([[(j + 0.5, (c or EMPTY_NAME)[:10]) for j, c in enumerate(columns)]])
        self.plot.getAxis("left").setTicks([[(i + 0.5, (r or EMPTY_NAME)[:10]) for i, r in enumerate(rows)]])
        self.plot.invertY(True)
        for t in self._texts:
            self.plot.removeItem(t)
        self._texts = []
        if counts.size <= 400:
            hi = counts.max()
            for (i, j), n in np.ndenumerate(counts):
                t = pg.TextItem(str(n), color="w" if n < 0.6 * hi else "k", anchor=(0.5, 0.5))
                t.setPos(j + 0.5, i + 0.5)
                self.plot.addItem(t)
                self._texts.append(t)

    def _on_click(self, ev) -> None:  # noqa: ANN001
        if self.counts is None:
            return
        p = self.plot.vb.mapSceneToView(ev.scenePos())
        i, j = int(np.floor(p.y())), int(np.floor(p.x()))
        if 0 <= i < self.counts.shape[0] and 0 <= j < self.counts.shape[1]:
            self.cellClicked.emit(i, j)


class EvaluationView(QWidget):
    open_image = Signal(str)  # a double-clicked image: look inside the model with it

    def __init__(self, jobs: Any) -> None:
        super().__init__()
        self.jobs = jobs
        self.run: Any = None
        self.details: Any = None
        self.cell_paths: list[str] = []  # images of the clicked cell (tests)
        self.status = QLabel("Open or train a run to evaluate it on its validation images.")
        self.status.setWordWrap(True)
        self.button = QPushButton("Evaluate again")
        self.button.clicked.connect(self.evaluate)
        self.button.setEnabled(False)
        top = QHBoxLayout()
        top.addWidget(self.status, 1)
        top.addWidget(self.button)
        self.confusion = ConfusionPlot("class")
        self.confusion.cellClicked.connect(self.show_cell)
        self.cell_label = QLabel("Click a cell of the matrix to see its images (double-click one to look inside).")
        self.cell_images = ThumbnailStrip(checkable=False)
        self.wrong_label = QLabel("Most confidently wrong")
        self.wrong_images = ThumbnailStrip(checkable=False)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["precision", "recall", "F1", "images"])
        for strip in (self.cell_images, self.wrong_images):
            strip.itemDoubleClicked.connect(lambda item: self.open_image.emit(item.data(Qt.ItemDataRole.UserRole)))
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        for w in (self.cell_label, self.cell_images, self.wrong_label, self.wrong_images, QLabel("Per class")):
            rl.addWidget(w)
        rl.addWidget(self.table, 1)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.confusion)
        split.addWidget(right)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(split, 1)

    def set_run(self, run: Any) -> None:
        self.run = run
        self.button.setEnabled(True)
        self.evaluate()

    def evaluate(self) -> None:
        if self.run is None:
            return
        from explorer.engine.evaluation import validation_details

        run = self.run
        self.status.setText("evaluating on the validation images…")
        self.button.setEnabled(False)

        def work() -> tuple[dict, list]:
            d = validation_details(run)
            wrong = (d.get("details").wrong if d.get("details") is not None else [])[:50]
            return d, load_thumbnails([w["path"] for w in wrong])

        self.jobs.submit(work, self._on_done, self._on_error)

    def _on_error(self, message: str) -> None:
        self.button.setEnabled(True)
        self.status.setText(f"cannot evaluate: {message}")

    def _on_done(self, result: tuple[dict, list]) -> None:
        d, wrong_thumbs = result
        self.button.setEnabled(True)
        self.details = det = d.get("details")
        report = d.get("report", {})
        figures = ", ".join(f"{k} {v:.4g}" for k, v in report.items() if isinstance(v, float))
        self.status.setText(f"{len(d.get('paths', []))} validation images: {figures}")
        if det is None:
            self.confusion.hide()
            return
        c = det.confusion
        what = "class" if hasattr(det, "per_class") else "character"
        self.confusion.plot.setLabel("bottom", f"predicted {what}")
        self.confusion.plot.setLabel("left", f"true {what}")
        self.confusion.set_counts(c.counts, c.rows, c.columns)
        self.confusion.setVisible(True)
        self.wrong_images.set_candidates(wrong_thumbs)
        for i, w in enumerate(det.wrong[: len(wrong_thumbs)]):
            item = self.wrong_images.item(i)
            item.setText(f"{w['predicted']} {w['confidence']:.0%}")
            item.setToolTip(f"{w['path']}\ntrue: {w['true']}, predicted: {w['predicted']} ({w['confidence']:.1%})")
        self.wrong_label.setText(f"Most confidently wrong ({len(det.wrong)} shown; label = predicted, confidence)")
        self._fill_table(getattr(det, "per_class", None))

    def _fill_table(self, per_class: dict | None) -> None:
        self.table.setVisible(per_class is not None)
        if per_class is None:
            return
        self.table.setRowCount(len(per_class))
        self.table.setVerticalHeaderLabels(list(per_class))
        for i, m in enumerate(per_class.values()):
            for j, key in enumerate(("precision", "recall", "f1", "support")):
                v = m.get(key)
                text = "–" if v is None else (str(v) if key == "support" else f"{v:.3f}")
                self.table.setItem(i, j, QTableWidgetItem(text))

    def show_cell(self, i: int, j: int) -> None:
        """Lists the images of confusion cell (truth ``i``, prediction ``j``)."""
        c = self.details.confusion
        self.cell_paths = c.samples(i, j)
        truth, pred = c.rows[i] or EMPTY_NAME, c.columns[j] or EMPTY_NAME
        self.cell_label.setText(f"true {truth}, predicted {pred}: {len(self.cell_paths)} images")
        paths = list(self.cell_paths)
        self.jobs.submit(lambda: load_thumbnails(paths), self.cell_images.set_candidates)
