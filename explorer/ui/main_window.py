"""The main window: menus, toolbar, status bar, the four screens and the docks.

It builds and wires things together; the flows that span screens live in two mixins: open, save
and import projects, samples, drops and models in :mod:`explorer.ui.project_flows`, start, follow
and finish runs in :mod:`explorer.ui.training_flow`. Screens are separate widgets bound to the
:class:`~explorer.ui.session.ProjectSession`.
"""

from __future__ import annotations

from PySide6.QtCore import QByteArray, Qt, Slot
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow, QSplitter, QStackedWidget, QTabWidget

from explorer.data import list_samples
from explorer.engine import available_devices

from .arch_panel import ArchPanel
from .dataset_panel import DatasetPanel
from .dialogs import AboutDialog, ShortcutsDialog
from .docks import LogView, ProblemsView
from .inspector import InspectorPanel
from .open_model import OpenModelWindow
from .project import RunRecord
from .project_flows import ProjectFlows
from .runs_panel import RunsPanel
from .session import ProjectSession
from .settings import app_settings
from .style import icon
from .thumbnails import ThumbnailCache
from .train_panel import TrainPanel
from .training_flow import TrainingFlow
from .welcome import WelcomeView
from .worker import TrainingController

__all__ = ["MainWindow", "APP_TITLE"]

APP_TITLE = "Model Explorer"


class MainWindow(ProjectFlows, TrainingFlow, QMainWindow):
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
        self.act_follow = self._action(
            "&Follow Run…",
            self.choose_follow_run,
            None,
            "Show live a run another process is writing (a CLI, torchrun or cluster training)",
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
        self.inspector = InspectorPanel(self.controller)
        self.tabs.addTab(self.inspector, "5  Inspector")
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
        f.addActions([self.act_open_model, self.act_export, self.act_follow])
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
        c.probe.connect(self.inspector.show_report)
        c.log.connect(self.log_view.log)
        c.stateChanged.connect(self._on_state)
        c.stateChanged.connect(self.train_panel.run_progress.on_controller_state)
        c.idle.connect(self._on_idle)
        self._wire_follower()

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
        self.dataset_label.setText(p.describe())
        self.act_add_images.setEnabled(p.has_classes)  # loose images need a class

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
        if not self.follower.shutdown(30000):
            self.log_view.log("the training process did not stop within 30 s")
        self.thumbs.close()
        self.arch_panel.shutdown()
        self.inspector.shutdown()
        for w in self.findChildren(OpenModelWindow):
            w.panel.shutdown()
        self.runs_panel.shutdown()
        self.train_panel.curves.stop()
        self.train_panel.probe.stop()
        self.session.autosave_now()
        self.save_layout()
