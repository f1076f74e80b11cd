"""File > Open Model: a run folder, an exported bundle or a state dict, loaded in a worker thread,
described, used to predict images the user adds (button or drop), and inspected.

:class:`OpenModelPanel` exposes the loaded :class:`~explorer.engine.Run` as ``run``; every refusal
of :func:`~explorer.engine.load_run` (a crafted pickle, mismatched weights...) is shown as a
message, never a traceback. :class:`OpenModelWindow` puts it beside an
:class:`~explorer.ui.inspector.InspectorPanel` pointed at the same loaded model
(:meth:`~explorer.ui.inspector.InspectorPanel.set_model`): "Inspect" (or a double click on a
prediction) shows every view of the inspector for that image, computed by the opened model.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, Signal, Slot
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from explorer.engine import Run, load_run, runfolder
from explorer.engine.api import MODEL_FILE_SUFFIXES

from .dataset_views import IMAGE_FILTER
from .inspector import InspectorPanel
from .inspector.strip import image_paths
from .threads import new_thread

__all__ = [
    "MODEL_FILTER",
    "ModelWorker",
    "OpenModelPanel",
    "OpenModelWindow",
    "describe_run",
    "image_paths",
    "model_path",
    "open_model_dialog",
]

#: shown where a model read no text (an empty sequence or caption)
NOTHING_READ = "(nothing read)"
MODEL_FILTER = "Models ({});;All files (*)".format(" ".join(f"*{s}" for s in MODEL_FILE_SUFFIXES))


def model_path(chosen: str | os.PathLike[str]) -> Path:
    """What to open for a chosen file: a run folder's ``config.json`` stands for the folder."""
    return runfolder.run_location(chosen)


def open_model_dialog(parent: QWidget | None = None, start: str | None = None) -> str | None:
    """Asks for a model: an exported ``.safetensors`` / ``.json``, a ``.pt`` / ``.pth`` state dict,
    or a run folder (pick its ``config.json``, or the folder itself). None when cancelled."""
    dlg = QFileDialog(parent, "Open model — a run folder's config.json, an export, or a state dict")
    dlg.setOption(QFileDialog.Option.DontUseNativeDialog, True)  # so folders can be chosen too
    dlg.setFileMode(QFileDialog.FileMode.ExistingFile)
    dlg.setNameFilter(MODEL_FILTER)
    dlg.setDirectory(start or str(Path.home()))
    dlg.setLabelText(QFileDialog.DialogLabel.Accept, "Open")
    if not dlg.exec():
        return None
    chosen = dlg.selectedFiles()
    if not chosen:
        return None
    p = model_path(chosen[0])
    return str(p)


def _numbers(values: Any) -> str:
    return ", ".join(f"{v:.3g}" for v in values) if isinstance(values, (list, tuple)) else str(values)


def describe_run(run: Run) -> str:
    """Arch, task, labels, input preprocess and parameter count, as rich text."""
    spec = run.config["preprocess"]
    width = spec.get("width")
    size = f"{spec['height']} × {width}" if width else f"height {spec['height']}, width follows the image"
    params = sum(p.numel() for p in run.model.parameters())
    labels = run.labels
    shown = ", ".join(labels[:12]) + (", …" if len(labels) > 12 else "")
    kind = run.task_object.labels_noun
    rows = [
        ("Model", f"{run.arch} — {', '.join(f'{k}={v}' for k, v in run.params.items()) or 'defaults'}"),
        ("Task", run.task),
        (f"{len(labels)} {kind}", shown),
        (
            "Input",
            f"{spec['channels']} channel(s), {size}, resize {spec.get('resize', 'auto')}, "
            f"mean {_numbers(spec.get('mean'))}, std {_numbers(spec.get('std'))}",
        ),
        ("Parameters", f"{params:,}"),
        ("Opened from", ", ".join(str(s) for s in run.sources)),
    ]
    return "<br>".join(f"<b>{html.escape(k)}:</b> {html.escape(str(v))}" for k, v in rows)


