"""About and keyboard-shortcut dialogs."""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from explorer import __version__

__all__ = ["AboutDialog", "ShortcutsDialog"]


class AboutDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About Model Explorer")
        import pyqtgraph
        import PySide6

        text = QLabel(
            f"<h2>Model Explorer {__version__}</h2>"
            "<p>Build, train and look inside CNN, RNN and hybrid image models.</p>"
            f"<p style='color:#607d8b'>Qt for Python {PySide6.__version__} · pyqtgraph {pyqtgraph.__version__} · "
            "PyTorch engine</p>"
        )
        text.setWordWrap(True)
        text.setTextFormat(Qt.TextFormat.RichText)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(text)
        lay.addWidget(buttons)
        self.resize(420, 180)


class ShortcutsDialog(QDialog):
    """Lists every action that has a shortcut (generated from the actions, so it never goes stale)."""

    def __init__(self, actions: Iterable[QAction], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        rows = []
        for a in actions:
            seq = a.shortcut()
            if not seq.isEmpty():
                rows.append(
                    (
                        a.text().replace("&", "").rstrip("…").rstrip("."),
                        seq.toString(QKeySequence.SequenceFormat.NativeText),
                    )
                )
        table = QTableWidget(len(rows), 2)
        table.setObjectName("shortcutsTable")
        table.setHorizontalHeaderLabels(["Action", "Shortcut"])
        table.verticalHeader().hide()
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        for i, (name, key) in enumerate(rows):
            table.setItem(i, 0, QTableWidgetItem(name))
            table.setItem(i, 1, QTableWidgetItem(key))
        hint = QLabel(
            "Also: drop files anywhere on the window to import them; F2 renames the selected class; "
            "Delete removes the selected images from the project."
        )
        hint.setWordWrap(True)
        hint.setProperty("role", "hint")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(table)
        lay.addWidget(hint)
        lay.addWidget(buttons)
        self.resize(480, 700)
