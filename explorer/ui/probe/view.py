"""Inside the model: the probe image, what the model outputs, and a section per declared intermediate.

Sections come from the model's declaration (``report.info``, ``report.output_info``), by kind
(see :mod:`.plan`); nothing is guessed from a key's name or an array's rank. Sections are built
once per model signature, in small steps (one per event-loop turn), and then only repainted, and
only while they can be seen (scrolled-away sections catch up when they come into view).
Reports are coalesced: the newest one is painted by a ~5 Hz timer, older ones are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer, Slot
from PySide6.QtWidgets import QGraphicsRectItem, QHBoxLayout, QLabel, QScrollArea, QSizePolicy, QVBoxLayout, QWidget

from explorer.engine import ProbeReport

from .attention import AttentionSection
from .feature_maps import FeatureMapSection, FilterSection
from .gradcam import GradCamSection
from .meter import paint_meter
from .outputs import CtcSection, OutputPanel
from .paint import FixedRange, Section
from .plan import Planned, keys_of_kind, plan_sections
from .recurrent import RecurrentSection
from .spatial import SpatialStateSection

__all__ = ["ProbeView", "ProbeContext", "SECTIONS"]

PAINT_MS = 200
BUILD_PAUSE_MS = 12  # between building steps: lets a 10 ms timer (and input) through
IMAGE_PX = 112

#: planned view -> the section class that draws it
SECTIONS: dict[str, type[Section]] = {
    "feature_map": FeatureMapSection,
    "filter": FilterSection,
    "recurrent": RecurrentSection,
    "spatial_state": SpatialStateSection,
    "attention": AttentionSection,
    "ctc_frames": CtcSection,
    "gradcam": GradCamSection,
}


@dataclass
class ProbeContext:
    """What a section paints from: the report, its arrays, the labels and the emitted words."""

    report: ProbeReport
    labels: list[str]
    words: list[str] = field(default_factory=list)

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        return self.report.intermediates

    @property
    def image(self) -> np.ndarray:
        return self.report.image


def emitted_words(report: ProbeReport, labels: Sequence[str]) -> list[str]:
    """The words of a captioning probe: the trainer's, else the declared ``tokens`` entry's ids
    looked up in the vocabulary (``labels``, index = id)."""
    if report.tokens is not None:
        return list(report.tokens)
    for key in keys_of_kind(report.info, "tokens"):
        if key in report.intermediates:
            ids = np.asarray(report.intermediates[key]).astype(int).ravel()
            return [labels[i] if 0 <= i < len(labels) else f"#{i}" for i in ids]
    return []


class ProbeView(QWidget):
    """Shows the newest :class:`ProbeReport`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pending: ProbeReport | None = None
        self._signature: tuple = ()
        self._output_kind: str | None = None  # the declared output kind the header is built for
        self._labels: list[str] = []
        self.sections: list[Section] = []
        self._to_build: list[tuple[Planned, dict[str, dict], list[np.ndarray]]] = []
        self.painted = 0  # reports painted (tests)
        self._built = False  # views were built for the pending report (its paint is not metered)

        self.image_view = pg.GraphicsLayoutWidget()
        self.image_view.setFixedSize(IMAGE_PX, IMAGE_PX)
        self.image_view.ci.setContentsMargins(0, 0, 0, 0)
        self._image_vb = self.image_view.addViewBox(lockAspect=True, enableMouse=False, invertY=True, enableMenu=False)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self._image_vb.addItem(self.image_item)
        self._image_range = FixedRange(self._image_vb)
        self.region = QGraphicsRectItem()  # the input box the hovered time step read
        self.region.setPen(pg.mkPen("#ff1744", width=2, cosmetic=True))
        self.region.setZValue(10)
        self.region.hide()
        self._image_vb.addItem(self.region)
        self.highlighted: tuple | None = None  # (y0, x0, y1, x1) shown on the image (tests)
        self.output = OutputPanel()
        top = QHBoxLayout()
        top.addWidget(self.image_view)
        top.addWidget(self.output, 1)

        self.note = QLabel("")
        self.note.setProperty("role", "hint")
        self.note.setWordWrap(True)
        self.note.hide()
        self._layers = QWidget()
        self._layers_layout = QVBoxLayout(self._layers)
        self._layers_layout.setContentsMargins(0, 0, 6, 0)
        self._layers_layout.addLayout(top)  # scrolls with the sections: nothing is clipped in a short view
        self._layers_layout.addWidget(self.note)
        self._layers_layout.addStretch(1)
        self.scroll = scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self._layers)
        scroll.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        scroll.verticalScrollBar().valueChanged.connect(self._paint_visible)
        self._ctx: ProbeContext | None = None
        self._stale: list[Section] = []  # sections that have not seen the newest report yet

        title = QLabel("Inside the model")
        title.setProperty("role", "section")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(title)
        layout.addWidget(scroll, 1)

        self._timer = QTimer(self)
        self._timer.setInterval(PAINT_MS)
        self._timer.timeout.connect(self.paint_pending)
        self._timer.start()

    @property
    def caption(self) -> QLabel:
        """The line naming the probe image (and, before training, what this view shows)."""
        return self.output.where

    def set_labels(self, labels: Sequence[str]) -> None:
        """Class names, the CTC charset or the caption vocabulary (index = token id)."""
        self._labels = [str(s) for s in labels]

    @Slot(object)
    def set_report(self, report: ProbeReport) -> None:
        """Keeps only the newest report; the timer paints it."""
        self._pending = report

    def clear(self) -> None:
        self._pending = None
        self._signature = ()
        self._remove_sections()
        self.image_item.clear()
        self.output.clear()

    @Slot()
    def paint_pending(self) -> None:
        r = self._pending
        if r is None:
            return
        planned = [p for p in plan_sections(r.info) if all(k in r.intermediates for k in p.keys)]
        signature = self._signature_of(r, planned)
        if signature != self._signature:
            self._built = True
            self._remove_sections()
            self._signature = signature
            self._output_kind = (r.output_info or {}).get("kind")
            self._to_build = [(p, r.info, [r.intermediates[k] for k in p.keys]) for p in planned]
            self._show_note(r, planned)
        if self._build_step():
            # New model: its views are built in small steps, one per event-loop turn with a pause
            # between them, so the window never freezes for the whole set; the report waits.
            QTimer.singleShot(BUILD_PAUSE_MS, self, self.paint_pending)
            return
        self._pending = None
        self.painted += 1
        if not self._built:  # views just built for this report: a one-off, not probing's running cost
            paint_meter().open()
        self._built = False
        self._paint(r)

    def _paint(self, r: ProbeReport) -> None:
        ctx = ProbeContext(r, self._labels, emitted_words(r, self._labels))
        img = r.image[..., 0] if r.image.ndim == 3 and r.image.shape[2] == 1 else r.image
        self.image_item.setImage(np.ascontiguousarray(img), levels=None, autoLevels=False)  # uint8: shown as is
        h, w = img.shape[:2]
        self._image_range.fit(w, h)
        width = int(min(2.5 * IMAGE_PX, max(IMAGE_PX, IMAGE_PX * w / max(h, 1))))  # text lines get wider
        if self.image_view.width() != width:
            self.image_view.setFixedSize(width, IMAGE_PX)
        self.output.update_from(ctx)
        self._ctx, self._stale = ctx, list(self.sections)
        self._paint_visible()
        if self._stale:  # sections just built may not be laid out yet
            QTimer.singleShot(0, self, self._paint_visible)

    def highlight_region(self, step: int | None, box: tuple | None) -> None:
        """Outlines on the probe image the input box (y0, x0, y1, x1) a time step read (None: nothing)."""
        self.highlighted = box
        if box is None:
            self.region.hide()
            return
        y0, x0, y1, x1 = box
        self.region.setRect(x0, y0, x1 - x0, y1 - y0)
        self.region.show()
        self.region.setToolTip(f"time step {step + 1} reads rows {y0}–{y1 - 1}, columns {x0}–{x1 - 1}")

    @property
    def waiting(self) -> list[Section]:
        """Sections that will paint the newest report when they come into view."""
        return list(self._stale)

    @Slot()
    def _paint_visible(self) -> None:
        """Paints the stale sections that can be seen; the others when they are scrolled to (a
        model with many layers costs only what is on screen)."""
        if self._ctx is None or not self._stale:
            return
        keep = []
        for sec in self._stale:
            if sec.visibleRegion().isEmpty():
                keep.append(sec)
            else:
                paint_meter().open()
                sec.update_from(self._ctx)
        self._stale = keep

    def showEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt override
        super().showEvent(event)
        QTimer.singleShot(0, self, self._paint_visible)

    def resizeEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt override
        super().resizeEvent(event)
        QTimer.singleShot(0, self, self._paint_visible)

    @staticmethod
    def _signature_of(r: ProbeReport, planned: list[Planned]) -> tuple:
        """What the built items depend on: the declaration and the shapes each view lays out by."""
        declared = tuple((k, d["kind"], d.get("title"), d.get("layer"), d.get("direction")) for k, d in r.info.items())
        layouts = tuple(SECTIONS[p.view].layout_of([r.intermediates[k] for k in p.keys]) for p in planned)
        return declared, layouts, (r.output_info or {}).get("kind")

    def _show_note(self, r: ProbeReport, planned: list[Planned]) -> None:
        if not r.info:
            self.note.setText("This model declares no intermediates to show.")
        elif not planned:
            self.note.setText("This model's intermediates have no view here.")
        self.note.setVisible(not planned)

    def _build_step(self) -> bool:
        """Does one small piece of building; False when everything exists."""
        if self.output.build_step(self._output_kind):
            return True
        for sec in self.sections:
            if sec.build_step():
                return True
        if self._to_build:
            p, info, arrays = self._to_build.pop(0)
            sec = SECTIONS[p.view](list(p.keys), info, arrays)
            if hasattr(sec, "on_hover"):
                sec.on_hover = self.highlight_region
            self._layers_layout.insertWidget(len(self.sections) + 2, sec)  # after the header and the note
            self.sections.append(sec)
            return True
        return False

    def _remove_sections(self) -> None:
        self._to_build = []
        self._stale = []
        for sec in self.sections:
            self._layers_layout.removeWidget(sec)
            sec.deleteLater()
        self.sections = []
        self.note.hide()

    def stop(self) -> None:
        self._timer.stop()
