"""The pieces of the architecture screen, each one control bound to the session."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
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
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from explorer.engine.config import all_settings
from explorer.engine.preview import ModelPreview
from models import list_models, model_info

from .param_form import ParamForm
from .session import ProjectSession

__all__ = ["FamilyPicker", "InputBox", "ParamsBox", "SummaryBox"]


class FamilyPicker(QGroupBox):
    """The families that can learn the project's task; picking one tells the session."""

    chosen = Signal(str)

    def __init__(self, session: ProjectSession, parent: QWidget | None = None) -> None:
        super().__init__("Model family", parent)
        self.session = session
        self.list = QListWidget()
        self.list.setObjectName("familyList")
        self.desc = QLabel()
        self.desc.setWordWrap(True)
        self.desc.setProperty("role", "hint")
        lay = QVBoxLayout(self)
        lay.addWidget(self.list, 1)
        lay.addWidget(self.desc)
        self.list.currentItemChanged.connect(self._picked)

    @property
    def arch(self) -> str:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else self.session.project.config.arch

    def load(self) -> str:
        """Lists the families for the project's task, selects its arch (signals blocked); returns it."""
        p = self.session.project
        families = list_models(p.task) or list_models()
        self.list.blockSignals(True)
        self.list.clear()
        for name in families:
            item = QListWidgetItem(name)
            item.setData(Qt.ItemDataRole.UserRole, name)
            item.setToolTip(model_info(name).description)
            self.list.addItem(item)
        arch = p.config.arch if p.config.arch in families else families[0]
        self.list.setCurrentRow(families.index(arch))
        self.list.blockSignals(False)
        return arch

    def describe(self, arch: str) -> None:
        info = model_info(arch)
        self.desc.setText(f"{info.description}\nTasks: {', '.join(info.tasks)}.")

    @Slot(QListWidgetItem, QListWidgetItem)
    def _picked(self, item: QListWidgetItem | None, _prev: QListWidgetItem | None) -> None:
        if item is not None:
            self.chosen.emit(item.data(Qt.ItemDataRole.UserRole))


class InputBox(QGroupBox):
    """Model input size and colour; edits go to the session's data settings."""

    edited = Signal()

    def __init__(self, session: ProjectSession, parent: QWidget | None = None) -> None:
        super().__init__("Input", parent)
        self.session = session
        self.height_spin, self.width_spin = QSpinBox(), QSpinBox()
        settings = all_settings()  # ranges and choices from the one declaration
        for s, size in ((self.height_spin, settings["data.height"]), (self.width_spin, settings["data.width"])):
            s.setRange(int(size.min) - 1, int(size.max))  # one below the declared minimum = "auto" (None)
            s.setSpecialValueText("auto")
            s.setSuffix(" px")
            s.setToolTip("Model input size; images are resized to it. 'auto' picks it from the images.")
            s.valueChanged.connect(self._edited)
        self.color_combo = QComboBox()
        color_text = {"gray": "gray (1 channel)", "rgb": "RGB (3 channels)"}
        for c in settings["data.color"].choices or ():
            self.color_combo.addItem(color_text.get(c, c), c)
        self.color_combo.setToolTip("auto: gray when every image is gray, else RGB.")
        self.color_combo.currentIndexChanged.connect(self._edited)
        lay = QFormLayout(self)
        lay.addRow("Height", self.height_spin)
        lay.addRow("Width", self.width_spin)
        lay.addRow("Colour", self.color_combo)

    def load(self) -> None:
        d = self.session.project.config.data
        for w in (self.height_spin, self.width_spin, self.color_combo):
            w.blockSignals(True)
        self.height_spin.setValue(d.height or self.height_spin.minimum())
        self.width_spin.setValue(d.width or self.width_spin.minimum())
        self.color_combo.setCurrentIndex(max(0, self.color_combo.findData(d.color)))
        for w in (self.height_spin, self.width_spin, self.color_combo):
            w.blockSignals(False)

    @Slot()
    def _edited(self) -> None:
        h, w = self.height_spin.value(), self.width_spin.value()
        auto_h, auto_w = self.height_spin.minimum(), self.width_spin.minimum()
        self.session.set_input(h if h > auto_h else None, w if w > auto_w else None, self.color_combo.currentData())
        self.edited.emit()


class ParamsBox(QGroupBox):
    """One generated form per family (kept, so each family's edits survive switching)."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Parameters", parent)
        self.forms: dict[str, ParamForm] = {}
        self.stack = QStackedWidget()
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
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        inner = QWidget()
        il = QVBoxLayout(inner)
        il.setContentsMargins(0, 0, 8, 0)
        il.addWidget(self.stack)
        il.addStretch(1)
        scroll.setWidget(inner)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.reset_btn)
        lay = QVBoxLayout(self)
        lay.addWidget(scroll, 1)
        lay.addWidget(self.general_error)
        lay.addWidget(self.help_label)
        lay.addLayout(row)
        self.reset_btn.clicked.connect(lambda: self.current().reset_defaults())

    def form(self, arch: str) -> ParamForm:
        form = self.forms.get(arch)
        if form is None:
            form = ParamForm(model_info(arch).params.describe())
            form.changed.connect(self.changed)
            form.helpChanged.connect(self.help_label.setText)
            self.forms[arch] = form
            self.stack.addWidget(form)
        return form

    def current(self) -> ParamForm:
        return self.stack.currentWidget()  # type: ignore[return-value]

    def set_general_error(self, text: str) -> None:
        self.general_error.setText(text)
        self.general_error.setVisible(bool(text))

    def general(self) -> str:
        return self.general_error.text() if not self.general_error.isHidden() else ""


class SummaryBox(QGroupBox):
    """Parameter count, input -> outputs line and the layer table of the latest dry run."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Model", parent)
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
        title = QLabel("Parameters")
        title.setProperty("role", "hint")
        lay = QVBoxLayout(self)
        lay.addWidget(title)
        lay.addWidget(self.count_label)
        lay.addWidget(self.shape_label)
        lay.addWidget(self.table, 1)

    def clear_count(self) -> None:
        self.count_label.setText("–")

    def show_failed(self) -> None:
        self.count_label.setText("–")
        self.table.setRowCount(0)

    def show_preview(self, s: ModelPreview, *, example_input: bool) -> None:
        c, h, w = s.input_shape
        note = f" (no images yet: a {c}x{h}x{w or s.example_width} example)" if example_input else ""
        width = f"{w}" if w is not None else f"any width (example {s.example_width})"
        self.shape_label.setText(f"Input {c} × {h} × {width} → {s.num_outputs} outputs{note}")
        if s.error:
            self.show_failed()
            return
        self.count_label.setText(f"{s.total:,}" + (f"  ({s.trainable:,} trainable)" if s.trainable != s.total else ""))
        self.table.setRowCount(len(s.rows))
        for i, r in enumerate(s.rows):
            for j, text in enumerate((r.name, r.type, r.output_shape, f"{r.params:,}")):
                item = QTableWidgetItem(text)
                if j == 3:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(i, j, item)
