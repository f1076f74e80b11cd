"""Item models over the session's data: the class list (with counts) and the sample grid.

Both are thin: they index into ``session.project`` and are reset when the session says the data
changed. The sample model hands out thumbnails from :class:`~explorer.ui.thumbnails.ThumbnailCache`
lazily, so only painted rows ever cost a decode.
"""

from __future__ import annotations

from itertools import compress
from operator import itemgetter
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt, Signal, Slot
from PySide6.QtGui import QIcon

from .session import ProjectSession
from .thumbnails import ThumbnailCache

__all__ = ["ClassListModel", "SampleListModel", "ALL_ROW"]

ALL_ROW = 0  # the class list's first row shows every image
PathRole = Qt.ItemDataRole.UserRole + 1
SampleIndexRole = Qt.ItemDataRole.UserRole + 2
ClassRole = Qt.ItemDataRole.UserRole + 3
CountRole = Qt.ItemDataRole.UserRole + 4

_Index = QModelIndex | QPersistentModelIndex
_path, _target = itemgetter(0), itemgetter(1)


class ClassListModel(QAbstractListModel):
    """Row 0: all images; then one row per class: name (editable), count, first image as icon."""

    renameFailed = Signal(str)

    def __init__(self, session: ProjectSession, thumbs: ThumbnailCache) -> None:
        super().__init__()
        self.session = session
        self.thumbs = thumbs
        self._classes: list[str] = []
        self._counts: dict[str, int] = {}
        self._first: dict[str, str] = {}
        self.reload()

    @Slot()
    def reload(self) -> None:
        self.beginResetModel()
        p = self.session.project
        self._classes = list(p.classes)
        self._counts = p.counts()
        # the first image of each class (C-level iteration: 300,000 samples in a few ms; the first wins
        # because the list is read backwards)
        backwards = p.samples[::-1]
        self._first = dict(zip(map(_target, backwards), map(_path, backwards), strict=True))
        self.endResetModel()

    @Slot(list)
    def on_thumbnails(self, paths: list[str]) -> None:
        firsts = set(paths) & set(self._first.values())
        if firsts and self._classes:
            self.dataChanged.emit(self.index(1), self.index(len(self._classes)), [Qt.ItemDataRole.DecorationRole])

    def class_at(self, row: int) -> str | None:
        return self._classes[row - 1] if 1 <= row <= len(self._classes) else None

    def row_of(self, name: str | None) -> int:
        return ALL_ROW if name is None or name not in self._classes else self._classes.index(name) + 1

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._classes) + 1

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = index.row()
        name = self.class_at(row)
        total = sum(self._counts.values())
        if role == Qt.ItemDataRole.DisplayRole:
            if name is None:
                return f"All images  ({total})"
            return f"{name}  ({self._counts.get(name, 0)})"
        if role == Qt.ItemDataRole.EditRole:
            return name or ""
        if role == ClassRole:
            return name
        if role == CountRole:
            return total if name is None else self._counts.get(name, 0)
        if role == Qt.ItemDataRole.DecorationRole and name is not None:
            first = self._first.get(name)
            if first is None:
                return None
            pm = self.thumbs.pixmap(first)
            return QIcon(pm) if pm is not None else None
        if role == Qt.ItemDataRole.ToolTipRole:
            if name is None:
                return "Every image of the project"
            return f"{name}: {self._counts.get(name, 0)} images. Double-click to rename; drop images here to add them."
        return None

    def flags(self, index: _Index) -> Qt.ItemFlag:
        base = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if index.isValid() and index.row() != ALL_ROW:
            base |= Qt.ItemFlag.ItemIsEditable | Qt.ItemFlag.ItemIsDropEnabled
        return base

    def setData(self, index: _Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        name = self.class_at(index.row()) if index.isValid() else None
        if role != Qt.ItemDataRole.EditRole or name is None:
            return False
        try:
            self.session.rename_class(name, str(value))  # resets this model through datasetChanged
        except ValueError as e:
            self.renameFailed.emit(str(e))
            return False
        return True


#: rows the grid holds at first, and adds each time it is scrolled to its end (Qt's fetchMore):
#: the view lays out every row it holds, one Python call each, so 300,000 at once freeze the window
FETCH_ROWS = 20_000


class SampleListModel(QAbstractListModel):
    """The images of one class (or all), in project order; :data:`FETCH_ROWS` more at a time."""

    def __init__(self, session: ProjectSession, thumbs: ThumbnailCache) -> None:
        super().__init__()
        self.session = session
        self.thumbs = thumbs
        self._filter: str | None = None
        self._rows: list[int] = []  # sample indices
        self._row_of: dict[str, int] = {}
        self._shown = 0  # rows handed to the view so far
        self.reload()

    @property
    def filter(self) -> str | None:
        return self._filter

    def set_filter(self, class_name: str | None) -> None:
        if class_name != self._filter:
            self._filter = class_name
            self.reload()

    @Slot()
    def reload(self) -> None:
        self.beginResetModel()
        samples = self.session.project.samples
        f = self._filter
        n = len(samples)
        # C-level iteration (range, compress, map): 300,000 samples in a few ms on the GUI thread
        self._rows = list(range(n)) if f is None else list(compress(range(n), map(f.__eq__, map(_target, samples))))
        self._row_of = {}
        self._shown = 0
        self._show(min(len(self._rows), FETCH_ROWS))
        self.endResetModel()

    def _show(self, more: int) -> None:
        """Hands ``more`` rows to the view (the row of each path: for thumbnails as they arrive)."""
        samples, start = self.session.project.samples, self._shown
        rows = self._rows[start : start + more]
        self._row_of.update(zip((samples[i][0] for i in rows), range(start, start + len(rows)), strict=True))
        self._shown += len(rows)

    def total(self) -> int:
        """Images of the filter (the view may hold fewer rows so far)."""
        return len(self._rows)

    def canFetchMore(self, parent: _Index = QModelIndex()) -> bool:  # noqa: B008, N802 - Qt's signature
        return not parent.isValid() and self._shown < len(self._rows)

    def fetchMore(self, parent: _Index = QModelIndex()) -> None:  # noqa: B008, N802 - Qt's signature
        if parent.isValid():
            return
        more = min(FETCH_ROWS, len(self._rows) - self._shown)
        if more > 0:
            self.beginInsertRows(QModelIndex(), self._shown, self._shown + more - 1)
            self._show(more)
            self.endInsertRows()

    @Slot(list)
    def on_thumbnails(self, paths: list[str]) -> None:
        rows = [r for r in (self._row_of.get(p) for p in paths) if r is not None]
        if rows:
            self.dataChanged.emit(self.index(min(rows)), self.index(max(rows)), [Qt.ItemDataRole.DecorationRole])

    def sample_index(self, row: int) -> int:
        return self._rows[row]

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else self._shown

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= self._shown:
            return None
        path, target = self.session.project.samples[self._rows[index.row()]]
        if role == Qt.ItemDataRole.DecorationRole:
            pm = self.thumbs.pixmap(path)
            if pm is None:
                return self.thumbs.broken if self.thumbs.error(path) else self.thumbs.placeholder
            return pm
        if role == Qt.ItemDataRole.DisplayRole:
            # classes are the grid's context already; texts (sequence, caption) are the point
            return None if self.session.project.has_classes else target
        if role == Qt.ItemDataRole.ToolTipRole:
            err = self.thumbs.error(path)
            tip = f"{Path(path).name}\n{target}\n{path}"
            return f"{tip}\n\ncannot be used: {err}" if err else tip
        if role == PathRole:
            return path
        if role == SampleIndexRole:
            return self._rows[index.row()]
        return None

    def flags(self, index: _Index) -> Qt.ItemFlag:
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