class ModelWorker(QObject):
    """Lives in the panel's thread: loads a model, then predicts with it."""

    loaded = Signal(object)  # Run
    failed = Signal(str, str)  # path, message
    predicted = Signal(int, object)  # request id, [predict()'s dicts] or the error text

    def __init__(self) -> None:
        super().__init__()
        self.run: Run | None = None

    @Slot(str)
    def load(self, path: str) -> None:
        try:
            self.run = load_run(path)
        except Exception as e:  # noqa: BLE001  (every refusal becomes a message, never a traceback)
            self.failed.emit(path, str(e) or type(e).__name__)
        else:
            self.loaded.emit(self.run)

    @Slot(int, object)
    def predict(self, request: int, paths: list[str]) -> None:
        if self.run is None:
            return
        try:
            results: Any = self.run.predict(paths)
        except Exception as e:  # noqa: BLE001
            results = f"{type(e).__name__}: {e}"
        self.predicted.emit(request, results)


class PredictionTable(QTableWidget):
    """Image name + the task's own columns."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, 1, parent)
        self.setObjectName("openModelPredictions")
        self.verticalHeader().hide()
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        self.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)

    def set_columns(self, columns: tuple[str, ...]) -> None:
        self.setRowCount(0)
        self.setColumnCount(1 + len(columns))
        self.setHorizontalHeaderLabels(["Image", *columns])
        hh = self.horizontalHeader()
        hh.setStretchLastSection(False)
        hh.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(1 if columns else 0, QHeaderView.ResizeMode.Stretch)  # the label / text / caption

    def add_results(self, run: Run, results: list[dict[str, Any]]) -> None:
        task = run.task_object
        for r in results:
            row = self.rowCount()
            self.insertRow(row)
            if "error" in r:
                cells = ("cannot be used: " + r["error"],)
            else:
                cells = task.prediction_cells(r)
            for j, text in enumerate((Path(r["path"]).name, *cells)):
                item = QTableWidgetItem(str(text) if text != "" or j != 1 else NOTHING_READ)
                item.setData(Qt.ItemDataRole.UserRole, r["path"])
                if text == "" and j == 1:
                    item.setForeground(Qt.GlobalColor.gray)
                item.setToolTip(r.get("error") or task.format_prediction(r) if j else r["path"])
                self.setItem(row, j, item)

    def selected_paths(self) -> list[str]:
        """The image paths of the selected rows, top to bottom."""
        rows = sorted({i.row() for i in self.selectedIndexes()})
        return [self.item(r, 0).data(Qt.ItemDataRole.UserRole) for r in rows if self.item(r, 0) is not None]


class OpenModelPanel(QWidget):
    """An opened model: its description, and predictions for the images added to it."""

    modelLoaded = Signal(object)  # Run
    loadFailed = Signal(str)  # the message shown
    imagesAdded = Signal(list)  # images the user added (button or drop)
    inspectRequested = Signal(list)  # images to look inside the model with ("Inspect", a double click)
    _loadRequested = Signal(str)
    _predictRequested = Signal(int, object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("openModelPanel")
        self.setAcceptDrops(True)
        self.run: Run | None = None
        self.path: str | None = None
        self.results: list[dict[str, Any]] = []  # every prediction shown, as predict() gave it
        self.message_box: QMessageBox | None = None
        self._request = 0
        self._pending = 0
        self._build()
        self._thread: QThread = new_thread("open-model", self)
        self._worker = ModelWorker()
        self._worker.moveToThread(self._thread)
        self._thread.finished.connect(self._worker.deleteLater)
        self._loadRequested.connect(self._worker.load)
        self._predictRequested.connect(self._worker.predict)
        self._worker.loaded.connect(self._on_loaded)
        self._worker.failed.connect(self._on_failed)
        self._worker.predicted.connect(self._on_predicted)
        self.add_btn.clicked.connect(self.choose_images)
        self.clear_btn.clicked.connect(self.clear_predictions)
        self.inspect_btn.clicked.connect(lambda: self.inspectRequested.emit(self.table.selected_paths()))
        self.table.itemSelectionChanged.connect(self._on_selection)
        self.table.cellDoubleClicked.connect(lambda row, _col: self.inspectRequested.emit(self._row_paths(row)))
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)  # the thread never outlives the application
        self._thread.start()

    def _build(self) -> None:
        self.title = QLabel("<h3>No model open</h3>", textFormat=Qt.TextFormat.RichText)
        self.description = QLabel(wordWrap=True, textFormat=Qt.TextFormat.RichText)
        self.description.setObjectName("openModelDescription")
        self.description.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.add_btn = QPushButton("Add images…")
        self.add_btn.setEnabled(False)
        self.clear_btn = QPushButton("Clear")
        self.clear_btn.setEnabled(False)
        self.inspect_btn = QPushButton("Inspect")
        self.inspect_btn.setToolTip(
            "Look inside the model with the selected images (or double-click one): feature maps, states, "
            "attention, Grad-CAM..."
        )
        self.inspect_btn.setEnabled(False)
        self.inspect_btn.hide()  # shown where an inspector is attached (OpenModelWindow)
        self.hint = QLabel("Open a model (File > Open Model…), then add images or drop files and folders here.")
        self.hint.setProperty("role", "hint")
        self.hint.setWordWrap(True)
        self.table = PredictionTable()
        btns = QHBoxLayout()
        btns.addWidget(self.add_btn)
        btns.addWidget(self.clear_btn)
        btns.addWidget(self.inspect_btn)
        btns.addStretch(1)
        lay = QVBoxLayout(self)
        lay.addWidget(self.title)
        lay.addWidget(self.description)
        lay.addLayout(btns)
        lay.addWidget(self.hint)
        lay.addWidget(self.table, 1)

    @property
    def busy(self) -> bool:
        return self._pending > 0

    # -- loading -----------------------------------------------------------------------------
    def open_model(self, path: str | os.PathLike[str]) -> None:
        """Loads ``path`` in the worker thread; ``modelLoaded`` or a message follows."""
        self.path = str(model_path(path))
        self._request += 1  # predictions for the model before are dropped
        self._pending += 1
        self.title.setText(f"<h3>Opening {html.escape(Path(self.path).name)}…</h3>")
        self.add_btn.setEnabled(False)
        self._loadRequested.emit(self.path)

    @Slot(object)
    def _on_loaded(self, run: Run) -> None:
        self._pending -= 1
        self.run = run
        self.title.setText(f"<h3>{html.escape(Path(self.path or run.path).name)}</h3>")
        self.description.setText(describe_run(run))
        self.table.set_columns(run.task_object.prediction_columns())
        self.add_btn.setEnabled(True)
        self.clear_btn.setEnabled(True)
        self.modelLoaded.emit(run)

    @Slot(str, str)
    def _on_failed(self, path: str, message: str) -> None:
        self._pending -= 1
        self.title.setText(
            f"<h3>{html.escape(Path(path).name)} was not opened</h3>"
            if self.run is None
            else f"<h3>{html.escape(Path(self.run.path).name)}</h3>"
        )
        self.add_btn.setEnabled(self.run is not None)
        text = f"The model cannot be opened.\n\n{message}"
        self.message_box = QMessageBox(
            QMessageBox.Icon.Warning, "Open model", text, QMessageBox.StandardButton.Ok, self
        )
        self.message_box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message_box.open()  # window-modal, does not block
        self.loadFailed.emit(message)

    # -- images ------------------------------------------------------------------------------
    @Slot()
    def choose_images(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Add images", str(Path.home()), IMAGE_FILTER)
        if files:
            self.add_images(files)

    def add_images(self, paths: list[str | os.PathLike[str]], announce: bool = True) -> int:
        """Predicts the images among ``paths`` (folders walked); returns how many were sent.
        ``imagesAdded`` follows unless ``announce`` is False."""
        images = image_paths(list(paths))
        if self.run is None or not images:
            return 0
        if announce:
            self.imagesAdded.emit(images)
        self._pending += 1
        self.hint.setText(f"Predicting {len(images)} image(s)…")
        self._predictRequested.emit(self._request, images)
        return len(images)

    @Slot(int, object)
    def _on_predicted(self, request: int, results: Any) -> None:
        self._pending -= 1
        if request != self._request or self.run is None:
            return
        if isinstance(results, str):
            self.hint.setText(f"Prediction failed: {results}")
            return
        self.results += results
        self.table.add_results(self.run, results)
        more = " Select one or several and click Inspect (or double-click one) to look inside the model."
        self.hint.setText(
            f"{self.table.rowCount()} image(s) predicted. Add more, or drop files and folders here."
            + (more if self.inspect_btn.isVisibleTo(self) else "")
        )

    @Slot()
    def clear_predictions(self) -> None:
        self.table.setRowCount(0)
        self.results = []

    def _row_paths(self, row: int) -> list[str]:
        item = self.table.item(row, 0)
        return [item.data(Qt.ItemDataRole.UserRole)] if item is not None else []

    @Slot()
    def _on_selection(self) -> None:
        self.inspect_btn.setEnabled(bool(self.table.selected_paths()))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if self.run is not None and event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # noqa: N802, ANN001
        self.dragEnterEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if self.add_images(paths):
            event.acceptProposedAction()
        else:
            event.ignore()

    # -- closing -----------------------------------------------------------------------------
    @Slot()
    def shutdown(self) -> None:
        """Ends the worker thread after the work it has (call before the panel goes away)."""
        if self._thread.isRunning():
            self._thread.quit()
            self._thread.wait()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        self.shutdown()
        super().closeEvent(event)


class OpenModelWindow(QWidget):
    """A top-level window for one opened model: "Predict" (an :class:`OpenModelPanel`) and
    "Inspect" (an :class:`~explorer.ui.inspector.InspectorPanel` on the same loaded model).
    Images added on either side are predicted and offered for inspection."""

    def __init__(self, path: str | os.PathLike[str], parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.setWindowTitle(f"Model — {Path(path).name}")
        self.panel = OpenModelPanel(self)
        self.panel.inspect_btn.show()
        self.inspector = InspectorPanel(parent=self)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.panel, "Predict")
        self.tabs.addTab(self.inspector, "Inspect")
        self.tabs.setTabEnabled(1, False)  # until the model is loaded
        self.tabs.setTabToolTip(1, "Every view of the inspector for the images you add, from this model")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.tabs)
        self.panel.modelLoaded.connect(self._on_loaded)
        self.panel.imagesAdded.connect(lambda paths: self.inspector.add_images(paths, announce=False))
        self.inspector.imagesAdded.connect(lambda paths: self.panel.add_images(paths, announce=False))
        self.panel.inspectRequested.connect(self.inspect)
        self.resize(1200, 860)
        self.panel.open_model(path)

    @property
    def run(self) -> Run | None:
        return self.panel.run

    @Slot(object)
    def _on_loaded(self, run: Run) -> None:
        self.inspector.set_model(run)
        self.tabs.setTabEnabled(1, True)

    @Slot(list)
    def inspect(self, paths: list[str]) -> None:
        """Shows the "Inspect" tab looking at ``paths`` (side by side when several)."""
        if self.run is None or not paths:
            return
        self.tabs.setCurrentWidget(self.inspector)
        self.inspector.inspect(paths)

    def shutdown(self) -> None:
        self.panel.shutdown()
        self.inspector.shutdown()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        self.shutdown()
        super().closeEvent(event)
