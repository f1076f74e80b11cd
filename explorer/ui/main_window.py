"""The main window: menus, toolbar, status bar, the four screens and the docks.

It wires things together and owns the flows that span screens (start a run, finish it, open and
save projects, drops anywhere on the window, quitting while training). Screens are separate
widgets bound to the :class:`~explorer.ui.session.ProjectSession`.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QByteArray, Qt, QTimer, Slot
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDragMoveEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QStackedWidget,
    QTabWidget,
)

from explorer.data import DataError, list_samples
from explorer.engine import (
    DataReady,
    EpochReport,
    Finished,
    ModelReady,
    RunFolderError,
    Status,
    available_devices,
    load_run,
)
from explorer.engine.config import TASKS, ConfigError
from models import list_models, model_info

from .arch_panel import ArchPanel
from .dataset_panel import DatasetPanel, paths_from_mime
from .dialogs import AboutDialog, ShortcutsDialog
from .docks import LogView, ProblemsView
from .project import PROJECT_SUFFIX, ProjectError, RunRecord
from .runs_panel import RunsPanel
from .session import AUTOSAVE_NAME, ProjectSession, load_any
from .settings import app_home, app_settings, recent_projects, remove_recent_project
from .style import icon
from .thumbnails import ThumbnailCache
from .train_panel import TrainPanel
from .welcome import WelcomeView
from .worker import TrainingController, gui_friendly_threads

__all__ = ["MainWindow", "APP_TITLE"]

APP_TITLE = "Model Explorer"
PROJECT_FILTER = f"Model Explorer projects (*{PROJECT_SUFFIX} *.json)"


class MainWindow(QMainWindow):
    def __init__(self, session: ProjectSession | None = None, *, report_interval: float = 0.2) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.session = session or ProjectSession(self)
        self.report_interval = report_interval
        self.thumbs = ThumbnailCache(parent=self)
        self.controller = TrainingController(self)
        self.current_run: RunRecord | None = None
        self._close_pending = False
        self._shut_down = False
        self.setAcceptDrops(True)
        self.resize(1280, 820)
        self.setMinimumSize(900, 600)

        self._make_actions()
        self._make_screens()
        self._make_docks()
        self._make_menus()
        self._make_toolbar()
        self._make_statusbar()
        self._default_state = self.saveState()
        self._wire()
        self._restore_layout()
        self._update_title()
        self._update_data_page()
        self._update_dataset_status()
        self._on_state("idle")

    # -- building ----------------------------------------------------------------------------------
    def _action(
        self, text: str, slot, shortcut: QKeySequence | str | None = None, tip: str = "", icon_name: str = ""
    ) -> QAction:  # noqa: ANN001
        a = QAction(text, self)
        if shortcut:
            a.setShortcut(QKeySequence(shortcut))
        if tip:
            a.setStatusTip(tip)
            a.setToolTip(tip)
        if icon_name:
            a.setIcon(icon(icon_name))
        a.triggered.connect(slot)
        self.addAction(a)
        return a

    def _make_actions(self) -> None:
        K = QKeySequence.StandardKey
        self.act_new = self._action("&New Project", self.new_project, K.New, "Start an empty project")
        self.act_open = self._action("&Open Project…", self.choose_project, K.Open, "Open a saved project")
        self.act_save = self._action("&Save Project", self.save_project, K.Save, "Save the project")
        self.act_save_as = self._action(
            "Save Project &As…", self.save_project_as, K.SaveAs, "Save the project to a new file"
        )
        self.act_import_folder = self._action(
            "Import &Folder…",
            self.choose_folder,
            "Ctrl+I",
            "A folder with one sub-folder per class, or with a labels.csv",
            "folder",
        )
        self.act_import_manifest = self._action(
            "Import &Manifest…", self.choose_manifest, "Ctrl+Shift+I", "labels.csv (path,label) or captions.csv"
        )
        self.act_add_images = self._action(
            "Add &Images…", self.choose_images, "Ctrl+Shift+A", "Add image files to the selected class", "images"
        )
        self.act_open_model = self._action(
            "Open &Model…",
            self.choose_model,
            "Ctrl+Shift+O",
            "Add a trained run folder or an exported model to the project",
        )
        self.act_export = self._action(
            "&Export Model…", self.export_model, "Ctrl+E", "Save the selected run's weights with their JSON description"
        )
        self.act_quit = self._action("&Quit", self.close, K.Quit, "Quit Model Explorer")
        self.act_quit.setMenuRole(QAction.MenuRole.QuitRole)

        self.act_train = self._action("Train", self.start_training, "F5", "Train the model on the data (F5)", "train")
        self.act_pause = self._action("Pause", self.toggle_pause, "F6", "Pause or resume training (F6)", "pause")
        self.act_stop = self._action("Stop", self.stop_training, "Shift+F5", "Stop training (Shift+F5)", "stop")

        self.act_show = []
        for i, name in enumerate(("Data", "Architecture", "Training", "Runs")):
            self.act_show.append(
                self._action(f"&{name}", lambda _=False, i=i: self.tabs.setCurrentIndex(i), f"Ctrl+{i + 1}")
            )
        self.act_reset_layout = self._action(
            "Reset Layout", self.reset_layout, None, "Put the panels back where they started"
        )
        self.act_shortcuts = self._action(
            "&Keyboard Shortcuts", self.show_shortcuts, "Ctrl+/", "List the keyboard shortcuts"
        )
        self.act_about = self._action("&About Model Explorer", self.show_about)
        self.act_about.setMenuRole(QAction.MenuRole.AboutRole)

    def _make_screens(self) -> None:
        s = self.session
        self.welcome = WelcomeView()
        self.dataset_panel = DatasetPanel(s, self.thumbs)
        self.data_stack = QStackedWidget()
        self.data_stack.addWidget(self.welcome)
        self.data_stack.addWidget(self.dataset_panel)
        self.arch_panel = ArchPanel(s)
        self.train_panel = TrainPanel(s, self.act_train, self.act_pause, self.act_stop)
        self.runs_panel = RunsPanel(s)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("screens")
        self.tabs.setDocumentMode(False)
        self.tabs.addTab(self.data_stack, "1  Data")
        self.tabs.addTab(self.arch_panel, "2  Architecture")
        self.tabs.addTab(self.train_panel, "3  Training")
        self.tabs.addTab(self.runs_panel, "4  Runs")
        self.setCentralWidget(self.tabs)

    def _make_docks(self) -> None:
        self.log_view = LogView()
        self.log_dock = QDockWidget("Log", self)
        self.log_dock.setObjectName("logDock")
        self.log_dock.setWidget(self.log_view)
        self.problems_view = ProblemsView(self.session)
        self.problems_dock = QDockWidget("Problems", self)
        self.problems_dock.setObjectName("problemsDock")
        self.problems_dock.setWidget(self.problems_view)
        for d in (self.log_dock, self.problems_dock):
            d.setAllowedAreas(
                Qt.DockWidgetArea.BottomDockWidgetArea
                | Qt.DockWidgetArea.RightDockWidgetArea
                | Qt.DockWidgetArea.LeftDockWidgetArea
            )
            self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, d)
        self.tabifyDockWidget(self.log_dock, self.problems_dock)
        self.log_dock.raise_()
        self.resizeDocks([self.log_dock], [100], Qt.Orientation.Vertical)

    def _make_menus(self) -> None:
        mb = self.menuBar()
        f = mb.addMenu("&File")
        f.addActions([self.act_new, self.act_open, self.act_save, self.act_save_as])
        f.addSeparator()
        f.addActions([self.act_import_folder, self.act_import_manifest, self.act_add_images])
        self.samples_menu = f.addMenu("Open Built-in &Sample")
        for name in list_samples():
            a = self.samples_menu.addAction(name)
            a.triggered.connect(lambda _=False, n=name: self.load_sample(n))
        f.addSeparator()
        f.addActions([self.act_open_model, self.act_export])
        f.addSeparator()
        self.recent_menu = f.addMenu("&Recent Projects")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        f.addSeparator()
        f.addAction(self.act_quit)
        self.file_menu = f

        v = mb.addMenu("&View")
        v.addActions(self.act_show)
        v.addSeparator()
        v.addAction(self.log_dock.toggleViewAction())
        v.addAction(self.problems_dock.toggleViewAction())
        v.addSeparator()
        v.addAction(self.act_reset_layout)
        self.view_menu = v

        t = mb.addMenu("&Train")
        t.addActions([self.act_train, self.act_pause, self.act_stop])

        h = mb.addMenu("&Help")
        h.addActions([self.act_shortcuts, self.act_about])
        self.help_menu = h

    def _make_toolbar(self) -> None:
        tb = self.addToolBar("Training")
        tb.setObjectName("trainingToolbar")
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        tb.setMovable(False)
        tb.addActions([self.act_train, self.act_pause, self.act_stop])
        tb.addSeparator()
        tb.addAction(self.act_import_folder)
        tb.addAction(self.act_add_images)
        self.toolbar = tb

    def _make_statusbar(self) -> None:
        sb = self.statusBar()
        dev = available_devices()[0]
        self.device_label = QLabel(f"Device: {dev}")
        self.device_label.setToolTip(
            "Where training runs by default (auto). Available: " + ", ".join(available_devices())
        )
        self.dataset_label = QLabel()
        self.state_label = QLabel()
        for w in (self.dataset_label, self.device_label, self.state_label):
            sb.addPermanentWidget(w)

    def _wire(self) -> None:
        s = self.session
        s.message.connect(self.show_message)
        s.pathChanged.connect(self._update_title)
        s.dirtyChanged.connect(self._update_title)
        s.projectReplaced.connect(self._update_title)
        s.projectReplaced.connect(self._update_data_page)
        s.datasetChanged.connect(self._update_data_page)
        s.datasetChanged.connect(self._update_dataset_status)
        s.projectReplaced.connect(self._update_dataset_status)
        s.problemsChanged.connect(self._on_problems)
        w = self.welcome
        w.sampleRequested.connect(self.load_sample)
        w.importFolderRequested.connect(self.choose_folder)
        w.addImagesRequested.connect(self.choose_images)
        w.importManifestRequested.connect(self.choose_manifest)
        w.openProjectRequested.connect(self.choose_project)
        w.recentRequested.connect(self.open_project)
        self.dataset_panel.importFolderRequested.connect(self.choose_folder)
        self.dataset_panel.importManifestRequested.connect(self.choose_manifest)
        self.dataset_panel.problemsRequested.connect(self.show_problems)
        c = self.controller
        c.event.connect(self.train_panel.on_event)
        c.event.connect(self._on_training_event)
        c.probe.connect(self.train_panel.probe.set_report)
        c.log.connect(self.log_view.log)
        c.stateChanged.connect(self._on_state)
        c.idle.connect(self._on_idle)

    # -- layout persistence ------------------------------------------------------------------------
    def _splitters(self) -> list[QSplitter]:
        return [sp for sp in self.findChildren(QSplitter) if sp.objectName()]

    def _restore_layout(self) -> None:
        st = app_settings()
        geo = st.value("window/geometry")
        if isinstance(geo, QByteArray) and not geo.isEmpty():
            self.restoreGeometry(geo)
        state = st.value("window/state")
        if isinstance(state, QByteArray) and not state.isEmpty():
            self.restoreState(state)
        for sp in self._splitters():
            v = st.value(f"splitters/{sp.objectName()}")
            if isinstance(v, QByteArray) and not v.isEmpty():
                sp.restoreState(v)

    def save_layout(self) -> None:
        st = app_settings()
        st.setValue("window/geometry", self.saveGeometry())
        st.setValue("window/state", self.saveState())
        for sp in self._splitters():
            st.setValue(f"splitters/{sp.objectName()}", sp.saveState())
        st.sync()

    @Slot()
    def reset_layout(self) -> None:
        self.restoreState(self._default_state)
        self.log_dock.show()
        self.problems_dock.show()
        self.tabifyDockWidget(self.log_dock, self.problems_dock)

    # -- status ------------------------------------------------------------------------------------
    @Slot()
    def _update_title(self, *_args: object) -> None:
        p = self.session.project
        named = self.session.path is not None or not p.is_empty()
        self.setWindowTitle(f"{APP_TITLE} — {p.name}[*]" if named else APP_TITLE)
        self.setWindowModified(self.session.dirty and self.session.path is not None)

    @Slot()
    def _update_data_page(self) -> None:
        p = self.session.project
        empty = not p.samples and not p.classes
        self.data_stack.setCurrentWidget(self.welcome if empty else self.dataset_panel)
        if empty:
            self.welcome.refresh_recent()

    @Slot()
    def _update_dataset_status(self) -> None:
        p = self.session.project
        n, k = len(p.samples), len(p.classes)
        self.dataset_label.setText(
            f"{n:,} images · {k} class{'es' if k != 1 else ''}" if p.task == "classify" else f"{n:,} images · {p.task}"
        )
        self.act_add_images.setEnabled(p.task == "classify")  # loose images need a class

    @Slot(str)
    def show_message(self, text: str) -> None:
        self.statusBar().showMessage(text, 8000)
        self.log_view.log(text)

    @Slot()
    def _on_problems(self) -> None:
        n = len(self.session.project.problems)
        self.problems_dock.setWindowTitle(f"Problems ({n})" if n else "Problems")

    @Slot()
    def show_problems(self) -> None:
        self.problems_dock.show()
        self.problems_dock.raise_()

    @Slot(str)
    def _on_state(self, state: str) -> None:
        running = state in ("starting", "running", "paused", "stopping")
        self.act_train.setEnabled(not running)
        self.act_pause.setEnabled(state in ("starting", "running", "paused"))
        self.act_stop.setEnabled(state in ("starting", "running", "paused"))
        paused = state == "paused"
        self.act_pause.setText("Resume" if paused else "Pause")
        self.act_pause.setIcon(icon("resume" if paused else "pause"))
        self.state_label.setText(
            {
                "idle": "Idle",
                "starting": "Starting…",
                "running": "Training",
                "paused": "Paused",
                "stopping": "Stopping…",
            }.get(state, state)
        )

    # -- projects ----------------------------------------------------------------------------------
    @Slot()
    def new_project(self) -> None:
        if self.controller.is_running():
            self.show_message("Stop training before starting a new project.")
            return
        self.session.autosave_now()
        self.session.new_project()
        self.tabs.setCurrentIndex(0)

    @Slot()
    def choose_project(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open project", str(self._start_dir()), PROJECT_FILTER)
        if path:
            self.open_project(path)

    @Slot(str)
    def open_project(self, path: str) -> bool:
        if self.controller.is_running():
            self.show_message("Stop training before opening another project.")
            return False
        self.session.autosave_now()
        try:
            self.session.open_project(path)
        except ProjectError as e:
            remove_recent_project(path)
            QMessageBox.warning(self, "Cannot open project", str(e))
            return False
        self.tabs.setCurrentIndex(3 if self.session.project.runs else 0)
        return True

    def open_path(self, path: str) -> None:
        """What ``model-explorer gui PATH`` opens: a project, a data folder, a manifest or sample:NAME."""
        try:
            msg = load_any(self.session, path)
        except (ProjectError, DataError) as e:
            self.show_message(f"cannot open {path}: {e}")
            return
        self.show_message(msg)
        self.tabs.setCurrentIndex(3 if self.session.project.runs and not self.session.project.samples else 0)

    @Slot()
    def save_project(self) -> bool:
        if self.session.path is None or self.session.path.name == AUTOSAVE_NAME:
            return self.save_project_as()
        return self._save(self.session.path)

    @Slot()
    def save_project_as(self) -> bool:
        default = self._start_dir() / f"{self.session.project.name}{PROJECT_SUFFIX}"
        path, _ = QFileDialog.getSaveFileName(self, "Save project", str(default), PROJECT_FILTER)
        if not path:
            return False
        p = Path(path)
        if p.suffix.lower() not in (PROJECT_SUFFIX, ".json"):
            p = p.with_suffix(PROJECT_SUFFIX)
        return self._save(p)

    def _save(self, path: Path) -> bool:
        if self.controller.is_running() and self.session.path is None:
            self.show_message("Wait for the run to finish before saving a new project (its folder moves).")
            return False
        try:
            self.session.save(path)
        except OSError as e:
            QMessageBox.warning(self, "Cannot save project", f"{path}: {e}")
            return False
        self.show_message(f"saved {path}")
        return True

    def _start_dir(self) -> Path:
        return self.session.path.parent if self.session.path else Path.home()

    @Slot()
    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        recent = recent_projects()
        for path in recent:
            a = self.recent_menu.addAction(path)
            a.triggered.connect(lambda _=False, p=path: self.open_project(p))
        autosave = app_home() / AUTOSAVE_NAME
        if autosave.is_file():
            if recent:
                self.recent_menu.addSeparator()
            a = self.recent_menu.addAction("Restore last unsaved project")
            a.triggered.connect(lambda _=False, p=str(autosave): self.open_project(p))
        if self.recent_menu.isEmpty():
            none = self.recent_menu.addAction("No recent projects")
            none.setEnabled(False)

    # -- data --------------------------------------------------------------------------------------
    @Slot(str)
    def load_sample(self, name: str) -> None:
        if self.controller.is_running():
            self.show_message("Stop training before opening a sample.")
            return
        self.session.autosave_now()
        try:
            self.session.load_sample(name)
        except DataError as e:
            self.show_message(str(e))
            return
        self.tabs.setCurrentIndex(0)
        self.show_message(f"Loaded the '{name}' sample. Press Train (F5) to train a first model.")

    @Slot()
    def choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Import a folder of class folders", str(self._start_dir()))
        if path:
            self.import_paths([path])

    @Slot()
    def choose_manifest(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a manifest", str(self._start_dir()), "Manifests (*.csv)")
        if path:
            self.import_paths([path])

    @Slot()
    def choose_images(self) -> None:
        self.dataset_panel.choose_images()

    def import_paths(self, paths: list[str], target: str | None = None) -> None:
        result = self.session.import_paths(paths, target)
        if result.projects:
            self.open_project(str(result.projects[0]))
            return
        if result.errors and not result.added:
            self.show_message("; ".join(result.errors))
        if result.added:
            self.tabs.setCurrentIndex(0)
            if len(result.classes) == 1:
                self.dataset_panel.select_class(result.classes[0])
        if result.problems:
            self._on_problems()

    def dragEnterEvent(self, e: QDragEnterEvent) -> None:  # noqa: N802 - Qt
        if e.mimeData().hasUrls():
            e.acceptProposedAction()
        else:
            e.ignore()

    def dragMoveEvent(self, e: QDragMoveEvent) -> None:  # noqa: N802 - Qt
        if e.mimeData().hasUrls():
            e.acceptProposedAction()

    def dropEvent(self, e: QDropEvent) -> None:  # noqa: N802 - Qt
        paths = paths_from_mime(e.mimeData())
        if not paths:
            e.ignore()
            return
        e.acceptProposedAction()
        self.import_paths(paths)

    # -- models and runs ---------------------------------------------------------------------------
    @Slot()
    def choose_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Open a trained model",
            str(self._start_dir()),
            "Run config or exported model (config.json *.safetensors)",
        )
        if path:
            self.open_model(path)

    def open_model(self, path: str) -> bool:
        p = Path(path)
        target = p.parent if p.name == "config.json" else p
        try:
            run = load_run(target)
        except RunFolderError as e:
            self.show_message(f"cannot open the model: {e}")
            return False
        rec = RunRecord(
            dir=str(target),
            name=target.stem if target.is_file() else target.name,
            arch=run.arch,
            task=run.task,
            status="completed",
            created=time.strftime("%Y-%m-%d %H:%M:%S"),
            metrics=run.metrics or {},
            message="opened from disk",
        )
        self.session.add_run(rec)
        self.tabs.setCurrentWidget(self.runs_panel)
        return True

    @Slot()
    def export_model(self) -> None:
        self.tabs.setCurrentWidget(self.runs_panel)
        if self.runs_panel.selected_run() is None:
            self.show_message("No run to export yet: train a model first.")
            return
        self.runs_panel.choose_export()

    # -- training ----------------------------------------------------------------------------------
    def training_problem(self) -> str | None:
        """Why Train cannot start now, or None."""
        p = self.session.project
        if p.task not in TASKS:
            return (
                f"This project's task is '{p.task}', which this version cannot train yet "
                f"(available: {', '.join(t for t in TASKS if t != 'auto')})."
            )
        if not p.samples:
            return "There are no images yet. Open a built-in sample or drop a folder of class folders on the window."
        if p.task == "classify":
            filled = [c for c, n in p.counts().items() if n > 0]
            if len(filled) < 2:
                return "Classification needs at least two classes with images; add another class and drop images on it."
        arch = self.arch_panel.arch
        if p.task not in model_info(arch).tasks:
            fits = ", ".join(list_models(p.task)) or "none yet"
            return f"Fix the model family on the Architecture screen: '{arch}' cannot learn the {p.task} task (use: {fits})."
        if not self.arch_panel.validate():
            errs = self.arch_panel.errors()
            name, msg = next(iter(errs.items()), ("", "invalid"))
            where = f"'{name}'" if name and name != "_" else "a parameter"
            return f"Fix {where} on the Architecture screen first: {msg}"
        return None

    @Slot()
    def start_training(self) -> bool:
        if self.controller.is_running():
            return False
        problem = self.training_problem()
        if problem is None:
            try:
                cfg = self.session.project.run_config()
            except ConfigError as e:
                problem = f"Invalid setting {e}"
        if problem is not None:
            self.train_panel.show_error(problem)
            self.show_message(problem)
            if problem.startswith("Fix"):
                self.tabs.setCurrentWidget(self.arch_panel)
            else:
                self.tabs.setCurrentWidget(self.train_panel)
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
        elif isinstance(ev, ModelReady):
            self.log_view.log(f"model: {ev.arch}, {ev.num_parameters:,} parameters on {ev.device}")
        elif isinstance(ev, EpochReport):
            val = f", val loss {ev.val_loss:.4f} acc {ev.val_accuracy:.3f}" if ev.val_loss is not None else ""
            self.log_view.log(
                f"epoch {ev.epoch}/{ev.epochs}: loss {ev.train_loss:.4f} acc {ev.train_accuracy:.3f}{val} "
                f"({ev.seconds:.1f} s, {ev.samples_per_second:,.0f} samples/s)"
            )
        elif isinstance(ev, Finished):
            rec = self.current_run
            if rec is not None:
                rec.status, rec.message, rec.metrics = ev.status, ev.message, dict(ev.metrics)
                self.session.update_run(rec)
            text = f"training {ev.status}" + (f": {ev.message}" if ev.message else "")
            self.show_message(text)

    @Slot()
    def _on_idle(self) -> None:
        self.current_run = None
        if self._close_pending:
            QTimer.singleShot(0, self.close)

    # -- help --------------------------------------------------------------------------------------
    @Slot()
    def show_shortcuts(self) -> None:
        ShortcutsDialog(self.actions(), self).exec()

    @Slot()
    def show_about(self) -> None:
        AboutDialog(self).exec()

    # -- closing -----------------------------------------------------------------------------------
    def closeEvent(self, e: QCloseEvent) -> None:  # noqa: N802 - Qt
        if self.controller.is_running():
            # Stop first and close when the thread is gone: never leave a thread behind.
            self._close_pending = True
            self.controller.stop()
            self.statusBar().showMessage("Stopping training before closing…")
            e.ignore()
            return
        self.shutdown()
        e.accept()

    @Slot()
    def shutdown(self) -> None:
        """Stops every thread and saves (idempotent; also runs when the app quits without a close)."""
        if self._shut_down:
            return
        self._shut_down = True
        if not self.controller.shutdown(30000):
            self.log_view.log("training did not stop within 30 s")
        self.thumbs.close()
        self.arch_panel.shutdown()
        self.runs_panel.shutdown()
        self.train_panel.curves.stop()
        self.train_panel.probe.stop()
        self.session.autosave_now()
        self.save_layout()
