"""The runs screen: every run of the project with its figures, curves, predictions and export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QRunnable, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QColor, QDesktopServices
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

from explorer.engine import RunFolderError, load_run, runfolder
from explorer.engine.export import ExportResult
from explorer.engine.tasks import Task, find_task

from .curves import CurvesView
from .dataset_views import IMAGE_FILTER
from .export_dialog import ExportDialog, open_export_dialog
from .project import RunRecord
from .session import ProjectSession
from .threads import new_pool

__all__ = ["RunsPanel", "RunsTable", "PredictionsTable", "run_summary"]

_STATUS_TEXT = {
    "running": "running…",
    "completed": "completed",
    "early_stopped": "stopped early",
    "stopped": "stopped",
    "failed": "failed",
    "interrupted": "interrupted",
}


def run_summary(run: RunRecord) -> str:
    m = run.metrics
    lines = [f"<b>{run.name}</b> — {run.arch}, {_STATUS_TEXT.get(run.status, run.status)}"]
    task = find_task(run.task)
    head = task.headline if task is not None else None
    if head is not None and head.value(m) is not None:
        cer = f", character error rate <b>{m['val_cer']:.1%}</b>" if isinstance(m.get("val_cer"), (int, float)) else ""
        lines.append(f"Validation {head.name} <b>{head.cell(m)}</b> on {m.get('val_samples', '?')} images{cer}")
    if "epochs" in m:
        lines.append(
            f"{m['epochs']} epochs (best {m.get('best_epoch', '?')}), {_num(m.get('train_seconds', 0), '.1f')} s, "
            f"{_num(m.get('samples_per_second', 0), ',.0f')} samples/s on {m.get('device', '?')}"
        )
    if "num_parameters" in m:
        lines.append(f"{_num(m['num_parameters'], ',')} parameters")
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


def _num(v: object, spec: str) -> str:
    """A figure as ``spec`` formats it; "?" for one that is not a number (a damaged record)."""
    return format(v, spec) if isinstance(v, int | float) and not isinstance(v, bool) else "?"


def _task_of(run: RunRecord) -> Task | None:
    """The run's task with its saved settings (e.g. a regression head names the loss "cross-entropy + MSE")."""
    try:
        extra = runfolder.read_config(run.dir).get("task_extra")
    except (RunFolderError, OSError, ValueError):
        extra = None
    return find_task(run.task, extra)


class _Predict(QRunnable):
    def __init__(self, panel: RunsPanel, gen: int, run_dir: str, paths: list[str]) -> None:
        super().__init__()
        self.panel, self.gen, self.run_dir, self.paths = panel, gen, run_dir, paths

    def run(self) -> None:
        try:
            run = load_run(self.run_dir)
            results: Any = (run.task_object, run.predict(self.paths))
        except (RunFolderError, OSError, ValueError, RuntimeError) as e:
            results = str(e)
        self.panel._predicted.emit(self.gen, results)


class RunsTable(QTableWidget):
    """One row per run, newest first."""

    COLUMNS = ("Run", "Family", "Status", "Epochs", "Validation", "Samples/s", "Device")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(self.COLUMNS), parent)
        self.setObjectName("runsTable")
        self.setHorizontalHeaderLabels(self.COLUMNS)
        self.verticalHeader().hide()
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.setAlternatingRowColors(True)
        hh = self.horizontalHeader()
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for i in range(1, len(self.COLUMNS)):
            hh.setSectionResizeMode(i, QHeaderView.ResizeMode.ResizeToContents)

    def fill(self, runs: list[RunRecord]) -> None:
        self.blockSignals(True)
        self.setRowCount(len(runs))
        heads = {r.task: t.headline for r in runs if (t := find_task(r.task)) is not None}
        names = {h.name for h in heads.values()}
        self.setHorizontalHeaderItem(4, QTableWidgetItem(f"Val. {names.pop()}" if len(names) == 1 else "Validation"))
        for i, r in enumerate(runs):
            m = r.metrics
            head = heads.get(r.task)
            sps = m.get("samples_per_second")
            cells = (
                r.name,
                r.arch,
                _STATUS_TEXT.get(r.status, r.status),
                str(m.get("epochs", "")),
                head.cell(m) if head is not None else "",
                f"{sps:,.0f}" if isinstance(sps, (int, float)) else "",
                str(m.get("device", "")),
            )
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if j in (3, 4, 5):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.setItem(i, j, item)
        self.blockSignals(False)


#: shown for an empty prediction (a text model that reads nothing yet), so the table never looks blank
EMPTY_CELL = "(nothing)"


