"""A form generated from a list of :class:`models.ParamInfo`: one editor per parameter.

``int``/``float`` get spin boxes bounded by the declared range, choices a combo box, ``bool`` a
check box, ``int_list`` and free ``str`` a line edit. Every row has a tooltip with the help text
and the valid range, and an inline error line that :meth:`ParamForm.set_errors` fills; the form
itself does not know the rules (the owner validates through the family's ``Params.from_dict`` /
``check`` so the UI and the CLI refuse exactly the same values).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QWidget,
)

from models import ParamInfo, parse_bool

from .style import repolish

__all__ = ["ParamForm", "describe_range", "infos_from_dataclass"]

_INT_LIMIT = 2_000_000_000


def describe_range(info: ParamInfo) -> str:
    if info.choices is not None:
        return "one of " + ", ".join(map(str, info.choices))
    if info.min is not None and info.max is not None:
        return f"{_fmt(info.min)} to {_fmt(info.max)}" + (" each" if info.kind == "int_list" else "")
    if info.min is not None:
        return f"at least {_fmt(info.min)}"
    if info.max is not None:
        return f"at most {_fmt(info.max)}"
    return ""


def _fmt(v: float) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def infos_from_dataclass(cls: type) -> list[ParamInfo]:
    """ParamInfos for a plain config dataclass whose fields carry ``help``/``min``/``max`` metadata
    (e.g. :class:`explorer.data.AugmentConfig`)."""
    import dataclasses
    import typing

    hints = typing.get_type_hints(cls)
    kinds = {bool: "bool", int: "int", float: "float", str: "str"}
    out = []
    for f in dataclasses.fields(cls):
        md = f.metadata
        out.append(
            ParamInfo(
                name=f.name,
                kind=kinds.get(hints[f.name], "str"),
                default=f.default,
                help=md.get("help", ""),
                min=md.get("min"),
                max=md.get("max"),
                choices=md.get("choices"),
            )
        )
    return out


class _Row:
    def __init__(self, info: ParamInfo, label: QLabel, editor: QWidget, field: QWidget, error: QLabel) -> None:
        self.info = info
        self.label = label
        self.editor = editor  # the value widget
        self.field = field  # what sits in the grid (editor, or editor + browse button)
        self.error = error


class ParamForm(QWidget):
    """Editors for ``infos``; ``changed`` fires on every edit."""

    changed = Signal()
    helpChanged = Signal(str)

    def __init__(self, infos: Sequence[ParamInfo], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.infos = list(infos)
        self.rows: dict[str, _Row] = {}
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(10)
        grid.setVerticalSpacing(3)
        grid.setColumnStretch(1, 1)
        r = 0
        for info in self.infos:
            label = QLabel(info.name.replace("_", " ").capitalize())
            editor, field = self._make_editor(info)
            tip = self._tooltip(info)
            for w in (label, editor):
                w.setToolTip(tip)
            editor.setObjectName(f"param_{info.name}")
            editor.installEventFilter(self)
            error = QLabel()
            error.setProperty("role", "error")
            error.setWordWrap(True)
            error.setObjectName(f"error_{info.name}")
            error.hide()
            grid.addWidget(label, r, 0, Qt.AlignmentFlag.AlignVCenter)
            grid.addWidget(field, r, 1)
            grid.addWidget(error, r + 1, 1)
            self.rows[info.name] = _Row(info, label, editor, field, error)
            r += 2
        self.set_values({})

    # -- building ----------------------------------------------------------------------------------
    @staticmethod
    def _tooltip(info: ParamInfo) -> str:
        rng = describe_range(info)
        default = ", ".join(map(str, info.default)) if isinstance(info.default, (tuple, list)) else info.default
        parts = [f"<b>{info.name}</b>", info.help]
        if rng:
            parts.append(f"Valid: {rng}.")
        parts.append(f"Default: {default!s}." if default != "" else "Default: empty.")
        return "<br>".join(p for p in parts if p)

    def _make_editor(self, info: ParamInfo) -> tuple[QWidget, QWidget]:
        if info.choices is not None:
            w: QWidget = QComboBox()
            for c in info.choices:
                w.addItem(str(c), c)
            w.currentIndexChanged.connect(self._edited)
            return w, w
        if info.kind == "bool":
            w = QCheckBox()
            w.toggled.connect(self._edited)
            return w, w
        if info.kind == "int":
            w = QSpinBox()
            w.setRange(
                int(info.min) if info.min is not None else -_INT_LIMIT,
                int(info.max) if info.max is not None else _INT_LIMIT,
            )
            w.setAccelerated(True)
            w.valueChanged.connect(self._edited)
            return w, w
        if info.kind == "float":
            w = QDoubleSpinBox()
            lo = info.min if info.min is not None else -1e9
            hi = info.max if info.max is not None else 1e9
            w.setRange(lo, hi)
            w.setDecimals(3 if hi - lo <= 10 else 2)
            w.setSingleStep(0.05 if hi - lo <= 2 else 1.0 if hi - lo <= 500 else 10.0)
            w.valueChanged.connect(self._edited)
            return w, w
        w = QLineEdit()
        if info.kind == "int_list":
            w.setPlaceholderText("e.g. 32, 64, 128")
        w.textEdited.connect(self._edited)
        if info.kind == "str" and any(k in info.name for k in ("weights", "file", "path")):
            box = QWidget()
            lay = QHBoxLayout(box)
            lay.setContentsMargins(0, 0, 0, 0)
            lay.addWidget(w, 1)
            browse = QToolButton()
            browse.setText("…")
            browse.setToolTip("Choose a file")
            browse.clicked.connect(lambda _=False, e=w: self._browse(e))
            lay.addWidget(browse)
            return w, box
        return w, w

    def _browse(self, edit: QLineEdit) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Choose a file", edit.text(), "Weights (*.safetensors *.pth *.pt);;All files (*)"
        )
        if path:
            edit.setText(path)
            self._edited()

    @Slot()
    def _edited(self, *_args: Any) -> None:
        self.changed.emit()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt
        if event.type() == QEvent.Type.FocusIn:
            for row in self.rows.values():
                if row.editor is obj:
                    self.helpChanged.emit(
                        f"<b>{row.info.name}</b>: {row.info.help} "
                        + (f"<i>({describe_range(row.info)})</i>" if describe_range(row.info) else "")
                    )
        return False

    # -- values ------------------------------------------------------------------------------------
    def values(self) -> dict[str, Any]:
        """Current values: native types, ``int_list`` as a list of ints when it parses (else the text,
        which validation then rejects with a message)."""
        out: dict[str, Any] = {}
        for name, row in self.rows.items():
            w, info = row.editor, row.info
            if isinstance(w, QComboBox):
                out[name] = w.currentData()
            elif isinstance(w, QCheckBox):
                out[name] = w.isChecked()
            elif isinstance(w, (QSpinBox, QDoubleSpinBox)):
                out[name] = w.value()
            elif info.kind == "int_list":
                text = w.text().strip()
                try:
                    out[name] = [int(p) for p in text.replace(" ", "").strip("()[]").split(",") if p]
                    if not out[name]:
                        out[name] = text
                except ValueError:
                    out[name] = text
            else:
                out[name] = w.text()
        return out

    def set_values(self, values: Mapping[str, Any]) -> None:
        """Shows ``values``; parameters not given get their defaults. Emits nothing."""
        for name, row in self.rows.items():
            v = values.get(name, row.info.default)
            w = row.editor
            w.blockSignals(True)
            try:
                if isinstance(w, QComboBox):
                    i = w.findData(v)
                    if i < 0:
                        i = w.findText(str(v))
                    w.setCurrentIndex(max(i, 0))
                elif isinstance(w, QCheckBox):
                    w.setChecked(_checked(v, row.info.default))
                elif isinstance(w, QSpinBox):
                    w.setValue(int(_num(v, row.info.default)))
                elif isinstance(w, QDoubleSpinBox):
                    w.setValue(float(_num(v, row.info.default)))
                elif isinstance(v, (list, tuple)):
                    w.setText(", ".join(str(x) for x in v))
                else:
                    w.setText("" if v is None else str(v))
            finally:
                w.blockSignals(False)

    def set_value(self, name: str, value: Any) -> None:
        """Sets one value as a user would (emits ``changed``)."""
        self.set_values({**self.values(), name: value})
        self.changed.emit()

    def reset_defaults(self) -> None:
        self.set_values({})
        self.changed.emit()

    # -- errors ------------------------------------------------------------------------------------
    def set_errors(self, errors: Mapping[str, str]) -> None:
        for name, row in self.rows.items():
            msg = errors.get(name)
            row.error.setText(msg or "")
            row.error.setVisible(bool(msg))
            if bool(row.editor.property("invalid")) != bool(msg):
                row.editor.setProperty("invalid", bool(msg))
                repolish(row.editor)

    def errors(self) -> dict[str, str]:
        return {n: r.error.text() for n, r in self.rows.items() if not r.error.isHidden() and r.error.text()}


def _checked(v: Any, default: Any) -> bool:
    try:
        return parse_bool(v)
    except ValueError:
        return bool(default)


def _num(v: Any, default: Any) -> float:
    try:
        x = float(v)
        return x if math.isfinite(x) else float(default)
    except (TypeError, ValueError):
        return float(default)
