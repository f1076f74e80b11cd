"""Grad-CAM of the probe image: one map per target (the predicted class, each decoded CTC
character, each caption word), laid over the image with an opacity slider and a colour bar; for a
captioner the model's own attention for the same word is drawn beside it.

The maps come from the probe (``intermediates["gradcam"]`` (n, H, W) in [0, 1], at the input's
resolution) and their description from ``info["gradcam"]["extra"]`` (labels, positions, frames,
scores); nothing is recomputed here.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGraphicsRectItem, QHBoxLayout, QLabel, QPushButton, QSlider

from .attention import upsample
from .paint import OVERLAY_CMAP, BarLevels, ColorBar, FixedRange, Section, colorize, lut, to_u8
from .plan import frames_box, keys_of_kind
from .toggles import ToggleGrid

__all__ = ["GradCamSection", "blend", "target_text"]

PER_ROW = 8
VIEW_PX = 230


def as_rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    return np.repeat(image.reshape(*image.shape[:2], 1), 3, 2)


def blend(image: np.ndarray, values: np.ndarray, levels: tuple[float, float], alpha: float) -> np.ndarray:
    """The image (H, W, C) uint8 with ``values`` (H, W) coloured over it at opacity ``alpha``."""
    rgb = as_rgb(image).astype(np.float32)
    heat = colorize(to_u8(values, levels), lut(OVERLAY_CMAP)).astype(np.float32)
    return np.ascontiguousarray(np.clip((1.0 - alpha) * rgb + alpha * heat + 0.5, 0, 255).astype(np.uint8))


def target_text(extra: dict, i: int) -> tuple[str, str]:
    """(button text, tooltip) of map ``i``: its label, and where it sits in the output."""
    label = str(extra["labels"][i])
    pos = extra.get("positions", [None] * (i + 1))[i]
    frames = extra.get("frames", [None] * (i + 1))[i]
    score = extra.get("scores", [None] * (i + 1))[i]
    text = label if pos is None else f"{pos + 1}: {label}"
    tip = f"Grad-CAM of '{label}'"
    if pos is not None:
        tip += f", output position {pos + 1}"
    if frames:
        tip += f", CTC frames {frames[0]}–{frames[1] - 1}"
    if score is not None:
        tip += f", score {float(score):.3g}"
    return text, tip


class _Overlay(pg.GraphicsLayoutWidget):
    """The image with one heatmap over it and a colour bar (levels are the map's)."""

    def __init__(self, bar_label: str) -> None:
        super().__init__()
        self.setBackground("w")
        self.setFixedHeight(VIEW_PX)
        self.ci.setContentsMargins(2, 8, 4, 8)
        self.vb = self.addViewBox(row=0, col=0, lockAspect=True, enableMouse=False, invertY=True, enableMenu=False)
        self.item = pg.ImageItem(axisOrder="row-major")
        self.vb.addItem(self.item)
        self.bar = ColorBar(bar_label, OVERLAY_CMAP)
        self.addItem(self.bar, row=0, col=1)
        self._range = FixedRange(self.vb)
        self._bar = BarLevels(self.bar)
        self.box = QGraphicsRectItem()  # the input box a CTC character's frames read
        self.box.setPen(pg.mkPen("#00e5ff", width=2, style=Qt.PenStyle.DashLine, cosmetic=True))
        self.box.setZValue(10)
        self.box.hide()
        self.vb.addItem(self.box)

    def mark(self, box: tuple[int, ...] | None, tip: str = "") -> None:
        """Outlines the input box (y0, x0, y1, x1) on the overlay (None: nothing)."""
        if box is None:
            self.box.hide()
            return
        y0, x0, y1, x1 = box
        self.box.setRect(x0, y0, x1 - x0, y1 - y0)
        self.box.setToolTip(tip)
        self.box.show()

    def paint_rgb(self, rgb: np.ndarray, levels: tuple[float, float]) -> None:
        self.item.setImage(rgb, levels=None, autoLevels=False)
        self._range.fit(rgb.shape[1], rgb.shape[0])
        self._bar.set(levels)
        if not self.isVisible():
            self.setVisible(True)


class GradCamSection(Section):
    """Picker over the maps, the chosen map over the image, opacity slider, attention beside it."""

    @staticmethod
    def layout_of(arrays: list[np.ndarray]) -> tuple:
        return tuple(arrays[0].shape[1:])  # targets change with every prediction; buttons follow

    def __init__(self, keys: list[str], info: dict[str, dict], arrays: list[np.ndarray]) -> None:
        super().__init__(keys, info[keys[0]]["title"])
        self.selected = 0
        self.shown_map: np.ndarray | None = None  # the (H, W) map painted last (tests)
        self.shown_attention: np.ndarray | None = None
        self.shown_box: tuple[int, ...] | None = None  # the input box outlined (a CTC character's frames)
        self._box = ToggleGrid(PER_ROW, self.select)
        self.body.addWidget(self._box)
        row = QHBoxLayout()
        row.addWidget(QLabel("overlay opacity"))
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(60)
        self.opacity.setMaximumWidth(220)
        self.opacity.valueChanged.connect(lambda _v: self._paint())
        row.addWidget(self.opacity)
        row.addStretch(1)
        self.body.addLayout(row)
        views = QHBoxLayout()
        self.cam_view = _Overlay("Grad-CAM (0 … 1, relative)")
        self.att_view = _Overlay("the model's own attention weight")
        self.att_view.hide()
        views.addWidget(self.cam_view, 1)
        views.addWidget(self.att_view, 1)
        self.body.addLayout(views)
        self._ctx = None

    def update_from(self, ctx) -> None:  # noqa: ANN001
        self._ctx = ctx
        extra = ctx.report.info[self.keys[0]].get("extra", {})
        n = ctx.arrays[self.keys[0]].shape[0]
        self._set_targets([target_text(extra, i) for i in range(n)])  # tooltips carry this probe's scores
        self.selected = min(self.selected, max(n - 1, 0))
        self._paint()

    @property
    def buttons(self) -> list[QPushButton]:
        """One button per map, in order (the shown ones)."""
        return self._box.buttons

    def select(self, index: int) -> None:
        self.selected = index
        self._box.check(index)
        self._paint()

    def _set_targets(self, texts: list[tuple[str, str]]) -> None:
        self._box.set_items(texts)
        if self._box.isHidden() == (len(texts) > 1):
            self._box.setVisible(len(texts) > 1)

    def _paint(self) -> None:
        ctx = self._ctx
        if ctx is None:
            return
        maps = ctx.arrays[self.keys[0]]
        if maps.shape[0] == 0:
            self.cam_view.item.clear()
            self.shown_map = None
            return
        i = self.selected
        self._box.check(i)
        self.shown_map = cam = np.asarray(maps[i], dtype=np.float32)
        alpha = self.opacity.value() / 100.0
        self.cam_view.paint_rgb(blend(ctx.image, cam, (0.0, 1.0), alpha), (0.0, 1.0))
        extra = ctx.report.info[self.keys[0]].get("extra", {})
        self._paint_attention(ctx, extra, i, alpha)
        where = self._mark_frames(ctx, extra, i)
        layer = ctx.report.info[self.keys[0]].get("layer")
        self.set_note(
            f"map {i + 1} of {maps.shape[0]}: {self.buttons[i].toolTip()}; gradient-weighted activation of "
            f"layer '{layer}', ReLU'd and scaled to 0 … 1, at the input's {cam.shape[0]} × {cam.shape[1]} px (y × x)"
            + where
        )

    def _mark_frames(self, ctx, extra: dict, i: int) -> str:  # noqa: ANN001
        """For a CTC character: outlines the columns its frames read; the note's words on it."""
        frames = (extra.get("frames") or [None] * (i + 1))[i]
        probs = ctx.report.probabilities
        box = frames_box(ctx.report.info, frames, probs.shape[0]) if frames and probs.ndim == 2 else None
        self.shown_box = box
        if box is None:
            self.cam_view.mark(None)
            return ""
        y0, x0, y1, x1 = box
        self.cam_view.mark(box, f"CTC frames {frames[0]}–{frames[1] - 1} read columns {x0}–{x1 - 1}")
        return (
            f". Dashed box: columns {x0}–{x1 - 1}, read by the frames that emitted it. The conv layer's "
            "columns are mixed by the recurrent layers above it, so a character's map can spread past its box"
        )

    def _paint_attention(self, ctx, extra: dict, i: int, alpha: float) -> None:  # noqa: ANN001
        """For a caption word: the decoder's own attention when it emitted that word."""
        keys = [k for k in keys_of_kind(ctx.report.info, "attention") if k in ctx.arrays]
        pos = (extra.get("positions") or [None] * (i + 1))[i]
        if not keys or pos is None or pos >= ctx.arrays[keys[0]].shape[0]:
            self.att_view.hide()
            self.shown_attention = None
            return
        d = ctx.report.info[keys[0]]
        amap = ctx.arrays[keys[0]][pos]
        grid = tuple(d["grid"]) if d.get("grid") is not None else tuple(amap.shape)
        up = upsample(amap, grid, ctx.image.shape[:2])
        levels = (0.0, float(max(up.max(), 1e-6)))
        self.shown_attention = amap
        self.att_view.paint_rgb(blend(ctx.image, up, levels, alpha), levels)
