"""Thumbnails made off the UI thread, cached, and announced in batches.

Views ask :meth:`ThumbnailCache.pixmap` while painting; only painted (visible) items ask, so a
10,000-image grid decodes only what is on screen. Requests go to a bounded LIFO queue (the most
recently painted first; requests scrolled past long ago fall off) drained by one pool thread that
decodes with :func:`explorer.data.read_image` and shrinks with OpenCV. Finished thumbnails come
back as QImages (safe to build off the GUI thread), become QPixmaps on the GUI thread, and are
announced every ~50 ms as one list so a view repaints once per batch, not once per image.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque

import cv2
import numpy as np
from PySide6.QtCore import QObject, QRunnable, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QImage, QPainter, QPixmap

from explorer.data import DecodeError, read_image

from .threads import new_pool

__all__ = ["ThumbnailCache", "make_thumbnail", "THUMB_SIZE"]

THUMB_SIZE = 88
MAX_QUEUE = 600  # a few screens of thumbnails; older requests are dropped (re-asked when painted again)


def make_thumbnail(path: str, size: int = THUMB_SIZE) -> QImage:
    """Decodes ``path`` and shrinks it to fit ``size`` x ``size``. Raises DecodeError."""
    img = read_image(path)
    h, w = img.shape[:2]
    scale = size / max(h, w)
    if scale != 1:
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        # shrink with area averaging; enlarge small images (e.g. 28x28 digits) to fill the cell,
        # nearest-neighbour from 2x up so their pixels stay visible as pixels
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR if scale < 2 else cv2.INTER_NEAREST
        img = cv2.resize(img, (nw, nh), interpolation=interp)
    img = np.ascontiguousarray(img)
    h, w = img.shape[:2]
    if img.ndim == 2:
        q = QImage(img.data, w, h, w, QImage.Format.Format_Grayscale8)
    else:
        q = QImage(img.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    return q.copy()  # own the pixels; the numpy buffer dies with this call


class _Drain(QRunnable):
    def __init__(self, cache: ThumbnailCache) -> None:
        super().__init__()
        self._cache = cache

    def run(self) -> None:
        self._cache._drain()


class ThumbnailCache(QObject):
    """LRU cache of thumbnails keyed by path."""

    ready = Signal(list)  # paths that now have a pixmap (batched)
    failed = Signal(str, str)  # path, reason: the file cannot be used
    _loaded = Signal(str, QImage)  # from the pool thread (queued to the GUI thread)
    _bad = Signal(str, str)

    def __init__(self, size: int = THUMB_SIZE, capacity: int = 4000, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.size = size
        self.capacity = capacity
        self._pool = new_pool("thumbnails", 1, self)
        self._lock = threading.Lock()
        self._queue: deque[str] = deque()
        self._queued: set[str] = set()
        self._draining = False
        self._closed = False
        self._pixmaps: OrderedDict[str, QPixmap] = OrderedDict()
        self._failed: dict[str, str] = {}
        self._batch: list[str] = []
        self._flush = QTimer(self)
        self._flush.setSingleShot(True)
        self._flush.setInterval(50)
        self._flush.timeout.connect(self._emit_batch)
        self._loaded.connect(self._on_loaded)
        self._bad.connect(self._on_bad)
        self.requests = 0  # how many decodes were asked for (tests check virtualisation with it)
        self.placeholder = _placeholder(size, "#eceff1")
        self.broken = _placeholder(size, "#ffcdd2", cross=True)

    # -- GUI thread -------------------------------------------------------------------------------
    def pixmap(self, path: str) -> QPixmap | None:
        """The thumbnail if ready (else asks for it and returns None)."""
        pm = self._pixmaps.get(path)
        if pm is not None:
            self._pixmaps.move_to_end(path)
            return pm
        if path not in self._failed:
            self._request(path)
        return None

    def error(self, path: str) -> str | None:
        return self._failed.get(path)

    def forget_failures(self) -> None:
        self._failed.clear()

    def _request(self, path: str) -> None:
        with self._lock:
            if self._closed or path in self._queued:
                return
            self._queue.append(path)
            self._queued.add(path)
            self.requests += 1
            while len(self._queue) > MAX_QUEUE:
                self._queued.discard(self._queue.popleft())
            start = not self._draining
            self._draining = True
        if start:
            self._pool.start(_Drain(self))

    @Slot(str, QImage)
    def _on_loaded(self, path: str, image: QImage) -> None:
        with self._lock:
            self._queued.discard(path)
        if self._closed:
            return
        self._pixmaps[path] = QPixmap.fromImage(image)
        while len(self._pixmaps) > self.capacity:
            self._pixmaps.popitem(last=False)
        self._batch.append(path)
        if not self._flush.isActive():
            self._flush.start()

    @Slot(str, str)
    def _on_bad(self, path: str, reason: str) -> None:
        with self._lock:
            self._queued.discard(path)
        if self._closed:
            return
        self._failed[path] = reason
        self._batch.append(path)
        if not self._flush.isActive():
            self._flush.start()
        self.failed.emit(path, reason)

    @Slot()
    def _emit_batch(self) -> None:
        batch, self._batch = self._batch, []
        if batch:
            self.ready.emit(batch)

    def close(self) -> None:
        """Drops pending work and waits for the pool thread (call before the app quits)."""
        with self._lock:
            self._closed = True
            self._queue.clear()
            self._queued.clear()
        self._flush.stop()
        self._pool.clear()
        self._pool.waitForDone()

    def wait_idle(self, msecs: int = 5000) -> bool:
        return self._pool.waitForDone(msecs)

    # -- pool thread ------------------------------------------------------------------------------
    def _drain(self) -> None:
        while True:
            with self._lock:
                if self._closed or not self._queue:
                    self._draining = False
                    return
                path = self._queue.pop()  # newest first: what the user looks at now
            try:
                image = make_thumbnail(path, self.size)
            except DecodeError as e:
                self._bad.emit(path, str(e))
            except (OSError, ValueError, cv2.error, MemoryError) as e:
                self._bad.emit(path, f"cannot read: {e}")
            else:
                self._loaded.emit(path, image)


def _placeholder(size: int, color: str, cross: bool = False) -> QPixmap:
    pm = QPixmap(QSize(size, size))
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setBrush(QColor(color))
    p.setPen(Qt.PenStyle.NoPen)
    p.drawRoundedRect(4, 4, size - 8, size - 8, 6, 6)
    if cross:
        p.setPen(QColor("#c62828"))
        m = size // 3
        p.drawLine(m, m, size - m, size - m)
        p.drawLine(size - m, m, m, size - m)
    p.end()
    return pm
