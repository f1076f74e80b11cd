"""The main window's training flow: may Train start, start a run, follow it, finish it.

A mixin of :class:`~explorer.ui.main_window.MainWindow` (it uses the window's session, controller,
screens and log). A run of another process (File > Follow Run…, ``gui --follow RUN_DIR``) or one
started in a separate process ("Train on N GPUs") comes through a
:class:`~explorer.ui.follow.RunFollower`, whose signals feed the same slots as the in-app
training controller's.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from PySide6.QtCore import QTimer, Slot
from PySide6.QtWidgets import QFileDialog, QWidget

from explorer.engine import DataReady, EpochReport, Finished, ModelReady, RunConfig, Status
from explorer.engine.config import ConfigError
from explorer.engine.eventlog import LogStarted
from explorer.engine.tasks import TASK_NAMES
from models import list_models, model_info

from .follow import RunFollower, train_command
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

    def _config_to_train(self) -> RunConfig | None:
        """The project's run config when Train may start; else shows why and returns None."""
        problem = self._training_problem()
        cfg = None
        if problem is None:
            try:
                cfg = self.session.project.run_config()
            except ConfigError as e:
                problem = TrainingProblem(f"Invalid setting {e}", self.train_panel)
        if problem is not None:
            self.train_panel.show_error(problem.message)
            self.show_message(problem.message)
            self.tabs.setCurrentWidget(problem.screen)
            return None
        return cfg

    def _busy(self) -> bool:
        return self.controller.is_running() or self.follower.is_running()

    def _new_record(self, cfg: RunConfig) -> tuple[Path, RunRecord]:
        """A new run folder and its record in the project, shown as the run on screen."""
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
        return run_dir, rec

    @Slot()
    def start_training(self) -> bool:
        if self._busy():
            return False
        if self.follower.following:  # the window shows its own run now
            self.follower.unfollow()
        cfg = self._config_to_train()
        if cfg is None:
            return False
        run_dir, _rec = self._new_record(cfg)
        self.controller.start(
            cfg,
            run_dir,
            self.session.project.to_source(),
            report_interval=self.report_interval,
            cpu_threads=gui_friendly_threads(),
        )
        self.tabs.setCurrentWidget(self.train_panel)
        return True

    # -- runs of other processes ---------------------------------------------------------------
    def _wire_follower(self) -> None:
        """Creates the follower and feeds its signals to the slots the training controller feeds."""
        f = self.follower = RunFollower(self)
        f.event.connect(self.train_panel.on_event)
        f.event.connect(self._on_training_event)
        f.probe.connect(self.train_panel.probe.set_report)
        f.probe.connect(self.inspector.show_report)
        f.log.connect(self.log_view.log)
        f.stateChanged.connect(self._on_follow_state)
        f.stateChanged.connect(self.train_panel.run_progress.on_controller_state)
        f.idle.connect(self._on_idle)
        f.runStarted.connect(self._on_followed_run_started)
        f.configRead.connect(self.train_panel.settings.show_config)  # the run's own settings, not the project's
        f.idle.connect(self.train_panel.settings.load_from_session)  # the next Train's settings again
        self.train_panel.launcher.launchRequested.connect(self.train_in_processes)

    @Slot()
    def choose_follow_run(self) -> None:
        d = QFileDialog.getExistingDirectory(
            self, "Follow a run folder (a run another process is writing, or will write)", str(Path.home())
        )
        if d:
            self.follow_run(d)

    def follow_run(self, run_dir: str | os.PathLike[str]) -> bool:
        """Shows ``run_dir`` live while another process writes it (it may not exist yet)."""
        if self._busy():
            self.show_message("A training is running; stop it before following another run.")
            return False
        run_dir = Path(run_dir)
        self.current_run = None
        self.train_panel.begin_run(run_dir.name)
        self.log_view.log(f"following {run_dir}")
        self.train_panel.settings.load_from_session()  # until the run's own config is read
        self.follower.follow(run_dir)
        self.tabs.setCurrentWidget(self.train_panel)
        return True

    @Slot(int)
    def train_in_processes(self, processes: int) -> bool:
        """Trains the project in a separate process (torchrun with ``processes`` > 1) and follows it."""
        if self._busy():
            return False
        cfg = self._config_to_train()
        if cfg is None:
            return False
        source = cfg.data.source
        if not (source.startswith("sample:") or Path(source).exists()):
            msg = (
                "Training in a separate process reads the data from one folder, manifest or built-in sample; "
                f"this project's images come from several places ({source}). Train in the app instead."
            )
            self.train_panel.show_error(msg)
            self.show_message(msg)
            return False
        self.follower.unfollow()
        run_dir, _rec = self._new_record(cfg)
        fd, config_file = tempfile.mkstemp(prefix="model-explorer-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(cfg.to_dict(), f)
        self.follower.launch(train_command(source, config_file, run_dir, processes), run_dir, config_file)
        self.tabs.setCurrentWidget(self.train_panel)
        return True

    @Slot(object)
    def _on_followed_run_started(self, header: LogStarted) -> None:
        if not header.resumed and self.follower.process is None:  # a new run (an overwrite) starts over
            self.train_panel.begin_run(self.follower.run_dir.name if self.follower.run_dir else "")
        what = "resumed" if header.resumed else "started"
        self.log_view.log(f"run {what} by process {header.pid} on {header.host}")

    @Slot(str)
    def _on_follow_state(self, state: str) -> None:
        self._on_state(state)
        self.act_pause.setEnabled(False)  # another process's run cannot be paused from here

    @Slot()
    def toggle_pause(self) -> None:
        if self.controller.state == "paused":
            self.controller.resume()
        else:
            self.controller.pause()

    @Slot()
    def stop_training(self) -> None:
        if self.follower.is_running():
            self.follower.stop()
        else:
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
            QTimer.singleShot(0, self, self.close)
