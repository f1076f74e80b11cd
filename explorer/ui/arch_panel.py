"""The architecture screen: family picker, generated parameter form, live summary.

Every edit is validated at once through the family's own ``Params.from_dict`` and ``check`` (the
same rules the CLI and the trainer apply), and the offending field shows the message inline. A
dry run through the engine (:mod:`explorer.engine.preview`, off the UI thread, debounced) on the
data's input shape fills the parameter count and a layer table (name, type, output shape,
parameters).
"""

from __future__ import annotations

from PySide6.QtCore import QTimer, Signal, Slot
from PySide6.QtWidgets import QSplitter, QVBoxLayout, QWidget

from explorer.engine.preview import ModelPreview
from models import ParamError, model_info

from .arch_widgets import FamilyPicker, InputBox, ParamsBox, SummaryBox
from .dryrun import DryRunner
from .param_form import ParamForm
from .session import ProjectSession

__all__ = ["ArchPanel", "DryRunner"]


class ArchPanel(QWidget):
    validityChanged = Signal(bool)
    summaryReady = Signal(object)

    def __init__(self, session: ProjectSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self._valid = True
        self._shape: tuple[int, int, int] | None = None
        self._task = session.project.task
        self.last_summary: ModelPreview | None = None
        self.runner = DryRunner(self)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(250)
        self._debounce.timeout.connect(self._dry_run)

        self.families = FamilyPicker(session)
        self.input_box = InputBox(session)
        self.params_box = ParamsBox()
        self.summary_box = SummaryBox()
        self._layout()

        self.families.chosen.connect(self._show_family)
        self.params_box.changed.connect(self._params_edited)
        self.input_box.edited.connect(self._input_edited)
        self.runner.finished.connect(self._show_summary)
        session.projectReplaced.connect(self.load_from_session)
        session.datasetChanged.connect(self._data_changed)
        self.load_from_session()

    def _layout(self) -> None:
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.families, 1)
        ll.addWidget(self.input_box)
        self.splitter = QSplitter()
        self.splitter.setObjectName("archSplitter")
        for w in (left, self.params_box, self.summary_box):
            self.splitter.addWidget(w)
        self.splitter.setSizes([300, 420, 520])
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setStretchFactor(2, 1)
        QVBoxLayout(self).addWidget(self.splitter)
        # the parts tests and screenshots reach for
        self.family_list = self.families.list
        self.count_label = self.summary_box.count_label
        self.shape_label = self.summary_box.shape_label
        self.table = self.summary_box.table
        self.general_error = self.params_box.general_error

    # -- state -------------------------------------------------------------------------------------
    @property
    def arch(self) -> str:
        return self.families.arch

    @property
    def form(self) -> ParamForm:
        return self.params_box.form(self.arch)

    @property
    def forms(self) -> dict[str, ParamForm]:
        return self.params_box.forms

    @property
    def valid(self) -> bool:
        return self._valid

    def errors(self) -> dict[str, str]:
        errs = dict(self.form.errors())
        if self.params_box.general():
            errs["_"] = self.params_box.general()
        return errs

    @Slot()
    def load_from_session(self) -> None:
        p = self.session.project
        self._task = p.task
        self._shape = None
        self.last_summary = None
        self.runner.cancel()
        arch = self.families.load()
        for arch_name, form in self.forms.items():
            form.set_values(p.params_by_arch.get(arch_name, {}))
        self.input_box.load()
        self._show_family(arch)

    @Slot(str)
    def _show_family(self, arch: str) -> None:
        form = self.params_box.form(arch)
        form.set_values(self.session.params(arch))
        self.params_box.stack.setCurrentWidget(form)
        self.families.describe(arch)
        self.session.set_arch(arch)
        self.validate()
        self._debounce.start()

    @Slot()
    def _params_edited(self) -> None:
        self.session.set_params(self.arch, self.form.values())
        self.validate()
        self._debounce.start()

    @Slot()
    def _input_edited(self) -> None:
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
        self.params_box.set_general_error(general)
        self._set_valid(not errors and not general)
        return self._valid

    def _set_valid(self, valid: bool) -> None:
        if valid != self._valid:
            self._valid = valid
            self.validityChanged.emit(valid)

    # -- dry run -----------------------------------------------------------------------------------
    @Slot()
    def _dry_run(self) -> None:
        if not self.validate():
            self.summary_box.clear_count()
            return
        p = self.session.project
        task = p.task_object
        if task is None:
            self.summary_box.show_failed()
            self.params_box.set_general_error(f"This version cannot build models for the task '{p.task}'.")
            return
        # (path, target) pairs: the runner makes Samples on its thread (300,000 would freeze the window)
        self.runner.request(task, self.arch, self.form.values(), p.samples, p.config.data)

    def request_summary(self) -> None:
        """Dry-runs now (tests, screenshots)."""
        self._debounce.stop()
        self._dry_run()

    @Slot(object)
    def _show_summary(self, s: ModelPreview) -> None:
        self.last_summary = s
        if s.input_shape != (0, 0, 0) and s.input_shape != self._shape:
            self._shape = s.input_shape
            if not self.validate():  # a shape rule (e.g. too many poolings) just became checkable
                self.summary_box.clear_count()
                return
        self.summary_box.show_preview(s, example_input=not self.session.project.samples)
        if s.error:
            if s.error_param in self.form.rows:
                self.form.set_errors({s.error_param: s.error})
            else:
                self.params_box.set_general_error(s.error)
            self._set_valid(False)
            return
        self.summaryReady.emit(s)

    def shutdown(self) -> None:
        """Stops the dry-run thread (before the app quits)."""
        self._debounce.stop()
        self.runner.close()
