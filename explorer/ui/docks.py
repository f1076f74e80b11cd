"""Small dock contents: the log and the problems list."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .session import ProjectSession

__all__ = ["LogView", "ProblemsView"]


class LogView(QPlainTextEdit):
    """Read-only, bounded log (oldest lines drop off)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMaximumBlockCount(5000)
        font = QFont("monospace")
        font.setStyleHint(QFont.StyleHint.Monospace)
        font.setPointSize(9)
        self.setFont(font)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)

    @Slot(str)
    def log(self, text: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        self.appendPlainText(f"{stamp}  {text.rstrip()}")


class ProblemsView(QWidget):
    """Each file that could not be used, and why."""

    def __init__(self, session: ProjectSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.tree = QTreeWidget()
        self.tree.setObjectName("problemsList")
        self.tree.setColumnCount(2)
        self.tree.setHeaderLabels(["File", "Why it cannot be used"])
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        self.tree.setUniformRowHeights(True)
        self.tree.header().resizeSection(0, 320)
        self.count = QLabel()
        self.count.setProperty("role", "hint")
        clear = QPushButton("Clear")
        clear.setToolTip("Forget the listed problems (they come back if the files are still unusable)")
        clear.clicked.connect(session.clear_problems)
        row = QHBoxLayout()
        row.addWidget(self.count, 1)
        row.addWidget(clear)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(row)
        lay.addWidget(self.tree)
        session.problemsChanged.connect(self.reload)
        session.projectReplaced.connect(self.reload)
        self.reload()

    @Slot()
    def reload(self) -> None:
        problems = self.session.project.problems
        self.tree.clear()
        items = []
        for path, reason in problems:
            it = QTreeWidgetItem([Path(path).name or path, reason])
            it.setToolTip(0, path)
            it.setToolTip(1, reason)
            it.setData(0, Qt.ItemDataRole.UserRole, path)
            items.append(it)
        self.tree.addTopLevelItems(items)
        n = len(problems)
        self.count.setText(f"{n} file{'s' if n != 1 else ''} could not be used." if n else "No problems.")

    def paths(self) -> list[str]:
        return [
            self.tree.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole) for i in range(self.tree.topLevelItemCount())
        ]