class PredictionsTable(QTableWidget):
    """What a run predicts for the images the user picked; hidden until asked."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, 3, parent)
        self.setHorizontalHeaderLabels(["Image", "Prediction", "Confidence"])
        self.setWordWrap(False)
        self.verticalHeader().hide()
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.hide()

    def reset(self) -> None:
        self.setRowCount(0)
        self.hide()

    def show_results(self, task: Task, results: list[dict[str, Any]]) -> None:
        """One row per result: the image's name, then the task's cells
        (:meth:`~explorer.engine.tasks.Task.prediction_cells`)."""
        columns = task.prediction_columns()
        self.setColumnCount(1 + len(columns))
        self.setHorizontalHeaderLabels(["Image", *columns])
        hh = self.horizontalHeader()
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.setRowCount(len(results))
        for i, r in enumerate(results):
            name = Path(r["path"]).name
            if "error" in r:
                cells: tuple[str, ...] = (name, "cannot be used", r["error"])
            else:
                cells = (name, *task.prediction_cells(r))
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text or EMPTY_CELL)
                item.setToolTip(r["path"] if text else f"{r['path']}\nthe model predicts nothing for this image")
                if not text:
                    item.setForeground(QColor("#78909c"))
                self.setItem(i, j, item)
        self.show()


class RunsPanel(QWidget):
    trainRequested = Signal()
    _predicted = Signal(int, object)

    COLUMNS = RunsTable.COLUMNS

    def __init__(self, session: ProjectSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self._pool = new_pool("predict", 1, self)
        self._predict_gen = 0  # predictions of an earlier project or request are dropped
        self.table = RunsTable()
        self.empty = QLabel("No runs yet. Press Train (F5) to train a model; every run is kept here.")
        self.empty.setProperty("role", "hint")
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.curves = CurvesView()
        self.predictions = PredictionsTable()
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setObjectName("runsSplitter")
        self.splitter.addWidget(self._table_pane())
        self.splitter.addWidget(self._run_pane())
        self.splitter.setSizes([250, 500])
        QVBoxLayout(self).addWidget(self.splitter)

        self.table.currentCellChanged.connect(self._row_changed)
        self.export_btn.clicked.connect(self.choose_export)
        self.predict_btn.clicked.connect(self.choose_predict)
        self.folder_btn.clicked.connect(self.open_folder)
        self.remove_btn.clicked.connect(self.remove_selected)
        self._predicted.connect(self._show_predictions)
        session.runsChanged.connect(self.reload)
        session.projectReplaced.connect(self.on_project_replaced)
        self.reload()

    def _table_pane(self) -> QWidget:
        pane = QWidget()
        lay = QVBoxLayout(pane)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.empty)
        lay.addWidget(self.table, 1)
        return pane

    def _run_pane(self) -> QWidget:
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
        pane = QWidget()
        lay = QVBoxLayout(pane)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(btns)
        lay.addWidget(self.details)
        lay.addWidget(self.curves, 1)
        lay.addWidget(self.predictions, 1)
        return pane

    # -- table -------------------------------------------------------------------------------------
    @property
    def runs(self) -> list[RunRecord]:
        return list(reversed(self.session.project.runs))  # newest first

    def selected_run(self) -> RunRecord | None:
        row = self.table.currentRow()
        runs = self.runs
        return runs[row] if 0 <= row < len(runs) else None

    @Slot()
    def on_project_replaced(self) -> None:
        self._predict_gen += 1
        self.predictions.reset()
        self.table.setRowCount(0)  # no selection carries over to the other project
        self.reload()

    @Slot()
    def reload(self) -> None:
        keep = self.selected_run()
        runs = self.runs
        self.table.fill(runs)
        self.empty.setVisible(not runs)
        row = runs.index(keep) if keep in runs else (0 if runs else -1)
        if row >= 0:
            self.table.setCurrentCell(row, 0)
        self._show_run(self.selected_run())

    @Slot(int, int, int, int)
    def _row_changed(self, row: int, _col: int, _prow: int, _pcol: int) -> None:
        self._show_run(self.selected_run())

    def _show_run(self, run: RunRecord | None) -> None:
        done = run is not None and run.status != "running" and runfolder.weights_file(run.dir) is not None
        for b in (self.export_btn, self.predict_btn):
            b.setEnabled(done)
        self.folder_btn.setEnabled(run is not None and Path(run.dir).exists())
        self.remove_btn.setEnabled(run is not None and run.status != "running")
        self.details.setText(run_summary(run) if run is not None else "")
        self.curves.set_task(_task_of(run) if run is not None else None)
        self.curves.load_history(runfolder.read_history(run.dir) if run is not None else [])

    # -- actions -----------------------------------------------------------------------------------
    @Slot()
    def choose_export(self) -> None:
        run = self.selected_run()
        if run is None:
            return
        dlg = open_export_dialog(run.dir, self)  # None: could not load (a message box said why)
        if dlg is not None:
            dlg.exported.connect(self._on_exported)

    @Slot(object)
    def _on_exported(self, result: ExportResult) -> None:
        self.session.message.emit("exported " + ", ".join(Path(f).name for f in result.files))

    @Slot()
    def choose_predict(self) -> None:
        run = self.selected_run()
        if run is None:
            return
        files, _ = QFileDialog.getOpenFileNames(self, "Predict images", str(Path.home()), IMAGE_FILTER)
        if files:
            self.predict(run, files)

    def predict(self, run: RunRecord, paths: list[str]) -> None:
        self._predict_gen += 1
        self.predictions.setRowCount(0)
        self.predictions.show()
        self.session.message.emit(f"predicting {len(paths)} image(s) with {run.name}…")
        self._pool.start(_Predict(self, self._predict_gen, run.dir, list(paths)))

    @Slot(int, object)
    def _show_predictions(self, gen: int, results: Any) -> None:
        if gen != self._predict_gen:  # for another project, or an older request
            return
        if isinstance(results, str):
            self.session.message.emit(f"prediction failed: {results}")
            return
        task, results = results
        self.predictions.show_results(task, results)
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
        for dlg in self.findChildren(ExportDialog):
            dlg.wait()
        self._pool.clear()
        self._pool.waitForDone()
