"""The strip of candidate probe images: click one to look at it, tick several to pin them and
compare them side by side. Emits ``chosen(paths)``: the pinned images, then the clicked one."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QListView, QListWidget, QListWidgetItem

from explorer.data import IMAGE_EXTENSIONS

__all__ = ["ThumbnailStrip", "image_paths", "load_thumbnails", "THUMB_PX", "MAX_CANDIDATES"]

THUMB_PX = 64
MAX_CANDIDATES = 300


def image_paths(paths: list[str | os.PathLike[str]]) -> list[str]:
    """Image files among ``paths``, folders walked (sorted)."""
    out: list[str] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            out += sorted(str(f) for f in p.rglob("*") if f.suffix.lower() in IMAGE_EXTENSIONS and f.is_file())
        elif p.suffix.lower() in IMAGE_EXTENSIONS:
            out.append(str(p))
    return out


def load_thumbnails(paths: list[str], px: int = THUMB_PX) -> list[tuple[str, np.ndarray | None]]:
    """(path, RGB uint8 thumbnail fitting ``px`` × ``px``, or None when unreadable); for a worker thread."""
    out = []
    for p in paths[:MAX_CANDIDATES]:
        data = np.fromfile(p, dtype=np.uint8) if os.path.isfile(p) else np.zeros(0, np.uint8)
        img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
        if img is None:
            out.append((p, None))
            continue
        h, w = img.shape[:2]
        s = px / max(h, w)
        small = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
        out.append((p, np.ascontiguousarray(small[..., ::-1])))
    return out


def _icon(rgb: np.ndarray | None) -> QIcon:
    if rgb is None:
        return QIcon()
    h, w = rgb.shape[:2]
    return QIcon(QPixmap.fromImage(QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()))


class ThumbnailStrip(QListWidget):
    chosen = Signal(list)

    def __init__(self, checkable: bool = True) -> None:
        """``checkable``: a tick box per image to pin it (a plain gallery without)."""
        super().__init__()
        self.checkable = checkable
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(False)
        self.setIconSize(QSize(THUMB_PX, THUMB_PX))
        self.setGridSize(QSize(THUMB_PX + 40, THUMB_PX + 30))
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # "trian…_294.png": the part that differs stays
        self.setFixedHeight(THUMB_PX + 52)
        self.setMovement(QListView.Movement.Static)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setToolTip("Click an image to look inside the model with it; tick images to pin them side by side")
        self.current: str | None = None
        self.hide()  # until there are images to offer
        self.itemClicked.connect(self._on_click)
        self.itemChanged.connect(lambda _item: self._emit())

    def set_candidates(self, thumbs: list[tuple[str, np.ndarray | None]]) -> None:
        self.blockSignals(True)
        self.clear()
        self.blockSignals(False)
        self.add_candidates(thumbs)
        self.setVisible(bool(thumbs))

    def add_candidates(self, thumbs: list[tuple[str, np.ndarray | None]]) -> None:
        """Appends images (an image already offered gets the new thumbnail, not a second entry);
        nothing is chosen or emitted."""
        self.blockSignals(True)
        for path, rgb in thumbs:
            item = self._item(path)
            if item is None:
                item = QListWidgetItem(os.path.basename(path))
                item.setData(Qt.ItemDataRole.UserRole, path)
                if self.checkable:
                    item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                    item.setCheckState(Qt.CheckState.Unchecked)
                self.addItem(item)
            item.setIcon(_icon(rgb))
            item.setToolTip(path if rgb is not None else f"{path}: cannot be read")
        self.blockSignals(False)
        if thumbs:
            self.show()

    def _item(self, path: str) -> QListWidgetItem | None:
        for i in range(self.count()):
            if self.item(i).data(Qt.ItemDataRole.UserRole) == path:
                return self.item(i)
        return None

    def paths(self) -> list[str]:
        return [self.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.count())]

    def pinned(self) -> list[str]:
        return [
            self.item(i).data(Qt.ItemDataRole.UserRole)
            for i in range(self.count())
            if self.item(i).checkState() == Qt.CheckState.Checked
        ]

    def pin(self, path: str, on: bool = True) -> None:
        item = self._item(path)
        if item is not None:
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)

    def show_paths(self, paths: list[str]) -> None:
        """Looks at exactly ``paths`` (offered images): several side by side (all but the last
        pinned, the others unpinned), one ``chosen`` signal."""
        if not paths:
            return
        self.blockSignals(True)
        for i in range(self.count()):
            item = self.item(i)
            keep = item.data(Qt.ItemDataRole.UserRole) in paths[:-1]
            if self.checkable:
                item.setCheckState(Qt.CheckState.Checked if keep else Qt.CheckState.Unchecked)
        self.blockSignals(False)
        target = self._item(paths[-1])
        if target is not None:
            self.setCurrentItem(target)
            self.scrollToItem(target)
        self.choose(paths[-1])

    def choose(self, path: str) -> None:
        """As a click on ``path``'s thumbnail."""
        self.current = path
        self._emit()

    def selection(self) -> list[str]:
        """The images to look at: the pinned ones, then the clicked one when it is not pinned."""
        pinned = self.pinned()
        return pinned + ([self.current] if self.current and self.current not in pinned else [])

    def _on_click(self, item: QListWidgetItem) -> None:
        self.choose(item.data(Qt.ItemDataRole.UserRole))

    def _emit(self) -> None:
        self.chosen.emit(self.selection())
