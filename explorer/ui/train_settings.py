"""Training settings bound to the project's :class:`~explorer.engine.RunConfig`.

Every editor is generated from the setting's declaration (:mod:`explorer.engine.settings`):
its range, choices, default, step, unit and help come from there, so the form, the CLI and the
engine's validation can never disagree. The device list shows only devices that work here, and
augmentation is a :class:`ParamForm` over :class:`explorer.data.AugmentConfig`'s declaration.
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import Signal, Slot
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from explorer.data import AugmentConfig
from explorer.engine import available_devices
from explorer.engine.config import all_settings
from explorer.engine.settings import Setting, describe_range, format_default

from .param_form import ParamForm, infos_from_dataclass
from .session import ProjectSession

__all__ = ["TrainSettings", "LrSpinBox", "setting_editor", "BASIC", "MORE"]

BASIC = (
    "train.optimizer",
    "train.lr",
    "train.schedule",
    "train.epochs",
    "train.batch_size",
    "data.val_fraction",
    "train.device",
    "train.seed",
)
MORE = ("train.early_stopping", "train.weight_decay", "train.probe_interval")

_NICE = (1.0, 2.0, 3.0, 5.0)
_INT_LIMIT = 2**31 - 1
_CHOICE_TEXT = {
    "train.schedule": {"none": "constant", "step": "step decay", "cosine": "cosine decay", "onecycle": "one-cycle"},
}


class LrSpinBox(QDoubleSpinBox):
    """A learning-rate box: shows 0.001 / 3e-05, steps through 1-2-3-5 per decade."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setDecimals(10)
        self.setKeyboardTracking(False)

    def textFromValue(self, value: float) -> str:  # noqa: N802 - Qt
        return f"{value:.3g}"

    def valueFromText(self, text: str) -> float:  # noqa: N802 - Qt
        try:
            return float(text)
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int) -> object:
        try:
            v = float(text)
        except ValueError:
            return QValidator.State.Intermediate, text, pos
        ok = self.minimum() <= v <= self.maximum()
        return (QValidator.State.Acceptable if ok else QValidator.State.Intermediate), text, pos

    def stepBy(self, steps: int) -> None:  # noqa: N802 - Qt
        v = self.value()
        for _ in range(abs(steps)):
            exp = math.floor(math.log10(v) + 1e-9)
            mant = v / 10**exp
            if steps > 0:
                nxt = next((n for n in _NICE if n > mant + 1e-9), None)
                v = (nxt if nxt else 10.0) * 10**exp
            else:
                prv = next((n for n in reversed(_NICE) if n < mant - 1e-9), None)
                v = (prv * 10**exp) if prv else 5.0 * 10 ** (exp - 1)
        self.setValue(min(max(v, self.minimum()), self.maximum()))


def _choice_items(s: Setting) -> list[tuple[str, Any]]:
    """(text, value) per choice; the device list keeps only devices that work here."""
    if s.key == "train.device":
        here = available_devices()
        return [(f"auto ({here[0]})", "auto"), *((d, d) for d in here if d in s.choices)]
    texts = _CHOICE_TEXT.get(s.key, {})
    return [(texts.get(c, str(c)), c) for c in s.choices or ()]


def _decimals(s: Setting) -> int:
    step = s.step if s.step else 0.001
    return max(0, -math.floor(math.log10(step) + 1e-9))


def setting_editor(s: Setting) -> QWidget:
    """The editor of one declared setting, bounded by its declaration."""
    if s.choices is not None:
        w: Any = QComboBox()
        for text, value in _choice_items(s):
            w.addItem(text, value)
    elif s.kind == "bool":
        w = QCheckBox()
    elif s.kind == "int":
        w = QSpinBox()
        w.setRange(int(s.min) if s.min is not None else -_INT_LIMIT, int(s.max) if s.max is not None else _INT_LIMIT)
    elif s.log_scale:
        w = LrSpinBox()
        w.setRange(s.min if s.min is not None else 1e-12, s.max if s.max is not None else 1e12)
    else:
        w = QDoubleSpinBox()
        w.setDecimals(_decimals(s))
        w.setRange(s.min if s.min is not None else -1e9, s.max if s.max is not None else 1e9)
        w.setSingleStep(s.step or 0.1)
    if isinstance(w, (QSpinBox, QDoubleSpinBox)):
        if s.unit:
            w.setSuffix(f" {s.unit}")
        if s.zero_is_off:
            w.setSpecialValueText("off")
    rng = describe_range(s)
    keys = " Arrow keys step 1-2-3-5 per decade." if s.log_scale else ""
    w.setToolTip(f"{s.help}{keys}" + (f" Valid: {rng}." if rng else "") + f" Default: {format_default(s)}.")
    w.setObjectName(f"setting_{s.key}")
    return w


