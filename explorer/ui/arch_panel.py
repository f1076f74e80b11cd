"""The architecture screen: family picker, generated parameter form, live summary.

Every edit is validated at once through the family's own ``Params.from_dict`` and ``check`` (the
same rules the CLI and the trainer apply), and the offending field shows the message inline. A
dry run on the data's input shape (off the UI thread, debounced) fills the parameter count and a
layer table (name, type, output shape, parameters).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from explorer.data import Sample
from explorer.engine.config import all_settings
from models import ParamError, list_models, model_info

from .dryrun import ModelSummary, estimate_input_shape, summarize
from .param_form import ParamForm
from .session import ProjectSession
from .threads import new_pool

__all__ = ["ArchPanel", "DryRunner"]


class _DryRunJob(QRunnable):
    def __init__(
        self,
        runner: DryRunner,
        gen: int,
        arch: str,
        params: dict[str, Any],
        samples: list[Sample],
        size: tuple[int | None, int | None, str],
        num_outputs: int,
    ) -> None:
        super().__init__()
        self.runner, self.gen, self.arch, self.params = runner, gen, arch, params
        self.samples, self.size, self.num_outputs = samples, size, num_outputs

    def run(self) -> None:
        try:
            h, w, color = self.size
            shape = self.runner.cached_shape(self.samples, h, w, color)
            result = summarize(self.arch, self.params, shape, self.num_outputs)
        except Exception as e:  # noqa: BLE001 - a dry run must never take the app down
            result = ModelSummary(input_shape=(0, 0, 0), num_outputs=self.num_outputs, error=f"{type(e).__name__}: {e}")
        self.runner._done.emit(self.gen, result)


class DryRunner(QObject):
    """Runs :func:`summarize` on a pool thread; only the newest request's result is delivered."""

    finished = Signal(object)  # ModelSummary
    _done = Signal(int, object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = new_pool("dry-run", 1, self)
        self._gen = 0
        self._shape_cache: dict[tuple, tuple[int, int, int]] = {}
        self._done.connect(self._on_done)

    def request(
        self,
        arch: str,
        params: dict[str, Any],
        samples: Sequence[Sample],
        size: tuple[int | None, int | None, str],
        num_outputs: int,
    ) -> None:
        self._gen += 1
        self._pool.start(_DryRunJob(self, self._gen, arch, dict(params), list(samples), size, num_outputs))

    def cached_shape(self, samples: list[Sample], h: int | None, w: int | None, color: str) -> tuple[int, int, int]:
        key = (
            len(samples),
            str(samples[0].path) if samples else "",
            str(samples[-1].path) if samples else "",
            h,
            w,
            color,
        )
        if key not in self._shape_cache:
            self._shape_cache[key] = estimate_input_shape(samples, height=h, width=w, color=color)
        return self._shape_cache[key]

    @Slot(int, object)
    def _on_done(self, gen: int, result: ModelSummary) -> None:
        if gen == self._gen:
            self.finished.emit(result)

    def wait(self, msecs: int = 10000) -> bool:
        return self._pool.waitForDone(msecs)

    def close(self) -> None:
        self._pool.clear()
        self._pool.waitForDone()


class ArchPanel(QWidget):
    validityChanged = Signal(bool)
    summaryReady = Signal(object)

    def __init__(self, session: ProjectSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.forms: dict[str, ParamForm] = {}
        self._valid = True
        self._shape: tuple[int, int, int] | None = None
        self._task = session.project.task
        self.last_summary: ModelSummary | None = None
        self.runner = DryRunner(self)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(250)
        self._debounce.timeout.connect(self._dry_run)

        # -- families ---------------------------------------------------------------------------------
        self.family_list = QListWidget()
        self.family_list.setObjectName("familyList")
        self.family_desc = QLabel()
        self.family_desc.setWordWrap(True)
        self.family_desc.setProperty("role", "hint")
        fam_box = QGroupBox("Model family")
        fl = QVBoxLayout(fam_box)
        fl.addWidget(self.family_list, 1)
        fl.addWidget(self.family_desc)

        # -- parameters -------------------------------------------------------------------------------
        self.form_stack = QStackedWidget()
        self.general_error = QLabel()
        self.general_error.setProperty("role", "error")
        self.general_error.setWordWrap(True)
        self.general_error.hide()
        self.help_label = QLabel("Hover or click a parameter to see what it does.")
        self.help_label.setWordWrap(True)
        self.help_label.setProperty("role", "hint")
        self.help_label.setMinimumHeight(48)
        self.help_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.reset_btn = QPushButton("Reset to defaults")
        form_scroll = QScrollArea()
        form_scroll.setWidgetResizable(True)
        inner = QWidget()
        il = QVBoxLayout(inner)
        il.setContentsMargins(0, 0, 8, 0)
        il.addWidget(self.form_stack)
        il.addStretch(1)
        form_scroll.setWidget(inner)
        params_box = QGroupBox("Parameters")
        pl = QVBoxLayout(params_box)
        pl.addWidget(form_scroll, 1)
        pl.addWidget(self.general_error)
        pl.addWidget(self.help_label)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.reset_btn)
        pl.addLayout(row)

        # -- input ------------------------------------------------------------------------------------
        self.height_spin = QSpinBox()
        self.width_spin = QSpinBox()
        settings = all_settings()
        for s, size in ((self.height_spin, settings["data.height"]), (self.width_spin, settings["data.width"])):
            s.setRange(int(size.min) - 1, int(size.max))  # one below the declared minimum = "auto" (None)
            s.setSpecialValueText("auto")
            s.setSuffix(" px")
            s.setToolTip("Model input size; images are resized to it. 'auto' picks it from the images.")
        self.color_combo = QComboBox()
        color_text = {"gray": "gray (1 channel)", "rgb": "RGB (3 channels)"}
        for c in settings["data.color"].choices or ():
            self.color_combo.addItem(color_text.get(c, c), c)
        self.color_combo.setToolTip("auto: gray when every image is gray, else RGB.")
        input_box = QGroupBox("Input")
        inf = QFormLayout(input_box)
        inf.addRow("Height", self.height_spin)
        inf.addRow("Width", self.width_spin)
        inf.addRow("Colour", self.color_combo)

        # -- summary ----------------------------------------------------------------------------------
        self.count_label = QLabel("–")
        self.count_label.setObjectName("paramCount")
        self.count_label.setStyleSheet("font-size: 18pt; font-weight: bold; color: #1a237e;")
        self.shape_label = QLabel()
        self.shape_label.setProperty("role", "hint")
        self.shape_label.setWordWrap(True)
        self.table = QTableWidget(0, 4)
        self.table.setObjectName("layerTable")
        self.table.setHorizontalHeaderLabels(["Layer", "Type", "Output shape", "Parameters"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for i in (1, 2, 3):
            hh.setSectionResizeMode(i, QHeaderView.ResizeMode.ResizeToContents)
        sum_box = QGroupBox("Model")
        sl = QVBoxLayout(sum_box)
        title = QLabel("Parameters")
        title.setProperty("role", "hint")
        sl.addWidget(title)
        sl.addWidget(self.count_label)
        sl.addWidget(self.shape_label)
        sl.addWidget(self.table, 1)

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(fam_box, 1)
        ll.addWidget(input_box)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("archSplitter")
        self.splitter.addWidget(left)
        self.splitter.addWidget(params_box)
        self.splitter.addWidget(sum_box)
        self.splitter.setSizes([300, 420, 520])
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setStretchFactor(2, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.splitter)

        # -- wiring -----------------------------------------------------------------------------------
        self.family_list.currentItemChanged.connect(self._family_chosen)
        self.reset_btn.clicked.connect(self._reset)
        self.height_spin.valueChanged.connect(self._input_edited)
        self.width_spin.valueChanged.connect(self._input_edited)
        self.color_combo.currentIndexChanged.connect(self._input_edited)
        self.runner.finished.connect(self._show_summary)
        session.projectReplaced.connect(self.load_from_session)
        session.datasetChanged.connect(self._data_changed)
        self.load_from_session()

    # -- state -------------------------------------------------------------------------------------
    @property
    def arch(self) -> str:
        item = self.family_list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else self.session.project.config.arch

    @property
    def form(self) -> ParamForm:
        return self._form_for(self.arch)

    @property
    def valid(self) -> bool:
        return self._valid

    def errors(self) -> dict[str, str]:
        errs = dict(self.form.errors())
        if not self.general_error.isHidden() and self.general_error.text():
            errs["_"] = self.general_error.text()
        return errs

    def _form_for(self, arch: str) -> ParamForm:
        form = self.forms.get(arch)
        if form is None:
            form = ParamForm(model_info(arch).params.describe())
            form.changed.connect(self._params_edited)
            form.helpChanged.connect(self.help_label.setText)
            self.forms[arch] = form
            self.form_stack.addWidget(form)
        return form

    @Slot()
    def load_from_session(self) -> None:
        p = self.session.project
        self._task = p.task
        self.family_list.blockSignals(True)
        self.family_list.clear()
        families = list_models(p.task) or list_models()
        for name in families:
            item = QListWidgetItem(name)
            item.setData(Qt.ItemDataRole.UserRole, name)
            item.setToolTip(model_info(name).description)
            self.family_list.addItem(item)
        arch = p.config.arch if p.config.arch in families else families[0]
        self.family_list.setCurrentRow(families.index(arch))
        self.family_list.blockSignals(False)
        for arch_name, form in self.forms.items():
            form.set_values(p.params_by_arch.get(arch_name, {}))
        for s, v in ((self.height_spin, p.config.data.height), (self.width_spin, p.config.data.width)):
            s.blockSignals(True)
            s.setValue(v or s.minimum())
            s.blockSignals(False)
        self.color_combo.blockSignals(True)
        self.color_combo.setCurrentIndex(max(0, self.color_combo.findData(p.config.data.color)))
        self.color_combo.blockSignals(False)
        self._show_family(arch)

    def _show_family(self, arch: str) -> None:
        form = self._form_for(arch)
        form.set_values(self.session.params(arch))
        self.form_stack.setCurrentWidget(form)
        info = model_info(arch)
        self.family_desc.setText(f"{info.description}\nTasks: {', '.join(info.tasks)}.")
        self.session.set_arch(arch)
        self.validate()
        self._debounce.start()

    @Slot(QListWidgetItem, QListWidgetItem)
    def _family_chosen(self, item: QListWidgetItem | None, _prev: QListWidgetItem | None) -> None:
        if item is not None:
            self._show_family(item.data(Qt.ItemDataRole.UserRole))

    @Slot()
    def _reset(self) -> None:
        self.form.reset_defaults()

    @Slot()
    def _params_edited(self) -> None:
        self.session.set_params(self.arch, self.form.values())
        self.validate()
        self._debounce.start()

    @Slot()
    def _input_edited(self) -> None:
        d = self.session.project.config.data
        h, w = self.height_spin.value(), self.width_spin.value()
        d.height = h if h > self.height_spin.minimum() else None
        d.width = w if w > self.width_spin.minimum() else None
        d.color = self.color_combo.currentData()
        self.session.mark_dirty()
        self._shape = None
        self.validate()
        self._debounce.start()

    @Slot()
    def _data_changed(self) -> None:
        self._shape = None
        if self.session.project.task != self._task:  # e.g. a text manifest arrived: other families apply
            self.load_from_session()
            return
        self._debounce.start()

    # -- validation --------------------------------------------------------------------------------
    def validate(self) -> bool:
        """Checks the current values with the family's rules; shows errors inline. Returns validity."""
        arch, form = self.arch, self.form
        errors: dict[str, str] = {}
        general = ""
        try:
            p = model_info(arch).params.from_dict(form.values())
            if self._shape is not None:
                c, h, w = self._shape
                p.check(in_channels=c, image_size=(h, w))
        except ParamError as e:
            if e.param in form.rows:
                errors[e.param] = e.message
            else:
                general = str(e)
        form.set_errors(errors)
        self.general_error.setText(general)
        self.general_error.setVisible(bool(general))
        valid = not errors and not general
        if valid != self._valid:
            self._valid = valid
            self.validityChanged.emit(valid)
        return valid

    # -- dry run -----------------------------------------------------------------------------------
    def _num_outputs(self) -> int:
        return max(2, len(self.session.project.classes))

    @Slot()
    def _dry_run(self) -> None:
        if not self.validate():
            self.count_label.setText("–")
            return
        samples = self.session.project.samples
        step = max(1, len(samples) // 64)
        subset = [Sample(p, t) for p, t in samples[::step][:64]]  # type: ignore[arg-type]
        d = self.session.project.config.data
        self.runner.request(self.arch, self.form.values(), subset, (d.height, d.width, d.color), self._num_outputs())

    def request_summary(self) -> None:
        """Dry-runs now (tests, screenshots)."""
        self._debounce.stop()
        self._dry_run()

    @Slot(object)
    def _show_summary(self, s: ModelSummary) -> None:
        self.last_summary = s
        if s.input_shape != (0, 0, 0) and s.input_shape != self._shape:
            self._shape = s.input_shape
            if not self.validate():  # a shape rule (e.g. too many poolings) just became checkable
                self.count_label.setText("–")
                return
        c, h, w = s.input_shape
        estimated = "" if self.session.project.samples else " (no images yet: a 3x32x32 example)"
        self.shape_label.setText(f"Input {c} × {h} × {w} → {s.num_outputs} outputs{estimated}")
        if s.error:
            self.count_label.setText("–")
            form = self.form
            if s.error_param in form.rows:
                form.set_errors({s.error_param: s.error})
            else:
                self.general_error.setText(s.error)
                self.general_error.show()
            if self._valid:
                self._valid = False
                self.validityChanged.emit(False)
            self.table.setRowCount(0)
            return
        self.count_label.setText(f"{s.total:,}" + (f"  ({s.trainable:,} trainable)" if s.trainable != s.total else ""))
        self.table.setRowCount(len(s.rows))
        for i, r in enumerate(s.rows):
            cells = (r.name, r.type, r.output_shape, f"{r.params:,}")
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if j == 3:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(i, j, item)
        self.summaryReady.emit(s)

    def shutdown(self) -> None:
        """Stops the dry-run thread (before the app quits)."""
        self._debounce.stop()
        self.runner.close()
