"""The main window's training flow: may Train start, start a run, follow it, finish it.

A mixin of :class:`~explorer.ui.main_window.MainWindow` (it uses the window's session, controller,
screens and log).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, NamedTuple

from PySide6.QtCore import QTimer, Slot
from PySide6.QtWidgets import QWidget

from explorer.engine import DataReady, EpochReport, Finished, ModelReady, Status
from explorer.engine.config import ConfigError
from explorer.engine.tasks import TASK_NAMES
from models import list_models, model_info

from .project import RunRecord
from .worker import gui_friendly_threads

if TYPE_CHECKING:
    from .main_window import MainWindow

    _Base = MainWindow
else:
    _Base = object

__all__ = ["TrainingFlow", "TrainingProblem"]


class TrainingProblem(NamedTuple):
    """Why Train cannot start, and the screen where the user fixes it."""

    message: str
    screen: QWidget


class TrainingFlow(_Base):
    def training_problem(self) -> str | None:
        """Why Train cannot start now, or None."""
        problem = self._training_problem()
        return problem.message if problem else None

    def _training_problem(self) -> TrainingProblem | None:
        p = self.session.project
        data_screen = self.train_panel
        task = p.task_object
        if task is None:
            trainable = ", ".join(TASK_NAMES)
            return TrainingProblem(
                f"This project's task is '{p.task}', which this version cannot train yet (available: {trainable}).",
                data_screen,
            )
        if not p.samples:
            return TrainingProblem(
                "There are no images yet. Open a built-in sample or drop a folder of class folders on the window.",
                data_screen,
            )
        why = task.check_targets(p.counts())
        if why:
            return TrainingProblem(why, data_screen)
        arch = self.arch_panel.arch
        if p.task not in model_info(arch).tasks:
            fits = ", ".join(list_models(p.task)) or "none yet"
            return TrainingProblem(
                f"Fix the model family on the Architecture screen: '{arch}' cannot learn the {p.task} task (use: {fits}).",
                self.arch_panel,
            )
        if not self.arch_panel.validate():
            name, msg = next(iter(self.arch_panel.errors().items()), ("", "invalid"))
            where = f"'{name}'" if name and name != "_" else "a parameter"
            return TrainingProblem(f"Fix {where} on the Architecture screen first: {msg}", self.arch_panel)
        return None

    @Slot()
    def start_training(self) -> bool:
        if self.controller.is_running():
            return False
        problem = self._training_problem()
        if problem is None:
            try:
                cfg = self.session.project.run_config()
            except ConfigError as e:
                problem = TrainingProblem(f"Invalid setting {e}", self.train_panel)
        if problem is not None:
            self.train_panel.show_error(problem.message)
            self.show_message(problem.message)
            self.tabs.setCurrentWidget(problem.screen)
            return False
        run_dir = self.session.new_run_dir(cfg.arch)
        rec = RunRecord(
            dir=str(run_dir),
            name=run_dir.name,
            arch=cfg.arch,
            task=self.session.project.task,
            status="running",
            created=time.strftime("%Y-%m-%d %H:%M:%S"),
        )
        self.current_run = rec
        self.session.add_run(rec)
        self.train_panel.begin_run(rec.name)
        self.log_view.log(
            f"run {rec.name}: {cfg.arch} {self.session.params(cfg.arch) or '(defaults)'}, "
            f"{cfg.train.epochs} epochs, batch {cfg.train.batch_size}, lr {cfg.train.lr:g}"
        )
        self.controller.start(
            cfg,
            run_dir,
            self.session.project.to_source(),
            report_interval=self.report_interval,
            cpu_threads=gui_friendly_threads(),
        )
        self.tabs.setCurrentWidget(self.train_panel)
        return True

    @Slot()
    def toggle_pause(self) -> None:
        if self.controller.state == "paused":
            self.controller.resume()
        else:
            self.controller.pause()

    @Slot()
    def stop_training(self) -> None:
        self.controller.stop()

    @Slot(object)
    def _on_training_event(self, ev: object) -> None:
        if isinstance(ev, Status):
            self.log_view.log(ev.message)
        elif isinstance(ev, DataReady):
            self.log_view.log(
                f"data: {ev.train_samples} train / {ev.val_samples} validation, classes "
                f"{', '.join(ev.labels)}, input {ev.input_shape}, {len(ev.problems)} unusable, {ev.seconds:.1f} s"
            )
            if ev.problems:
                self.session.add_problems(ev.problems)
            self.inspector.set_labels(ev.labels)
        elif isinstance(ev, ModelReady):
            self.log_view.log(f"model: {ev.arch}, {ev.num_parameters:,} parameters on {ev.device}")
        elif isinstance(ev, EpochReport):
            val = f", val loss {ev.val_loss:.4f} acc {ev.val_accuracy:.3f}" if ev.val_loss is not None else ""
            self.log_view.log(
                f"epoch {ev.epoch}/{ev.epochs}: loss {ev.train_loss:.4f} acc {ev.train_accuracy:.3f}{val} "
                f"({ev.seconds:.1f} s, {ev.samples_per_second:,.0f} samples/s)"
            )
        elif isinstance(ev, Finished):
            self._finish_run(ev)

    def _finish_run(self, ev: Finished) -> None:
        rec = self.current_run
        if rec is not None:
            self.session.update_run(rec, status=ev.status, message=ev.message, metrics=dict(ev.metrics))
        self.show_message(f"training {ev.status}" + (f": {ev.message}" if ev.message else ""))
        if ev.run_dir is not None:  # the inspector goes on with the finished run's own model
            self.inspector.set_run(ev.run_dir, load_model=True)

    @Slot()
    def _on_idle(self) -> None:
        self.current_run = None
        if self._close_pending:
            QTimer.singleShot(0, self.close)