def _get(w: QWidget) -> Any:
    if isinstance(w, QComboBox):
        return w.currentData()
    if isinstance(w, QCheckBox):
        return w.isChecked()
    if isinstance(w, QDoubleSpinBox):
        return float(w.value())
    assert isinstance(w, QSpinBox)
    return w.value()


def _set(w: QWidget, value: Any) -> None:
    if isinstance(w, QComboBox):
        w.setCurrentIndex(max(0, w.findData(value)))
    elif isinstance(w, QCheckBox):
        w.setChecked(bool(value))
    elif isinstance(w, (QSpinBox, QDoubleSpinBox)):
        w.setValue(value)


def _owner(cfg: Any, key: str) -> tuple[Any, str]:
    """The config object holding dotted ``key`` and the attribute name (``cfg.train``, ``"lr"``)."""
    *path, name = key.split(".")
    for part in path:
        cfg = getattr(cfg, part)
    return cfg, name


class TrainSettings(QWidget):
    changed = Signal()

    def __init__(self, session: ProjectSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.editors: dict[str, QWidget] = {}
        settings = all_settings()
        basic = self._group("Training", [settings[k] for k in BASIC])
        more = self._group("More", [settings[k] for k in MORE])
        self.augment = ParamForm(infos_from_dataclass(AugmentConfig))
        self.augment.changed.connect(self._edited)
        aug = QGroupBox("Augmentation")
        aug.setToolTip("Random changes to each training image, so the model learns what does not matter.")
        QVBoxLayout(aug).addWidget(self.augment)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for box in (basic, more, aug):
            layout.addWidget(box)
        layout.addStretch(1)
        session.projectReplaced.connect(self.load_from_session)
        self.load_from_session()

    def _group(self, title: str, settings: list[Setting]) -> QGroupBox:
        """A titled form of generated editors; each is also ``self.<name>`` (``self.lr``)."""
        box = QGroupBox(title)
        form = QFormLayout(box)
        for s in settings:
            w = setting_editor(s)
            self.editors[s.key] = w
            setattr(self, s.name, w)
            form.addRow(s.label, w)
            if isinstance(w, QComboBox):
                w.currentIndexChanged.connect(self._edited)
            elif isinstance(w, QCheckBox):
                w.toggled.connect(self._edited)
            else:
                w.valueChanged.connect(self._edited)
        return box

    @Slot()
    def load_from_session(self) -> None:
        self.show_config(None)

    @Slot(object)
    def show_config(self, cfg: Any) -> None:
        """Shows ``cfg`` (a followed run's own RunConfig) read-only; None: the project's, editable."""
        self.setEnabled(cfg is None)
        cfg = cfg if cfg is not None else self.session.project.config
        for key, w in self.editors.items():
            obj, name = _owner(cfg, key)
            w.blockSignals(True)
            try:
                _set(w, getattr(obj, name))
            finally:
                w.blockSignals(False)
        self.augment.set_values(cfg.data.augment.to_dict())

    @Slot()
    def _edited(self, *_args: object) -> None:
        cfg = self.session.project.config
        for key, w in self.editors.items():
            obj, name = _owner(cfg, key)
            setattr(obj, name, _get(w))
        try:
            cfg.data.augment = AugmentConfig.from_dict(self.augment.values())
            self.augment.set_errors({})
        except ValueError as e:
            self.augment.set_errors({k: str(e) for k in self.augment.rows if k in str(e)})
        self.session.mark_dirty()
        self.changed.emit()
