"""The data screen: class buckets on the left, a virtualised thumbnail grid on the right.

Works like the label buckets of Teachable Machine / Lobe: create, rename (double-click or F2) and
delete classes; drop images or folders onto a class to add them to it, or anywhere else on the
window to import them (a folder of class folders becomes classes); select images and press Delete
to remove them from the project (never from the disk).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QPoint, Qt, Signal, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QMessageBox,
    QPushButton,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from explorer.engine.tasks import TASK_NAMES, get_task

from .dataset_model import ALL_ROW, ClassListModel, SampleIndexRole, SampleListModel
from .dataset_views import IMAGE_FILTER, ClassListView, SampleGridView, paths_from_mime
from .session import ProjectSession
from .style import icon, repolish
from .thumbnails import ThumbnailCache

__all__ = ["DatasetPanel", "DataHeader", "ClassesPane", "IMAGE_FILTER", "paths_from_mime"]


class DataHeader(QWidget):
    """Task selector, import buttons, problems button and the data summary, bound to the session."""

    taskRefused = Signal(str)  # why the task cannot change

    def __init__(self, session: ProjectSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.task_combo = QComboBox()
        self.task_combo.setToolTip("What the model learns from the images. More tasks come in later versions.")
        self.add_images_btn = QPushButton(icon("images"), "Add images…")
        self.add_images_btn.setToolTip("Add image files to the selected class")
        self.import_btn = QPushButton(icon("folder"), "Import folder…")
        self.import_btn.setToolTip("A folder with one sub-folder per class, or with a labels.csv manifest")
        self.manifest_btn = QPushButton("Import manifest…")
        self.manifest_btn.setToolTip("labels.csv (path,label), or captions.csv / text manifests for the other tasks")
        self.summary = QLabel()
        self.summary.setProperty("role", "metric")
        self.problems_btn = QPushButton(icon("warning"), "")
        self.problems_btn.setFlat(True)
        self.problems_btn.setToolTip("Files that could not be used, and why")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(QLabel("Task:"))
        lay.addWidget(self.task_combo)
        lay.addSpacing(12)
        for w in (self.add_images_btn, self.import_btn, self.manifest_btn):
            lay.addWidget(w)
        lay.addStretch(1)
        lay.addWidget(self.problems_btn)
        lay.addWidget(self.summary)
        self.task_combo.activated.connect(self._task_chosen)
        session.problemsChanged.connect(self.update_summary)

    def fill_tasks(self) -> None:
        task = self.session.project.task
        self.task_combo.blockSignals(True)
        self.task_combo.clear()
        for t in TASK_NAMES:
            self.task_combo.addItem(get_task(t).title, t)
        if self.task_combo.findData(task) < 0:  # data for a task this version cannot train yet
            self.task_combo.addItem(f"{task} (not trainable yet)", task)
        self.task_combo.setCurrentIndex(self.task_combo.findData(task))
        self.task_combo.blockSignals(False)

    @Slot(int)
    def _task_chosen(self, i: int) -> None:
        task = self.task_combo.itemData(i)
        if task and task != self.session.project.task:
            if self.session.project.samples:
                self.taskRefused.emit("This project's images are labelled for another task; start a new project.")
                self.fill_tasks()
                return
            self.session.set_task(task)

    @Slot()
    def update_summary(self) -> None:
        p = self.session.project
        self.summary.setText(p.describe())
        np_ = len(p.problems)
        self.problems_btn.setVisible(np_ > 0)
        self.problems_btn.setText(f"{np_} problem{'s' if np_ != 1 else ''}")


class ClassesPane(QWidget):
    """The class buckets with their add / rename / delete buttons and an inline error line."""

    def __init__(self, model: ClassListModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = ClassListView()
        self.view.setModel(model)
        self.add_btn = QToolButton()
        self.add_btn.setIcon(icon("add"))
        self.add_btn.setText("Add class")
        self.add_btn.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.rename_btn = QToolButton()
        self.rename_btn.setIcon(icon("rename"))
        self.rename_btn.setToolTip("Rename the selected class (F2)")
        self.delete_btn = QToolButton()
        self.delete_btn.setIcon(icon("remove"))
        self.delete_btn.setToolTip("Delete the selected class and remove its images from the project")
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_btn)
        buttons.addStretch(1)
        buttons.addWidget(self.rename_btn)
        buttons.addWidget(self.delete_btn)
        self.error = QLabel()
        self.error.setProperty("role", "error")
        self.error.setWordWrap(True)
        self.error.hide()
        title = QLabel("Classes")
        title.setProperty("role", "section")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(title)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.error)
        lay.addLayout(buttons)

    @Slot(str)
    def show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.show()
        repolish(self.error)


class DatasetPanel(QWidget):
    """Bound to a :class:`ProjectSession`: shows its classes and images, edits go through it."""

    problemsRequested = Signal()
    importFolderRequested = Signal()
    importManifestRequested = Signal()

    def __init__(self, session: ProjectSession, thumbs: ThumbnailCache, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.thumbs = thumbs
        self.class_model = ClassListModel(session, thumbs)
        self.sample_model = SampleListModel(session, thumbs)
        self.header = DataHeader(session)
        self.classes_pane = ClassesPane(self.class_model)
        self.grid = SampleGridView(thumbs.size)
        self.grid.setModel(self.sample_model)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("datasetSplitter")
        self.splitter.addWidget(self.classes_pane)
        self.splitter.addWidget(self._grid_pane())
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([260, 900])
        layout = QVBoxLayout(self)
        layout.addWidget(self.header)
        layout.addWidget(self.splitter, 1)
        # the parts tests and the main window reach for
        h, c = self.header, self.classes_pane
        self.task_combo, self.summary, self.problems_btn = h.task_combo, h.summary, h.problems_btn
        self.class_view, self.class_error = c.view, c.error
        self._wire()
        self.reload()

    def _grid_pane(self) -> QWidget:
        self.grid_title = QLabel()
        self.grid_title.setProperty("role", "section")
        self.remove_btn = QPushButton(icon("remove"), "Remove selected")
        self.remove_btn.setToolTip("Remove the selected images from the project (Delete); files stay on disk")
        self.remove_btn.setEnabled(False)
        grid_header = QHBoxLayout()
        grid_header.addWidget(self.grid_title)
        grid_header.addStretch(1)
        grid_header.addWidget(self.remove_btn)
        self.hint = QLabel()
        self.hint.setProperty("role", "hint")
        pane = QWidget()
        lay = QVBoxLayout(pane)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(grid_header)
        lay.addWidget(self.grid, 1)
        lay.addWidget(self.hint)
        return pane

    def _wire(self) -> None:
        s, h, c = self.session, self.header, self.classes_pane
        s.datasetChanged.connect(self.reload)
        s.projectReplaced.connect(self.on_project_replaced)
        self.thumbs.ready.connect(self.sample_model.on_thumbnails)
        self.thumbs.ready.connect(self.class_model.on_thumbnails)
        self.thumbs.failed.connect(self.on_thumbnail_failed)
        self.class_view.selectionModel().currentChanged.connect(self.on_class_selected)
        self.class_view.pathsDropped.connect(self.on_paths_dropped)
        self.grid.pathsDropped.connect(self.on_paths_dropped)
        self.grid.removeRequested.connect(self.remove_selected)
        self.grid.selectionModel().selectionChanged.connect(self._update_remove_button)
        self.grid.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.grid.customContextMenuRequested.connect(self._grid_menu)
        self.class_model.renameFailed.connect(c.show_error)
        h.taskRefused.connect(c.show_error)
        c.add_btn.clicked.connect(self.add_class)
        c.rename_btn.clicked.connect(self.rename_selected_class)
        c.delete_btn.clicked.connect(self.delete_selected_class)
        h.add_images_btn.clicked.connect(self.choose_images)
        h.import_btn.clicked.connect(self.importFolderRequested)
        h.manifest_btn.clicked.connect(self.importManifestRequested)
        h.problems_btn.clicked.connect(self.problemsRequested)

    # -- state -------------------------------------------------------------------------------------
    @property
    def selected_class(self) -> str | None:
        return self.class_model.class_at(self.class_view.currentIndex().row())

    def select_class(self, name: str | None) -> None:
        row = self.class_model.row_of(name)
        self.class_view.selectionModel().setCurrentIndex(
            self.class_model.index(row), QItemSelectionModel.SelectionFlag.ClearAndSelect
        )

    @Slot()
    def on_project_replaced(self) -> None:
        self.thumbs.forget_failures()
        self.session.current_class = None
        self.reload()

    @Slot()
    def reload(self) -> None:
        keep = self.session.current_class
        self.class_model.reload()
        self.sample_model.reload()
        self._fill_tasks()
        self.select_class(keep if keep in self.session.project.classes else None)
        self._apply_filter()
        self.update_summary()

    def _fill_tasks(self) -> None:
        self.header.fill_tasks()
        task = self.session.project.task
        classes = self.session.project.has_classes
        self.classes_pane.setVisible(classes)  # texts and captions have no class buckets
        self.hint.setText(
            "Drop images or folders anywhere on the window; drop them onto a class to add them to it."
            if classes
            else f"Labelled by a manifest (task {task}); drop another manifest or a folder holding one to add more."
        )
        self.header.add_images_btn.setEnabled(classes)
        self.classes_pane.add_btn.setEnabled(classes)
        self.grid.set_show_text(not classes, self.thumbs.size)

    @Slot()
    def update_summary(self) -> None:
        self.header.update_summary()

    @Slot(QModelIndex, QModelIndex)
    def on_class_selected(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self.session.current_class = self.class_model.class_at(current.row()) if current.isValid() else None
        self._apply_filter()

    def _apply_filter(self) -> None:
        name = self.session.current_class
        self.sample_model.set_filter(name)
        self.grid.current_class = name
        n = self.sample_model.total()
        if name is None:
            self.grid_title.setText(f"All images ({n:,})")
            self.grid.empty_text = "No images yet. Drop image files or a folder of class folders here."
        else:
            self.grid_title.setText(f"{name} ({n:,})")
            self.grid.empty_text = f"No images in '{name}' yet. Drop images here to add them to it."
        self.classes_pane.rename_btn.setEnabled(name is not None)
        self.classes_pane.delete_btn.setEnabled(name is not None)
        self._update_remove_button()
        self.grid.viewport().update()

    @Slot()
    def _update_remove_button(self) -> None:
        self.remove_btn.setEnabled(self.grid.selectionModel().hasSelection())

    # -- edits -------------------------------------------------------------------------------------
    @Slot(list, object)
    def on_paths_dropped(self, paths: list[str], target: str | None) -> None:
        result = self.session.import_paths(paths, target)
        if result.errors:
            self._show_class_error("; ".join(result.errors))
        else:
            self.class_error.hide()
        if target is not None:
            self.select_class(target)
        elif len(result.classes) == 1:
            self.select_class(result.classes[0])

    @Slot()
    def add_class(self) -> str:
        name = self.session.add_class()
        self.select_class(name)
        self.class_view.edit(self.class_model.index(self.class_model.row_of(name)))
        return name

    @Slot()
    def rename_selected_class(self) -> None:
        idx = self.class_view.currentIndex()
        if idx.isValid() and idx.row() != ALL_ROW:
            self.class_view.edit(idx)

    @Slot()
    def delete_selected_class(self) -> None:
        name = self.selected_class
        if name is None:
            return
        count = self.session.project.counts().get(name, 0)
        if count:
            answer = QMessageBox.question(
                self,
                "Delete class",
                f"Delete the class '{name}' and remove its {count} image(s) from the project?\n"
                "The files stay on the disk.",
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
        self.session.remove_class(name)

    @Slot()
    def remove_selected(self) -> int:
        rows = self.grid.selectionModel().selectedIndexes()
        indices = [int(i.data(SampleIndexRole)) for i in rows]
        return self.session.remove_samples(indices) if indices else 0

    def _move_selected(self, target: str) -> None:
        indices = [int(i.data(SampleIndexRole)) for i in self.grid.selectionModel().selectedIndexes()]
        paths = [self.session.project.samples[i][0] for i in indices]
        if paths:
            self.session.import_paths(paths, target)

    @Slot(QPoint)
    def _grid_menu(self, pos: QPoint) -> None:
        if not self.grid.selectionModel().hasSelection():
            return
        menu = QMenu(self)
        remove = QAction(icon("remove"), "Remove from project", menu)
        remove.triggered.connect(self.remove_selected)
        menu.addAction(remove)
        if self.session.project.has_classes:
            move = menu.addMenu("Move to class")
            for c in self.session.project.classes:
                if c != self.session.current_class:
                    a = move.addAction(c)
                    a.triggered.connect(lambda _=False, c=c: self._move_selected(c))
        menu.exec(self.grid.viewport().mapToGlobal(pos))

    @Slot()
    def choose_images(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Add images", str(Path.home()), IMAGE_FILTER)
        if files:
            target = self.session.current_class or self.session.default_class()
            self.on_paths_dropped(files, target)

    @Slot(str, str)
    def on_thumbnail_failed(self, path: str, reason: str) -> None:
        self.session.add_problems([(path, reason)])

    def _show_class_error(self, text: str) -> None:
        self.classes_pane.show_error(text)
