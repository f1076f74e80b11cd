"""The Export dialog: format, destination (checked live), an export in a worker thread with its
progress, then the verification result (or the exporter's error, as it is)."""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, QTimer, Signal, Slot
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from explorer.engine import Run, RunFolderError, load_run
from explorer.engine.export import EXPORT_FORMATS, TOLERANCE, ExportError, ExportResult, export_files, export_run

from .threads import new_thread

__all__ = ["ExportDialog", "ExportWorker", "FORMAT_NOTES", "result_html"]

#: one line per format: what it is for
FORMAT_NOTES = {
    "safetensors": "The weights with a JSON that describes the model: reopen it here or with load_run (PyTorch).",
    "onnx": "A graph for onnxruntime and other ONNX clients, checked against PyTorch on export (no PyTorch needed).",
    "pt2": "torch.export programs for PyTorch deployment (torch.export.load), checked the same way; limits named.",
}
_FILTERS = {
    "safetensors": "safetensors weights (*.safetensors)",
    "onnx": "ONNX graph (*.onnx)",
    "pt2": "torch.export program (*.pt2)",
}


def _suffix(fmt: str) -> str:
    return f".{fmt}"


class ExportWorker(QObject):
    """Runs one :func:`export_run` in its thread; reports progress, then ``done`` or ``failed``."""

    progressed = Signal(int, int, str)
    done = Signal(object)  # ExportResult
    failed = Signal(str)

    def __init__(self, run: Run, fmt: str, out: str) -> None:
        super().__init__()
        self.run, self.fmt, self.out = run, fmt, out

    @Slot()
    def work(self) -> None:
        try:
            result = export_run(self.run, self.fmt, self.out, progress=self._progress)
        except ExportError as e:
            self.failed.emit(str(e))
        except Exception as e:  # noqa: BLE001  (whatever the exporter raises, the user gets its text)
            self.failed.emit(f"{type(e).__name__}: {e}")
        else:
            self.done.emit(result)

    def _progress(self, step: int, steps: int, what: str) -> None:
        self.progressed.emit(step, steps, what)


def _fmt_diff(d: Any) -> str:
    return f"{d:.2e}" if isinstance(d, (int, float)) else "not checked"


def _shapes(shapes: Any) -> str:
    return ", ".join("×".join(str(n) for n in s) for s in shapes or [])


def result_html(result: ExportResult) -> str:
    """The verification result: max abs difference per graph with the input it was checked on,
    the limits, the files written."""
    lines = [f"<b>Exported as {result.format}.</b>"]
    if result.graphs:
        verdict = _fmt_diff(result.max_abs_diff)
        lines.append(f"Checked against PyTorch: max abs difference <b>{verdict}</b> (tolerance {TOLERANCE:g}).")
        for g in result.graphs:
            check = g.get("check")
            if check is None:
                lines.append(f"• {html.escape(g['file'])}: not checked")
            else:
                lines.append(
                    f"• {html.escape(g['file'])}: max abs difference {_fmt_diff(check['max_abs_diff'])} "
                    f"on input {html.escape(_shapes(check['inputs']))}"
                )
    else:
        lines.append("The weights are copied as they are (no graph to check).")
    if result.limits:
        lines.append("<b>Limits:</b>")
        lines += [f"• {html.escape(s)}" for s in result.limits]
    lines.append("<b>Files written:</b>")
    lines += [f"• {html.escape(f)}" for f in result.files]
    return "<br>".join(lines)


