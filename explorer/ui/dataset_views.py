"""The data screen's views: class buckets and the thumbnail grid, both accepting file drops."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, QPoint, QSize, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent, QKeySequence, QPainter
from PySide6.QtWidgets import QAbstractItemView, QListView, QWidget

from explorer.data import IMAGE_EXTENSIONS

from .dataset_model import ClassListModel

__all__ = ["IMAGE_FILTER", "ClassListView", "SampleGridView", "paths_from_mime"]

IMAGE_FILTER = "Images ({})".format(" ".join(f"*{e}" for e in sorted(IMAGE_EXTENSIONS)))


def paths_from_mime(mime: QMimeData) -> list[str]:
    """Local files and folders named by a drag's URLs."""
    if not mime.hasUrls():
        return []
    return [u.toLocalFile() for u in mime.urls() if u.isLocalFile() and u.toLocalFile()]


class _DropMixin:
    """Accepts file drops and says where they fell (class name or None)."""

    pathsDropped: Signal

    def _accept(self, e: QDragEnterEvent | QDragMoveEvent) -> None:
        if e.mimeData().hasUrls():
            e.acceptProposedAction()
        else:
            e.ignore()

    def dragEnterEvent(self, e: QDragEnterEvent) -> None:  # noqa: N802 - Qt
        self._accept(e)

    def dragMoveEvent(self, e: QDragMoveEvent) -> None:  # noqa: N802 - Qt
        self._accept(e)

    def dropEvent(self, e: QDropEvent) -> None:  # noqa: N802 - Qt
        paths = paths_from_mime(e.mimeData())
        if not paths:
            e.ignore()
            return
        e.acceptProposedAction()
        self.pathsDropped.emit(paths, self.drop_target(e.position().toPoint()))

    def drop_target(self, pos: QPoint) -> str | None:
        raise NotImplementedError


class ClassListView(_DropMixin, QListView):
    """The class buckets. Dropping on a class adds the files to it."""

    pathsDropped = Signal(list, object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.setDropIndicatorShown(True)
        self.setIconSize(QSize(36, 36))
        self.setSpacing(2)
        self.setUniformItemSizes(True)
        self.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
            | QAbstractItemView.EditTrigger.SelectedClicked
        )

    def drop_target(self, pos: QPoint) -> str | None:
        idx = self.indexAt(pos)
        model = self.model()
        return model.class_at(idx.row()) if idx.isValid() and isinstance(model, ClassListModel) else None


#: items the grid lays out per event-loop turn (Batched layout)
LAYOUT_BATCH = 2000


class SampleGridView(_DropMixin, QListView):
    """Thumbnails in a virtualised icon grid (uniform item sizes: layout and paint cost only
    what is visible)."""

    pathsDropped = Signal(list, object)
    removeRequested = Signal()

    def __init__(self, thumb_size: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.current_class: str | None = None
        self.empty_text = ""
        self.setAcceptDrops(True)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setUniformItemSizes(True)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setIconSize(QSize(thumb_size, thumb_size))
        self.setGridSize(QSize(thumb_size + 10, thumb_size + 10))
        self.setSpacing(0)
        self.setWordWrap(False)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.verticalScrollBar().setSingleStep(24)
        # laid out in batches between events: 300,000 images never freeze the window
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(LAYOUT_BATCH)

    def set_show_text(self, show: bool, thumb_size: int) -> None:
        self.setGridSize(QSize(thumb_size + 10, thumb_size + (30 if show else 10)))

    def drop_target(self, pos: QPoint) -> str | None:
        return self.current_class

    def keyPressEvent(self, e) -> None:  # noqa: ANN001, N802 - Qt
        if e.matches(QKeySequence.StandardKey.Delete) or e.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self.removeRequested.emit()
            return
        super().keyPressEvent(e)

    def paintEvent(self, e) -> None:  # noqa: ANN001, N802 - Qt
        super().paintEvent(e)
        model = self.model()
        if model is not None and model.rowCount() == 0 and self.empty_text:
            p = QPainter(self.viewport())
            p.setPen(self.palette().placeholderText().color())
            p.drawText(
                self.viewport().rect().adjusted(20, 20, -20, -20),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                self.empty_text,
            )
            p.end()
