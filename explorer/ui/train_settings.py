"""Training settings bound to the project's :class:`~explorer.engine.RunConfig`.

Widgets are bounded by the engine's own valid ranges, the device list shows only devices that
work here, and augmentation is a form generated from :class:`explorer.data.AugmentConfig`.
"""

from __future__ import annotations

import math

from PySide6.QtCore import Signal, Slot
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QSpinBox, QVBoxLayout, QWidget

from explorer.data import AugmentConfig
from explorer.engine import available_devices
from explorer.engine.config import OPTIMIZERS, SCHEDULES

from .param_form import ParamForm, infos_from_dataclass
from .session import ProjectSession

__all__ = ["TrainSettings", "LrSpinBox"]

_NICE = (1.0, 2.0, 3.0, 5.0)
_SCHEDULE_TEXT = {
    "none": "constant",
    "step": "step decay",
    "cosine": "cosine decay",
    "onecycle": "one-cycle",
}


class LrSpinBox(QDoubleSpinBox):
    """A learning-rate box: shows 0.001 / 3e-05, steps through 1-2-3-5 per decade."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setDecimals(10)
        self.setRange(1e-8, 10.0)
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


class TrainSettings(QWidget):
    changed = Signal()

    def __init__(self, session: ProjectSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.optimizer = QComboBox()
        for o in OPTIMIZERS:
            self.optimizer.addItem(o, o)
        self.optimizer.setToolTip("adam: a safe default. adamw: adam with proper weight decay. sgd: with momentum.")
        self.lr = LrSpinBox()
        self.lr.setToolTip("Peak learning rate. Arrow keys step 1-2-3-5 per decade. 0.001 suits adam.")
        self.schedule = QComboBox()
        for s in SCHEDULES:
            self.schedule.addItem(_SCHEDULE_TEXT.get(s, s), s)
        self.schedule.setToolTip(
            "How the learning rate changes during training. One-cycle warms up to the "
            "learning rate, then decays; step divides it every few epochs; cosine decays smoothly."
        )
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 100_000)
        self.epochs.setToolTip("Passes over the training images.")
        self.batch_size = QSpinBox()
        self.batch_size.setRange(1, 65_536)
        self.batch_size.setToolTip("Images per step. Smaller uses less memory; larger is faster per image.")
        self.val_fraction = QDoubleSpinBox()
        self.val_fraction.setRange(0.0, 0.85)
        self.val_fraction.setSingleStep(0.05)
        self.val_fraction.setDecimals(2)
        self.val_fraction.setToolTip("Share of each class held out to measure the model on images it never trained on.")
        self.device = QComboBox()
        self.device.addItem(f"auto ({available_devices()[0]})", "auto")
        for d in available_devices():
            self.device.addItem(d, d)
        self.device.setToolTip("Only devices that work on this computer are listed.")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setToolTip("Same seed, same data split and same initial weights: runs you can compare.")
        self.early_stopping = QSpinBox()
        self.early_stopping.setRange(0, 100_000)
        self.early_stopping.setSpecialValueText("off")
        self.early_stopping.setToolTip("Stop after this many epochs without a better validation loss.")
        self.weight_decay = QDoubleSpinBox()
        self.weight_decay.setRange(0.0, 1.0)
        self.weight_decay.setDecimals(4)
        self.weight_decay.setSingleStep(0.0005)
        self.weight_decay.setToolTip("L2 penalty on the weights; 0 = none.")
        self.probe_interval = QDoubleSpinBox()
        self.probe_interval.setRange(0.0, 60.0)
        self.probe_interval.setSingleStep(0.5)
        self.probe_interval.setDecimals(1)
        self.probe_interval.setSuffix(" s")
        self.probe_interval.setSpecialValueText("off")
        self.probe_interval.setToolTip("How often 'Inside the model' refreshes during training; off = never.")

        basic = QGroupBox("Training")
        f = QFormLayout(basic)
        f.addRow("Optimizer", self.optimizer)
        f.addRow("Learning rate", self.lr)
        f.addRow("Schedule", self.schedule)
        f.addRow("Epochs", self.epochs)
        f.addRow("Batch size", self.batch_size)
        f.addRow("Validation split", self.val_fraction)
        f.addRow("Device", self.device)
        f.addRow("Seed", self.seed)
        more = QGroupBox("More")
        g = QFormLayout(more)
        g.addRow("Early stopping", self.early_stopping)
        g.addRow("Weight decay", self.weight_decay)
        g.addRow("Live view every", self.probe_interval)
        self.augment = ParamForm(infos_from_dataclass(AugmentConfig))
        aug = QGroupBox("Augmentation")
        aug.setToolTip("Random changes to each training image, so the model learns what does not matter.")
        al = QVBoxLayout(aug)
        al.addWidget(self.augment)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(basic)
        layout.addWidget(more)
        layout.addWidget(aug)
        layout.addStretch(1)

        for w in (self.optimizer, self.schedule, self.device):
            w.currentIndexChanged.connect(self._edited)
        for w in (self.lr, self.val_fraction, self.weight_decay, self.probe_interval):
            w.valueChanged.connect(self._edited)
        for w in (self.epochs, self.batch_size, self.seed, self.early_stopping):
            w.valueChanged.connect(self._edited)
        self.augment.changed.connect(self._edited)
        session.projectReplaced.connect(self.load_from_session)
        self.load_from_session()

    @Slot()
    def load_from_session(self) -> None:
        cfg = self.session.project.config
        t, d = cfg.train, cfg.data
        widgets = [
            self.optimizer,
            self.schedule,
            self.device,
            self.lr,
            self.val_fraction,
            self.weight_decay,
            self.probe_interval,
            self.epochs,
            self.batch_size,
            self.seed,
            self.early_stopping,
        ]
        for w in widgets:
            w.blockSignals(True)
        try:
            self.optimizer.setCurrentIndex(max(0, self.optimizer.findData(t.optimizer)))
            self.schedule.setCurrentIndex(max(0, self.schedule.findData(t.schedule)))
            self.device.setCurrentIndex(max(0, self.device.findData(t.device)))
            self.lr.setValue(t.lr)
            self.val_fraction.setValue(d.val_fraction)
            self.weight_decay.setValue(t.weight_decay)
            self.probe_interval.setValue(t.probe_interval)
            self.epochs.setValue(t.epochs)
            self.batch_size.setValue(t.batch_size)
            self.seed.setValue(t.seed)
            self.early_stopping.setValue(t.early_stopping)
        finally:
            for w in widgets:
                w.blockSignals(False)
        self.augment.set_values(d.augment.to_dict())

    @Slot()
    def _edited(self, *_args: object) -> None:
        cfg = self.session.project.config
        t, d = cfg.train, cfg.data
        t.optimizer = self.optimizer.currentData()
        t.schedule = self.schedule.currentData()
        t.device = self.device.currentData()
        t.lr = float(self.lr.value())
        t.epochs = self.epochs.value()
        t.batch_size = self.batch_size.value()
        t.seed = self.seed.value()
        t.early_stopping = self.early_stopping.value()
        t.weight_decay = float(self.weight_decay.value())
        t.probe_interval = float(self.probe_interval.value())
        d.val_fraction = float(self.val_fraction.value())
        try:
            d.augment = AugmentConfig.from_dict(self.augment.values())
            self.augment.set_errors({})
        except ValueError as e:
            self.augment.set_errors({k: str(e) for k in self.augment.rows if k in str(e)})
        self.session.mark_dirty()
        self.changed.emit()
