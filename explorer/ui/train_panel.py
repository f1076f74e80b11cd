"""The training screen: settings, Train / Pause / Stop, progress, live curves, inside the model.

It only displays: the main window starts and stops runs (through the toolbar's actions, which the
panel's buttons share) and forwards the controller's events here.
"""

from __future__ import annotations

import math
import os

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from explorer.engine import DataReady, EpochReport, Finished, ModelReady, Status, StepReport, available_devices
from explorer.engine.tasks import Task, get_task

from .curves import CurvesView
from .probe_view import ProbeView
from .session import ProjectSession
from .style import icon
from .train_settings import TrainSettings

__all__ = ["TrainPanel", "Banner", "ProcessLauncher", "format_eta"]


def format_eta(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "–"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Banner(QFrame):
    """A dismissable message line (error or info) above the training view."""

    def __init__(self, kind: str = "error", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("errorBanner" if kind == "error" else "infoBanner")
        ic = QLabel()
        ic.setPixmap(icon("error" if kind == "error" else "warning").pixmap(20, 20))
        ic.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton()
        close.setIcon(icon("close"))
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.hide)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 8, 6, 8)
        lay.addWidget(ic)
        lay.addWidget(self.text, 1)
        lay.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def show_message(self, text: str) -> None:
        self.text.setText(text)
        self.show()


class RunProgress(QWidget):
    """Train / Pause / Stop, the run's state line, the progress bar and the detail line.

    ``phase`` is the run's real state as the panel knows it (ready, starting, running, paused,
    stopping, finished); step reports update the state line only while the run is starting or
    running, never by reading the label back.
    """

    def __init__(self, actions: tuple[QAction, ...], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.phase = "ready"
        buttons = QHBoxLayout()
        self.buttons: list[QToolButton] = []
        for action in actions:
            b = QToolButton()
            b.setDefaultAction(action)
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            b.setMinimumWidth(92)
            buttons.addWidget(b)
            self.buttons.append(b)
        self.state_label = QLabel("Ready.")
        self.state_label.setProperty("role", "metric")
        buttons.addSpacing(12)
        buttons.addWidget(self.state_label, 1)
        self.progress = QProgressBar()
        self.detail_label = QLabel("")
        self.detail_label.setProperty("role", "hint")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(buttons)
        lay.addWidget(self.progress)
        lay.addWidget(self.detail_label)
        self._steps_total = 1
        self.reset()

    def reset(self) -> None:
        self.phase = "ready"
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("")
        self.state_label.setText("Ready.")
        self.detail_label.setText("")

    def set_phase(self, phase: str, text: str) -> None:
        self.phase = phase
        self.state_label.setText(text)

    def begin(self, run_name: str) -> None:
        self.progress.setRange(0, 0)  # busy until the first step
        self.progress.setFormat("")
        self.set_phase("starting", f"Starting run {run_name}…")
        self.detail_label.setText("")

    @Slot(str)
    def on_controller_state(self, state: str) -> None:
        """The controller's state (idle, starting, running, paused, stopping): a stop shows at once."""
        if state == "stopping":
            self.set_phase("stopping", "Stopping…")

    def on_status(self, message: str) -> None:
        if message == "paused":
            self.set_phase("paused", "Paused.")
        elif message == "resumed":
            self.set_phase("running", "Training…")
        else:
            self.state_label.setText(message[:1].upper() + message[1:] + "…")

    def on_step(self, r: StepReport) -> None:
        total = max(1, r.epochs * r.steps)
        if self._steps_total != total or self.progress.maximum() != total:
            self._steps_total = total
            self.progress.setRange(0, total)
        self.progress.setValue(min(total, (r.epoch - 1) * r.steps + r.step))
        self.progress.setFormat(
            f"Epoch {r.epoch}/{r.epochs} · step {r.step}/{r.steps} · {r.samples_per_second:,.0f} samples/s · "
            f"ETA {format_eta(r.eta)}"
        )
        if self.phase in ("starting", "running"):
            self.set_phase("running", f"Training… loss {r.loss:.4f}, accuracy {r.accuracy:.1%}")

    def on_finished(self, ev: Finished, task: Task | None) -> str:
        """Shows the end of a run; returns the summary of its validation figures (the task's headline)."""
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
        m = ev.metrics
        head = task.headline_text(m) if task is not None else ""
        summary = f"validation {head}" if head else ""
        if isinstance(m.get("val_cer"), (int, float)):
            summary += f", character error rate {m['val_cer']:.1%}"
        if ev.status in ("completed", "early_stopped"):
            self.progress.setValue(self.progress.maximum())
            self.progress.setFormat(f"Done · {m.get('epochs', '?')} epochs · {m.get('train_seconds', 0):.1f} s")
            self.set_phase("finished", "Finished" + (f": {summary}" if summary else "."))
        elif ev.status == "stopped":
            self.progress.setFormat("Stopped")
            self.set_phase("finished", "Stopped" + (f" ({summary})" if summary else "."))
        else:
            self.progress.setFormat("Failed")
            self.set_phase("finished", "Training failed.")
        return summary


class ProcessLauncher(QWidget):
    """ "Train on N GPUs" (or N CPU processes): the same training in a separate process that the
    window follows through the run's event log (see :mod:`explorer.ui.follow`)."""

    launchRequested = Signal(int)  # the number of processes

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        gpu = "cuda" in available_devices()
        self.unit = "GPU" if gpu else "process"
        self.count = QSpinBox()
        self.count.setRange(1, 64 if gpu else max(1, os.cpu_count() or 1))
        self.count.setValue(1)
        self.count.setToolTip("How many training processes (torchrun, one per GPU; gloo processes on a CPU machine)")
        self.button = QPushButton()
        self.button.setToolTip(
            "Train in a separate process (the app follows its run folder); Stop stops it, and the run stays resumable"
        )
        self.button.clicked.connect(self._clicked)
        self.count.valueChanged.connect(self._update_text)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.button)
        lay.addWidget(self.count)
        lay.addStretch(1)
        self._update_text()

    @Slot()
    def _update_text(self) -> None:
        n = self.count.value()
        if self.unit == "GPU":
            self.button.setText(f"Train on {n} GPU{'s' if n != 1 else ''}")
        else:
            self.button.setText(f"Train in {n} separate process{'es' if n != 1 else ''}")

    @Slot()
    def _clicked(self) -> None:
        self.launchRequested.emit(self.count.value())