class ExportDialog(QDialog):
    """Exports a run (a run folder path or a loaded :class:`Run`). ``exported`` carries the
    :class:`ExportResult` when an export succeeded."""

    exported = Signal(object)

    def __init__(self, run: Run | str | os.PathLike[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("exportDialog")
        self.setWindowTitle("Export model")
        self.run = run if isinstance(run, Run) else load_run(run)
        self.result: ExportResult | None = None
        self.error: str | None = None
        self._thread: QThread | None = None
        self._worker: ExportWorker | None = None
        self._close_when_done = False
        self._check_timer = QTimer(self, singleShot=True, interval=150)
        self._check_timer.timeout.connect(self.check_destination)
        self._build()
        self.format_box.currentIndexChanged.connect(self._format_changed)
        self.dest_edit.textChanged.connect(self._dest_edited)
        self.browse_btn.clicked.connect(self.browse)
        self.export_btn.clicked.connect(self.start_export)
        self.close_btn.clicked.connect(self.close)
        self.dest_edit.setText(str(self._default_dest()))
        self._format_changed()
        self.resize(640, 420)

    def _build(self) -> None:
        self.format_box = QComboBox()
        for fmt in EXPORT_FORMATS:
            self.format_box.addItem(fmt, fmt)
        self.format_note = QLabel(wordWrap=True)
        self.format_note.setProperty("role", "hint")
        self.dest_edit = QLineEdit()
        self.browse_btn = QPushButton("Choose…")
        dest = QHBoxLayout()
        dest.addWidget(self.dest_edit, 1)
        dest.addWidget(self.browse_btn)
        self.files_label = QLabel(wordWrap=True, textFormat=Qt.TextFormat.RichText)
        self.files_label.setObjectName("exportFiles")
        self.files_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.status = QLabel(wordWrap=True, textFormat=Qt.TextFormat.RichText)
        self.status.setObjectName("exportStatus")
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.export_btn = QPushButton("Export")
        self.export_btn.setDefault(True)
        self.close_btn = QPushButton("Cancel")
        form = QFormLayout()
        form.addRow("Model", QLabel(f"{html.escape(self._run_name())} — {self.run.arch}, task {self.run.task}"))
        form.addRow("Format", self.format_box)
        form.addRow("", self.format_note)
        form.addRow("Save as", dest)
        form.addRow("", self.files_label)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.export_btn)
        buttons.addWidget(self.close_btn)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.progress)
        lay.addWidget(self.status, 1)
        lay.addLayout(buttons)

    def _run_name(self) -> str:
        p = Path(self.run.path)
        return p.name if p.is_dir() else p.stem

    def _default_dest(self) -> Path:
        return Path.home() / f"{self._run_name()}{_suffix(self.fmt)}"

    @property
    def fmt(self) -> str:
        return self.format_box.currentData() or EXPORT_FORMATS[0]

    @property
    def busy(self) -> bool:
        return self._thread is not None

    # -- destination -------------------------------------------------------------------------
    @Slot()
    def _format_changed(self) -> None:
        fmt = self.fmt
        self.format_note.setText(FORMAT_NOTES.get(fmt, ""))
        text = self.dest_edit.text().strip()
        for other in EXPORT_FORMATS:  # keep the name, change the suffix
            if other != fmt and text.endswith(_suffix(other)):
                self.dest_edit.setText(text[: -len(_suffix(other))] + _suffix(fmt))
                return
        self.check_destination()

    @Slot(str)
    def _dest_edited(self, _text: str) -> None:
        self.export_btn.setEnabled(False)
        self._check_timer.start()

    @Slot()
    def browse(self) -> None:
        fmt = self.fmt
        start = self.dest_edit.text().strip() or str(self._default_dest())
        path, _ = QFileDialog.getSaveFileName(self, "Export model as", start, _FILTERS.get(fmt, ""))
        if path:
            self.dest_edit.setText(path if path.endswith(_suffix(fmt)) else path + _suffix(fmt))

    @Slot()
    def check_destination(self) -> bool:
        """Validates the destination through the engine; shows the files or the refusal."""
        self._check_timer.stop()
        text = self.dest_edit.text().strip()
        ok = False
        if not text:
            self.files_label.setText("<span style='color:#8e1c1c'>Name the file to write.</span>")
        else:
            try:
                files = export_files(self.run, self.fmt, os.path.expanduser(text))
            except ExportError as e:
                self.files_label.setText(f"<span style='color:#8e1c1c'>{html.escape(str(e))}</span>")
            else:
                ok = True
                listed = "<br>".join(f"• {html.escape(str(f))}{' (replaced)' if f.exists() else ''}" for f in files)
                self.files_label.setText(f"Writes:<br>{listed}")
        self.export_btn.setEnabled(ok and not self.busy)
        return ok

    # -- export ------------------------------------------------------------------------------
    @Slot()
    def start_export(self) -> None:
        if self.busy or not self.check_destination():
            return
        self.result, self.error = None, None
        self._set_running(True)
        self.status.setText(f"Exporting as {self.fmt}…")
        out = os.path.expanduser(self.dest_edit.text().strip())
        self._worker = ExportWorker(self.run, self.fmt, out)
        self._thread = new_thread("export", self)
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.work)
        self._worker.progressed.connect(self._on_progress)
        self._worker.done.connect(self._on_done)
        self._worker.failed.connect(self._on_failed)
        self._thread.finished.connect(self._on_thread_finished)
        self._thread.start()

    def _set_running(self, running: bool) -> None:
        for w in (self.format_box, self.dest_edit, self.browse_btn, self.export_btn):
            w.setEnabled(not running)
        self.progress.setVisible(True)
        if running:
            self.progress.setRange(0, 0)  # busy until the first step is reported
            self.close_btn.setText("Close when done")
            self.close_btn.setToolTip("An export cannot be stopped half-way; the dialog closes when it ends")

    @Slot(int, int, str)
    def _on_progress(self, step: int, steps: int, what: str) -> None:
        self.progress.setRange(0, steps)
        self.progress.setValue(step)
        self.progress.setFormat(f"{what} (%v/%m)")
        self.status.setText(f"Step {step + 1} of {steps}: {html.escape(what)}…")

    @Slot(object)
    def _on_done(self, result: ExportResult) -> None:
        self.result = result
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.progress.setFormat("done")
        self.status.setText(result_html(result))
        self._thread.quit()
        self.exported.emit(result)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.error = message
        self.progress.hide()
        self.status.setText(f"<b style='color:#8e1c1c'>Export failed:</b><br>{html.escape(message)}")
        self._thread.quit()

    @Slot()
    def _on_thread_finished(self) -> None:
        thread, worker = self._thread, self._worker
        self._thread, self._worker = None, None
        if worker is not None:
            worker.deleteLater()
        if thread is not None:
            thread.deleteLater()
        for w in (self.format_box, self.dest_edit, self.browse_btn):
            w.setEnabled(True)
        self.close_btn.setText("Close")
        self.close_btn.setToolTip("")
        self.check_destination()
        if self._close_when_done:
            self.close()

    def wait(self, timeout_ms: int = -1) -> bool:
        """Blocks until a running export ends (app exit, tests); True when none runs."""
        thread = self._thread
        if thread is not None:
            thread.wait() if timeout_ms < 0 else thread.wait(timeout_ms)
            return not thread.isRunning()
        return True

    # -- closing: never while the thread runs --------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if self.busy:
            self._close_when_done = True
            self.close_btn.setEnabled(False)
            self.status.setText(self.status.text() + "<br><i>The dialog closes when the export ends.</i>")
            event.ignore()
            return
        super().closeEvent(event)

    def reject(self) -> None:  # Escape
        if self.busy:
            self.close()
            return
        super().reject()

    def done(self, r: int) -> None:
        if self.busy:
            self.close()
            return
        super().done(r)


def open_export_dialog(run_dir: str | os.PathLike[str], parent: QWidget | None = None) -> ExportDialog | None:
    """Opens the dialog non-modally for a run folder (None, with the reason shown, if it cannot load)."""
    from PySide6.QtWidgets import QMessageBox

    try:
        dlg = ExportDialog(run_dir, parent)
    except (RunFolderError, OSError, ValueError) as e:
        QMessageBox.warning(parent, "Export model", f"The run cannot be opened for export:\n{e}")
        return None
    dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dlg.show()
    return dlg
