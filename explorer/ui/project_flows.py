"""The main window's project and data flows: new, open, save, samples, imports, drops, models.

A mixin of :class:`~explorer.ui.main_window.MainWindow` (it uses the window's session, controller,
screens and status bar). Every flow that replaces the open project asks first when the project
holds runs that live only in the autosave (:meth:`ProjectFlows.may_replace_project`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QFileDialog, QMessageBox

from explorer.data import DataError
from explorer.engine import RunFolderError, load_run, runfolder

from .dataset_views import paths_from_mime
from .open_model import OpenModelWindow, open_model_dialog
from .project import PROJECT_SUFFIX, Project, ProjectError, RunRecord
from .session import AUTOSAVE_NAME, ProjectSession
from .settings import app_home, recent_projects, remove_recent_project
from .threads import new_pool

if TYPE_CHECKING:
    from .main_window import MainWindow

    _Base = MainWindow
else:
    _Base = object

__all__ = ["ProjectFlows", "PROJECT_FILTER", "load_any"]

PROJECT_FILTER = f"Model Explorer projects (*{PROJECT_SUFFIX} *.json)"
#: a project file larger than this (about 20,000 samples) is read on a worker thread
BACKGROUND_BYTES = 2**20
OPEN_POLL_MS = 20
_Button = QMessageBox.StandardButton


def _file_size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0  # the reader names the problem


def load_any(session: ProjectSession, path: str) -> str:
    """Opens what the command line names: a project file, or a data folder / manifest / sample.

    Returns a message for the status bar. Raises ProjectError or DataError.
    """
    p = Path(path)
    if path.startswith("sample:"):
        return session.load_sample(path.split(":", 1)[1]).summary()
    # a .mexp of any kind goes to the project reader, which refuses a FIFO or device unopened
    if p.suffix.lower() == PROJECT_SUFFIX or (p.is_file() and p.suffix.lower() == ".json"):
        session.open_project(p)
        return f"opened {p}"
    if not p.exists():
        raise ProjectError(f"{path}: no such file or folder")
    result = session.import_paths([p])
    if result.projects:
        session.open_project(result.projects[0])
        return f"opened {result.projects[0]}"
    if result.errors and not result.added:
        raise DataError("; ".join(result.errors))
    return result.summary()


class ProjectFlows(_Base):
    # -- replacing the project ---------------------------------------------------------------------
    def ask_unsaved_runs(self) -> QMessageBox.StandardButton:
        """Save / Discard / Cancel before unsaved runs leave the lists (the one dialog call)."""
        n = len(self.session.project.runs)
        return QMessageBox.question(
            self,
            "Unsaved runs",
            f"The project '{self.session.project.name}' has {n} run{'s' if n != 1 else ''} that no project "
            "file keeps yet. Save the project before opening another one?\n"
            "(Discard keeps the run folders on the disk but drops them from the Runs list.)",
            _Button.Save | _Button.Discard | _Button.Cancel,
            _Button.Save,
        )

    def may_replace_project(self, doing: str) -> bool:
        """True when the open project may be replaced now (asked, saved as chosen, autosaved)."""
        if self.controller.is_running():
            self.show_message(f"Stop training before {doing}.")
            return False
        if self.session.has_unsaved_runs():
            answer = self.ask_unsaved_runs()
            if answer == _Button.Save:
                if not self.save_project():
                    return False
            elif answer != _Button.Discard:
                return False
        self.session.autosave_now()
        return True

    # -- projects ----------------------------------------------------------------------------------
    @Slot()
    def new_project(self) -> None:
        if self.may_replace_project("starting a new project"):
            self.session.new_project()
            self.tabs.setCurrentIndex(0)

    @Slot()
    def choose_project(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open project", str(self._start_dir()), PROJECT_FILTER)
        if path:
            self.open_project(path)

    @Slot(str)
    def open_project(self, path: str) -> bool:
        """Opens a project file; one over :data:`BACKGROUND_BYTES` is read on a worker thread (True:
        it is being read; :attr:`opening_project` says until when) so the window never freezes."""
        if self.opening_project:
            self.show_message(f"Still opening {self._opening[0]}.")
            return False
        if not self.may_replace_project("opening another project"):
            return False
        if _file_size(path) > BACKGROUND_BYTES:
            self._open_in_background(path)
            return True
        try:
            self.session.open_project(path)
        except ProjectError as e:
            self._open_failed(path, e)
            return False
        self._opened()
        return True

    @property
    def opening_project(self) -> bool:
        """True while a large project file is being read on a worker thread."""
        return getattr(self, "_opening", None) is not None

    def _open_in_background(self, path: str) -> None:
        box: dict[str, object] = {}

        def read() -> None:  # worker thread: plain Python, no Qt
            try:
                box["project"] = Project.load(path)
            except ProjectError as e:
                box["error"] = e
            except (MemoryError, RecursionError, OSError) as e:
                box["error"] = ProjectError(f"{path}: cannot read ({type(e).__name__}: {e})")

        if getattr(self, "_open_pool", None) is None:
            self._open_pool = new_pool("project-open", parent=self)
            self._open_poll = QTimer(self)
            self._open_poll.setInterval(OPEN_POLL_MS)
            self._open_poll.timeout.connect(self._poll_open)
        self._opening = (path, box)
        self.show_message(f"Opening {path} ({_file_size(path) / 2**20:.0f} MB)…")
        self.setCursor(Qt.CursorShape.BusyCursor)
        self._open_pool.start(read)
        self._open_poll.start()

    @Slot()
    def _poll_open(self) -> None:
        path, box = self._opening
        if not box:
            return
        self._open_poll.stop()
        self._opening = None
        self.unsetCursor()
        error = box.get("error")
        if isinstance(error, ProjectError):
            self._open_failed(path, error)
            return
        project = box["project"]
        assert isinstance(project, Project)
        self.session.open_project(path, project)
        self.show_message(f"opened {path}: {project.describe()}")
        self._opened()

    def _open_failed(self, path: str, error: ProjectError) -> None:
        remove_recent_project(path)
        self.warn_project(error)

    def _opened(self) -> None:
        self.tabs.setCurrentIndex(3 if self.session.project.runs else 0)

    def open_path(self, path: str) -> None:
        """What ``model-explorer gui PATH`` opens: a project, a data folder, a manifest or sample:NAME."""
        if Path(path).suffix.lower() == PROJECT_SUFFIX:  # large ones are read on a worker thread
            self.open_project(path)
            return
        try:
            msg = load_any(self.session, path)
        except ProjectError as e:
            self.warn_project(e)
            return
        except DataError as e:
            self.show_message(f"cannot open {path}: {e}")
            return
        self.show_message(msg)
        self.tabs.setCurrentIndex(3 if self.session.project.runs and not self.session.project.samples else 0)

    def warn_project(self, error: ProjectError) -> None:
        """The dialog for a project file that cannot be opened (the message names the file and field)."""
        QMessageBox.warning(self, "Cannot open project", str(error))

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
    def load_sample(self, name: str) -> bool:
        if not self.may_replace_project("opening a sample"):
            return False
        try:
            self.session.load_sample(name)
        except DataError as e:
            self.show_message(str(e))
            return False
        self.tabs.setCurrentIndex(0)
        self.show_message(f"Loaded the '{name}' sample. Press Train (F5) to train a first model.")
        return True

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

    # -- models ------------------------------------------------------------------------------------
    @Slot()
    def choose_model(self) -> None:
        path = open_model_dialog(self, str(self._start_dir()))
        if path:
            self.show_model(path)

    def show_model(self, path: str) -> OpenModelWindow:
        """A window that predicts (and, from the runs screen, inspects) with a run folder, an
        exported bundle or a state dict."""
        win = OpenModelWindow(path, self)  # win.panel.run: the loaded Run
        win.show()
        return win

    def open_model(self, path: str) -> bool:
        target = runfolder.run_location(path)
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