class TrainPanel(QWidget):
    trainRequested = Signal()

    def __init__(
        self,
        session: ProjectSession,
        train_action: QAction,
        pause_action: QAction,
        stop_action: QAction,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.session = session
        self.settings = TrainSettings(session)
        self.run_progress = RunProgress((train_action, pause_action, stop_action))
        self.error_banner = Banner("error")
        self.info_banner = Banner("info")
        self.launcher = ProcessLauncher()
        self._train_action = train_action  # a training in a separate process may start when Train may
        train_action.changed.connect(self._on_train_action_changed)
        self.curves = CurvesView()
        self.probe = ProbeView()
        top = QWidget()
        tl = QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        for w in (self.error_banner, self.info_banner, self.run_progress, self.launcher):
            tl.addWidget(w)
        tl.addWidget(self.curves, 1)
        self.right_splitter = QSplitter(Qt.Orientation.Vertical)
        self.right_splitter.setObjectName("trainRightSplitter")
        self.right_splitter.addWidget(top)
        self.right_splitter.addWidget(self.probe)
        self.right_splitter.setSizes([380, 420])
        settings_scroll = self._settings_scroll()
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("trainSplitter")
        self.splitter.addWidget(settings_scroll)
        self.splitter.addWidget(self.right_splitter)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([settings_scroll.minimumWidth() + 10, 900])
        QVBoxLayout(self).addWidget(self.splitter)
        rp = self.run_progress  # the parts tests reach for
        self.buttons, self.state_label, self.progress, self.detail_label = (
            rp.buttons, rp.state_label, rp.progress, rp.detail_label,
        )  # fmt: skip
        self._labels: list[str] = []
        self._task: Task | None = None  # the task of the run on screen (it may not be the project's)
        session.projectReplaced.connect(self.reset)

    def _settings_scroll(self) -> QScrollArea:
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.settings)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # never narrower than its content (nothing clipped), plus room for the vertical scroll bar
        scroll.setMinimumWidth(
            self.settings.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width() + 4
        )
        return scroll

    @Slot()
    def _on_train_action_changed(self) -> None:
        self.launcher.setEnabled(self._train_action.isEnabled())

    # -- runs --------------------------------------------------------------------------------------
    @Slot()
    def reset(self) -> None:
        """Another project: nothing of the previous one's runs stays on screen."""
        self.error_banner.hide()
        self.info_banner.hide()
        self.curves.reset(self.session.project.config.train.epochs)
        self.curves.set_task(self.session.project.task_object)
        self.probe.clear()
        self.probe.set_labels([])
        self._labels = []
        self._task = None
        self.run_progress.reset()

    def begin_run(self, run_name: str, epochs: int | None = None) -> None:
        """A new run on screen (``epochs``: its length when it is not the project's own run)."""
        self.error_banner.hide()
        self.info_banner.hide()
        self.curves.reset(epochs or self.session.project.config.train.epochs)
        self._task = self.session.project.task_object
        self.curves.set_task(self._task)
        self.probe.clear()
        self.run_progress.begin(run_name)

    def show_error(self, message: str) -> None:
        self.error_banner.show_message(message)

    @Slot(object)
    def on_event(self, ev: object) -> None:
        if isinstance(ev, StepReport):
            self.curves.add_step(ev)
            self.run_progress.on_step(ev)
        elif isinstance(ev, EpochReport):
            self._on_epoch(ev)
        elif isinstance(ev, Status):
            self.run_progress.on_status(ev.message)
        elif isinstance(ev, DataReady):
            self._on_data(ev)
        elif isinstance(ev, ModelReady):
            self.run_progress.set_phase(
                "running", f"Training {ev.arch} ({ev.num_parameters:,} parameters) on {ev.device}…"
            )
        elif isinstance(ev, Finished):
            self._on_finished(ev)

    def _on_epoch(self, ev: EpochReport) -> None:
        self.curves.add_epoch(ev)
        val = f", validation accuracy {ev.val_accuracy:.1%}" if ev.val_accuracy is not None else ""
        if "cer" in ev.metrics:
            val += f", character error rate {ev.metrics['cer']:.1%}"
        self.detail_label.setText(
            f"Epoch {ev.epoch}: train loss {ev.train_loss:.4f}, accuracy {ev.train_accuracy:.1%}{val}"
            f" ({ev.seconds:.1f} s){'  ★ best so far' if ev.best else ''}"
        )

    def _on_data(self, ev: DataReady) -> None:
        self._task = get_task(ev.task)
        self.curves.set_task(self._task)
        self._labels = list(ev.labels)
        self.probe.set_labels(ev.labels)
        c, h, w = ev.input_shape
        n_bad = len(ev.problems)
        bad = f"; {n_bad} file{'s' if n_bad != 1 else ''} could not be used (see Problems)" if n_bad else ""
        self.detail_label.setText(
            f"{ev.train_samples} training + {ev.val_samples} validation images, "
            f"{len(ev.labels)} {get_task(ev.task).labels_noun}, "
            f"input {c}×{h}×{w}{bad}"
        )

    def _on_finished(self, ev: Finished) -> None:
        self.run_progress.on_finished(ev, self._task or self.session.project.task_object)
        if ev.status == "early_stopped":
            self.info_banner.show_message(f"Stopped early: {ev.message}")
        elif ev.status not in ("completed", "stopped"):
            self.show_error(ev.message or "Training failed.")
