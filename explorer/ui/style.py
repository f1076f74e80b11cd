"""Look and feel: Fusion style, a light palette, ``resources/style.qss`` and SVG icons."""

from __future__ import annotations

from functools import cache

import pyqtgraph as pg
from PySide6.QtGui import QColor, QIcon, QPalette
from PySide6.QtWidgets import QApplication

from resources import RESOURCES_DIR

__all__ = ["apply_style", "icon", "configure_pyqtgraph", "COLORS"]

#: Plot colours shared by curves and views (train, validation, accents).
COLORS = {
    "train": "#3949ab",
    "train_light": "#9fa8da",
    "val": "#e65100",
    "grid": "#eceff1",
    "text": "#37474f",
    "ok": "#2e7d32",
    "bad": "#c62828",
}


def configure_pyqtgraph() -> None:
    """Global pyqtgraph options: row-major images (numpy order), white plots, antialiasing."""
    pg.setConfigOptions(imageAxisOrder="row-major", background="w", foreground=COLORS["text"], antialias=True)


def apply_style(app: QApplication) -> None:
    app.setStyle("Fusion")
    pal = app.palette()
    pal.setColor(QPalette.ColorRole.Window, QColor("#f5f6f8"))
    pal.setColor(QPalette.ColorRole.Base, QColor("#ffffff"))
    pal.setColor(QPalette.ColorRole.AlternateBase, QColor("#f7f8fa"))
    pal.setColor(QPalette.ColorRole.Highlight, QColor("#5c6bc0"))
    pal.setColor(QPalette.ColorRole.HighlightedText, QColor("#ffffff"))
    pal.setColor(QPalette.ColorRole.ToolTipBase, QColor("#263238"))
    pal.setColor(QPalette.ColorRole.ToolTipText, QColor("#ffffff"))
    app.setPalette(pal)
    qss = RESOURCES_DIR / "style.qss"
    if qss.is_file():
        app.setStyleSheet(qss.read_text(encoding="utf-8"))
    app.setWindowIcon(icon("app"))
    configure_pyqtgraph()


@cache
def icon(name: str) -> QIcon:
    """An icon from ``resources/icons/NAME.svg`` (an empty icon if missing)."""
    path = RESOURCES_DIR / "icons" / f"{name}.svg"
    return QIcon(str(path)) if path.is_file() else QIcon()


def repolish(widget) -> None:  # noqa: ANN001 - any QWidget
    """Re-apply the style sheet after a dynamic property (``invalid``, ``role``) changed."""
    style = widget.style()
    style.unpolish(widget)
    style.polish(widget)
