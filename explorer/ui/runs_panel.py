"""The runs screen: every run of the project with its figures, curves, predictions and export."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QRunnable, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from explorer.engine import RunFolderError, load_run
from explorer.engine.atomic import read_json, write_bytes

from .curves import CurvesView
from .dataset_panel import IMAGE_FILTER
from .project import RunRecord
from .session import ProjectSession
from .threads import new_pool

__all__ = ["RunsPanel", "export_run", "run_summary"]

_STATUS_TEXT = {
    "running": "running…",
    "completed": "completed",
    "early_stopped": "stopped early",
    "stopped": "stopped",
    "failed": "failed",
    "interrupted": "interrupted",
}


def export_run(run_dir: str | os.PathLike[str], dest: str | os.PathLike[str]) -> Path:
    """Writes ``dest`` (``.safetensors`` weights) and the self-describing JSON beside it.

    Raises:
        RunFolderError: the run has no weights yet. OSError: the files cannot be written.
    """
    run_dir, dest = Path(run_dir), Path(dest)
    if dest.suffix != ".safetensors":
        dest = dest.with_suffix(".safetensors")
    weights = weights_file(run_dir)
    config = run_dir.with_suffix(".json") if run_dir.is_file() else run_dir / "config.json"
    if weights is None or not config.is_file():
        raise RunFolderError(f"{run_dir}: no trained weights to export yet")
    write_bytes(dest, weights.read_bytes())
    write_bytes(dest.with_suffix(".json"), config.read_bytes())
    return dest


def weights_file(path: str | os.PathLike[str]) -> Path | None:
    """The weights of a run folder or an exported ``.safetensors`` model, if any."""
    p = Path(path)
    if p.is_file() and p.suffix == ".safetensors":
        return p
    w = p / "weights.safetensors"
    return w if w.is_file() else None


def run_summary(run: RunRecord) -> str:
    m = run.metrics
    lines = [f"<b>{run.name}</b> — {run.arch}, {_STATUS_TEXT.get(run.status, run.status)}"]
    if "val_accuracy" in m:
        lines.append(f"Validation accuracy <b>{m['val_accuracy']:.1%}</b> on {m.get('val_samples', '?')} images")
    if "val_sequence_accuracy" in m:
        cer = f", character error rate <b>{m['val_cer']:.1%}</b>" if isinstance(m.get("val_cer"), (int, float)) else ""
        lines.append(
            f"Validation: <b>{m['val_sequence_accuracy']:.1%}</b> of {m.get('val_samples', '?')} texts read exactly{cer}"
        )
    if "epochs" in m:
        lines.append(
            f"{m['epochs']} epochs (best {m.get('best_epoch', '?')}), {m.get('train_seconds', 0):.1f} s, "
            f"{m.get('samples_per_second', 0):,.0f} samples/s on {m.get('device', '?')}"
        )
    if "num_parameters" in m:
        lines.append(f"{m['num_parameters']:,} parameters")
    per = m.get("val_per_class")
    if isinstance(per, dict) and per:
        parts = []
        for name, d in list(per.items())[:12]:
            v = d.get("recall", d.get("accuracy")) if isinstance(d, dict) else d
            parts.append(f"{name} {v:.0%}" if isinstance(v, (int, float)) else name)
        lines.append("Per class: " + ", ".join(parts))
    if run.message:
        lines.append(f"<span style='color:#8e1c1c'>{run.message}</span>")
    lines.append(f"<span style='color:#78909c'>{run.dir}</span>")
    return "<br>".join(lines)


class _Predict(QRunnable):
    def __init__(self, panel: RunsPanel, run_dir: str, paths: list[str]) -> None:
        super().__init__()
        self.panel, self.run_dir, self.paths = panel, run_dir, paths

    def run(self) -> None:
        try:
            results: Any = load_run(self.run_dir).predict(self.paths)
        except (RunFolderError, OSError, ValueError, RuntimeError) as e:
            results = str(e)
        self.panel._predicted.emit(results)


class RunsPanel(QWidget):
    trainRequested = Signal()
    _predicted = Signal(object)

    COLUMNS = ("Run", "Family", "Status", "Epochs", "Val. accuracy", "Samples/s", "Device")

    def __init__(self, session: ProjectSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self._pool = new_pool("predict", 1, self)
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setObjectName("runsTable")
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for i in range(1, len(self.COLUMNS)):
            hh.setSectionResizeMode(i, QHeaderView.ResizeMode.ResizeToContents)
        self.empty = QLabel("No runs yet. Press Train (F5) to train a model; every run is kept here.")
        self.empty.setProperty("role", "hint")

        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.curves = CurvesView()
        self.export_btn = QPushButton("Export…")
        self.export_btn.setToolTip("Save the weights (.safetensors) with the JSON that describes the model")
        self.predict_btn = QPushButton("Predict images…")
        self.folder_btn = QPushButton("Open folder")
        self.remove_btn = QPushButton("Remove from list")
        self.remove_btn.setToolTip("Forget the run in this project (its folder stays on disk)")
        btns = QHBoxLayout()
        for b in (self.export_btn, self.predict_btn, self.folder_btn):
            btns.addWidget(b)
        btns.addStretch(1)
        btns.addWidget(self.remove_btn)
        self.predictions = QTableWidget(0, 3)
        self.predictions.setHorizontalHeaderLabels(["Image", "Prediction", "Confidence"])
        self.predictions.verticalHeader().hide()
        self.predictions.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.predictions.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.predictions.hide()

        top = QWidget()
        tl = QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addWidget(self.empty)
        tl.addWidget(self.table, 1)
        bottom = QWidget()
        bl = QVBoxLayout(bottom)
        bl.setContentsMargins(0, 0, 0, 0)
        bl.addLayout(btns)
        bl.addWidget(self.details)
        bl.addWidget(self.curves, 1)
        bl.addWidget(self.predictions, 1)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setObjectName("runsSplitter")
        self.splitter.addWidget(top)
        self.splitter.addWidget(bottom)
        self.splitter.setSizes([250, 500])
        layout = QVBoxLayout(self)
        layout.addWidget(self.splitter)

        self.table.currentCellChanged.connect(self._row_changed)
        self.export_btn.clicked.connect(self.choose_export)
        self.predict_btn.clicked.connect(self.choose_predict)
        self.folder_btn.clicked.connect(self.open_folder)
        self.remove_btn.clicked.connect(self.remove_selected)
        self._predicted.connect(self._show_predictions)
        session.runsChanged.connect(self.reload)
        session.projectReplaced.connect(self.reload)
        self.reload()

    # -- table -------------------------------------------------------------------------------------
    @property
    def runs(self) -> list[RunRecord]:
        return list(reversed(self.session.project.runs))  # newest first

    def selected_run(self) -> RunRecord | None:
        row = self.table.currentRow()
        runs = self.runs
        return runs[row] if 0 <= row < len(runs) else None

    @Slot()
    def reload(self) -> None:
        keep = self.selected_run()
        runs = self.runs
        self.table.blockSignals(True)
        self.table.setRowCount(len(runs))
        for i, r in enumerate(runs):
            m = r.metrics
            acc = m.get("val_accuracy", m.get("val_sequence_accuracy"))
            sps = m.get("samples_per_second")
            cells = (
                r.name,
                r.arch,
                _STATUS_TEXT.get(r.status, r.status),
                str(m.get("epochs", "")),
                f"{acc:.1%}" if isinstance(acc, (int, float)) else "",
                f"{sps:,.0f}" if isinstance(sps, (int, float)) else "",
                str(m.get("device", "")),
            )
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if j in (3, 4, 5):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(i, j, item)
        self.table.blockSignals(False)
        self.empty.setVisible(not runs)
        row = runs.index(keep) if keep in runs else (0 if runs else -1)
        if row >= 0:
            self.table.setCurrentCell(row, 0)
        self._show_run(self.selected_run())

    @Slot(int, int, int, int)
    def _row_changed(self, row: int, _col: int, _prow: int, _pcol: int) -> None:
        self._show_run(self.selected_run())

    def _show_run(self, run: RunRecord | None) -> None:
        has = run is not None
        done = has and weights_file(run.dir) is not None
        for b in (self.export_btn, self.predict_btn):
            b.setEnabled(bool(done) and run.status != "running")
        self.folder_btn.setEnabled(has and Path(run.dir).exists())
        self.remove_btn.setEnabled(has and run.status != "running")
        if run is None:
            self.details.setText("")
            self.curves.load_history([])
            return
        self.details.setText(run_summary(run))
        history_file = Path(run.dir) / "history.json"
        history: list[dict[str, Any]] = []
        if history_file.is_file():
            try:
                data = read_json(history_file)
                history = data if isinstance(data, list) else []
            except (OSError, ValueError):
                history = []
        self.curves.load_history(history)

    # -- actions -----------------------------------------------------------------------------------
    @Slot()
    def choose_export(self) -> None:
        run = self.selected_run()
        if run is None:
            return
        dest, _ = QFileDialog.getSaveFileName(
            self, "Export model", str(Path.home() / f"{run.name}.safetensors"), "safetensors weights (*.safetensors)"
        )
        if dest:
            try:
                out = export_run(run.dir, dest)
                self.session.message.emit(f"exported {out} and {out.with_suffix('.json').name}")
            except (RunFolderError, OSError) as e:
                self.session.message.emit(f"export failed: {e}")

    @Slot()
    def choose_predict(self) -> None:
        run = self.selected_run()
        if run is None:
            return
        files, _ = QFileDialog.getOpenFileNames(self, "Predict images", str(Path.home()), IMAGE_FILTER)
        if files:
            self.predict(run, files)

    def predict(self, run: RunRecord, paths: list[str]) -> None:
        self.predictions.setRowCount(0)
        self.predictions.show()
        self.session.message.emit(f"predicting {len(paths)} image(s) with {run.name}…")
        self._pool.start(_Predict(self, run.dir, list(paths)))

    @Slot(object)
    def _show_predictions(self, results: Any) -> None:
        if isinstance(results, str):
            self.session.message.emit(f"prediction failed: {results}")
            return
        self.predictions.setRowCount(len(results))
        for i, r in enumerate(results):
            name = Path(r["path"]).name
            if "error" in r:
                cells = (name, "cannot be used", r["error"])
            else:
                cells = (name, r["label"], f"{r['confidence']:.1%}")
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(r["path"])
                self.predictions.setItem(i, j, item)
        self.session.message.emit(f"predicted {len(results)} image(s)")

    @Slot()
    def open_folder(self) -> None:
        run = self.selected_run()
        if run is not None:
            p = Path(run.dir)
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(p if p.is_dir() else p.parent)))

    @Slot()
    def remove_selected(self) -> None:
        run = self.selected_run()
        if run is not None:
            self.session.remove_run(run)

    def shutdown(self) -> None:
        self._pool.clear()
        self._pool.waitForDone()
