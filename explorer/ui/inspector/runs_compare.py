"""Runs side by side: two or more runs on the same data, their curves overlaid (one colour per
run), their final figures, and only the settings in which they differ."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)  # fmt: skip

from explorer.engine import runfolder
from explorer.engine.atomic import read_json
from explorer.engine.runfolder import RunFolderError, read_config, read_history

__all__ = ["RunsCompare", "differing_settings", "flatten"]

COLOURS = ["#1e88e5", "#e53935", "#43a047", "#fb8c00", "#8e24aa", "#00897b", "#6d4c41", "#3949ab"]
_SKIPPED = ("labels", "format", "version", "preprocess.mean", "preprocess.std")


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """{"train": {"lr": 0.1}} -> {"train.lr": 0.1} (lists kept as values)."""
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def differing_settings(configs: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Setting -> each run's value, for the settings whose values are not all equal."""
    flat = [flatten(c) for c in configs]
    keys = [k for k in dict.fromkeys(k for f in flat for k in f) if not k.startswith(_SKIPPED)]
    missing = object()
    out = {}
    for k in keys:
        values = [f.get(k, missing) for f in flat]
        if any(v != values[0] for v in values[1:]):
            out[k] = ["–" if v is missing else v for v in values]
    return out


def _config(run_dir: Path) -> dict[str, Any]:
    """The run's settings as written (an incomplete or older config still compares)."""
    try:
        return read_config(run_dir)
    except RunFolderError:
        try:
            c = read_json(run_dir / runfolder.CONFIG)
        except (OSError, ValueError):
            return {}
        return c if isinstance(c, dict) else {}


def _metrics(run_dir: Path) -> dict[str, Any]:
    p = run_dir / runfolder.METRICS
    try:
        m = read_json(p) if p.is_file() else {}
    except (OSError, ValueError):
        m = {}
    return {k: v for k, v in m.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


class RunsCompare(QWidget):
    def __init__(self) -> None:
        super().__init__()
        self.runs: list[Path] = []
        self.histories: dict[Path, list[dict]] = {}
        self.add_button = QPushButton("Add run…")
        self.add_button.clicked.connect(self._ask_run)
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(self.clear)
        self.metric = QComboBox()
        self.metric.currentTextChanged.connect(lambda _t: self._plot())
        self.note = QLabel("Add two or more runs on the same data to compare them.")
        self.note.setProperty("role", "hint")
        top = QHBoxLayout()
        for w in (self.add_button, self.clear_button, QLabel("curve"), self.metric):
            top.addWidget(w)
        top.addWidget(self.note, 1)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setLabel("bottom", "epoch")
        self.plot.getAxis("bottom").setTickSpacing(1, 1)
        self.plot.addLegend(offset=(-10, 10))
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.figures = QTableWidget(0, 0)
        self.settings = QTableWidget(0, 0)
        tables = QSplitter(Qt.Orientation.Vertical)
        for title, table in (("Final figures", self.figures), ("Settings that differ", self.settings)):
            box = QWidget()
            bl = QVBoxLayout(box)
            bl.setContentsMargins(0, 0, 0, 0)
            bl.addWidget(QLabel(f"<b>{title}</b>"))
            bl.addWidget(table, 1)
            tables.addWidget(box)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.plot)
        split.addWidget(tables)
        split.setSizes([700, 500])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(split, 1)

    def _ask_run(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Run folder to compare")
        if d:
            self.add_run(d)

    def add_run(self, run_dir: str | os.PathLike[str]) -> None:
        p = Path(run_dir)
        if p in self.runs:
            return
        self.runs.append(p)
        self.histories[p] = read_history(p)
        self.refresh()

    def clear(self) -> None:
        self.runs, self.histories = [], {}
        self.refresh()

    def refresh(self) -> None:
        keys = [
            k for k in dict.fromkeys(k for h in self.histories.values() for r in h for k in r)
            if k not in ("epoch", "epochs", "best", "metrics", "seconds", "samples_per_second", "lr")
        ]  # fmt: skip
        current = self.metric.currentText()
        self.metric.blockSignals(True)
        self.metric.clear()
        self.metric.addItems(keys)
        if current in keys:
            self.metric.setCurrentText(current)
        elif "val_loss" in keys:
            self.metric.setCurrentText("val_loss")
        self.metric.blockSignals(False)
        self._plot()
        self._fill_figures()
        self._fill_settings()
        sources = {str(_config(p).get("data", {}).get("source")) for p in self.runs}
        self.note.setText(
            ""
            if len(sources) <= 1
            else f"these runs use different data ({', '.join(sorted(sources))}): compare with care"
        )

    def _plot(self) -> None:
        self.plot.clear()
        key = self.metric.currentText()
        self.plot.setLabel("left", key)
        for i, p in enumerate(self.runs):
            pts = [(r["epoch"], r[key]) for r in self.histories[p] if isinstance(r.get(key), (int, float))]
            if pts:
                x, y = zip(*pts)
                pen = pg.mkPen(COLOURS[i % len(COLOURS)], width=2)
                self.plot.plot(list(x), list(y), pen=pen, symbol="o", symbolSize=5, name=p.name)

    def _fill_figures(self) -> None:
        metrics = [_metrics(p) for p in self.runs]
        keys = list(dict.fromkeys(k for m in metrics for k in m))
        _fill(self.figures, [p.name for p in self.runs], keys, [[m.get(k) for m in metrics] for k in keys])

    def _fill_settings(self) -> None:
        configs = [_config(p) for p in self.runs]
        diff = differing_settings(configs) if len(configs) > 1 else {}
        _fill(self.settings, [p.name for p in self.runs], list(diff), list(diff.values()))


def _fill(table: QTableWidget, columns: list[str], rows: list[str], values: list[list[Any]]) -> None:
    table.clear()
    table.setColumnCount(len(columns))
    table.setRowCount(len(rows))
    table.setHorizontalHeaderLabels(columns)
    table.setVerticalHeaderLabels(rows)
    for i, row in enumerate(values):
        for j, v in enumerate(row):
            text = "–" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))
            table.setItem(i, j, QTableWidgetItem(text))
    table.resizeColumnsToContents()
