"""The first screen: a built-in sample one click away, your own images, recent projects."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from explorer.data import SAMPLES, list_samples

from .session import AUTOSAVE_NAME
from .settings import app_home, recent_projects
from .style import icon

__all__ = ["WelcomeView"]


def _card(title: str, text: str) -> tuple[QFrame, QVBoxLayout]:
    card = QFrame()
    card.setObjectName("card")
    lay = QVBoxLayout(card)
    lay.setContentsMargins(18, 16, 18, 16)
    lay.setSpacing(8)
    t = QLabel(title)
    t.setProperty("role", "section")
    lay.addWidget(t)
    if text:
        d = QLabel(text)
        d.setWordWrap(True)
        d.setProperty("role", "hint")
        lay.addWidget(d)
    return card, lay


class WelcomeView(QScrollArea):
    sampleRequested = Signal(str)
    importFolderRequested = Signal()
    addImagesRequested = Signal()
    importManifestRequested = Signal()
    openProjectRequested = Signal()
    recentRequested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        body = QWidget()
        body.setObjectName("welcome")
        outer = QVBoxLayout(body)
        outer.setContentsMargins(40, 32, 40, 32)
        outer.setSpacing(18)
        title = QLabel("Model Explorer")
        title.setProperty("role", "title")
        subtitle = QLabel(
            "Build, train and look inside image models. Start with a built-in sample and train "
            "your first model in under a minute, or bring your own images."
        )
        subtitle.setProperty("role", "subtitle")
        subtitle.setWordWrap(True)
        outer.addWidget(title)
        outer.addWidget(subtitle)
        grid = QGridLayout()
        grid.setHorizontalSpacing(18)
        grid.setVerticalSpacing(18)
        grid.addWidget(self._samples_card(), 0, 0)
        grid.addWidget(self._own_data_card(), 0, 1)
        grid.addWidget(self._projects_card(), 1, 0, 1, 2)
        grid.setColumnStretch(0, 1)
        grid.setColumnStretch(1, 1)
        outer.addLayout(grid)
        steps = QLabel(
            "<b>How it works:</b> 1. Data: classes and their images · 2. Architecture: pick a model family "
            "and shape it · 3. Training: press Train (F5) and watch the curves and the feature maps change · "
            "4. Runs: compare, predict, export."
        )
        steps.setWordWrap(True)
        steps.setProperty("role", "hint")
        outer.addWidget(steps)
        outer.addStretch(1)
        self.setWidget(body)
        self.refresh_recent()

    def _samples_card(self) -> QFrame:
        card, lay = _card("Try a built-in sample", "Generated on your computer; nothing is downloaded.")
        self.sample_buttons: dict[str, QPushButton] = {}
        for name in list_samples():
            row = QHBoxLayout()
            desc = QLabel(f"<b>{name}</b>: {SAMPLES.get(name, '')}")
            desc.setWordWrap(True)
            btn = QPushButton(f"Open {name}")
            btn.setProperty("primary", True)
            btn.setToolTip(f"Start a project with the '{name}' images, ready to train")
            btn.clicked.connect(lambda _=False, n=name: self.sampleRequested.emit(n))
            self.sample_buttons[name] = btn
            row.addWidget(desc, 1)
            row.addWidget(btn, 0, Qt.AlignmentFlag.AlignTop)
            lay.addLayout(row)
        lay.addStretch(1)
        return card

    def _own_data_card(self) -> QFrame:
        card, lay = _card(
            "Use your own images",
            "Drop a folder anywhere on this window: one sub-folder per class (cats/, dogs/, ...) becomes "
            "one class each. Or drop image files and sort them into classes.",
        )
        buttons = QHBoxLayout()
        b1 = QPushButton(icon("folder"), "Import folder…")
        b1.clicked.connect(self.importFolderRequested)
        b2 = QPushButton(icon("images"), "Add images…")
        b2.clicked.connect(self.addImagesRequested)
        b3 = QPushButton("Import manifest…")
        b3.setToolTip("labels.csv (path,label) or captions.csv")
        b3.clicked.connect(self.importManifestRequested)
        for b in (b1, b2, b3):
            buttons.addWidget(b)
        buttons.addStretch(1)
        lay.addLayout(buttons)
        lay.addStretch(1)
        return card

    def _projects_card(self) -> QFrame:
        card, lay = _card("Projects", "")
        open_btn = QPushButton("Open project…")
        open_btn.clicked.connect(self.openProjectRequested)
        row = QHBoxLayout()
        row.addWidget(open_btn)
        row.addStretch(1)
        lay.addLayout(row)
        self._recent_box = QVBoxLayout()
        self._recent_box.setSpacing(2)
        lay.addLayout(self._recent_box)
        lay.addStretch(1)
        return card

    @Slot()
    def refresh_recent(self) -> None:
        while self._recent_box.count():
            item = self._recent_box.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        autosave = app_home() / AUTOSAVE_NAME
        if autosave.is_file():
            link = QLabel(
                f'<a href="{autosave}">Restore the last unsaved project</a> '
                '<span style="color:#78909c">(autosaved when the app last ran)</span>'
            )
            link.setTextInteractionFlags(Qt.TextInteractionFlag.LinksAccessibleByMouse)
            link.linkActivated.connect(self.recentRequested)
            self._recent_box.addWidget(link)
        recent = [r for r in recent_projects() if Path(r).is_file()][:6]
        if not recent and not autosave.is_file():
            none = QLabel("No recent projects.")
            none.setProperty("role", "hint")
            self._recent_box.addWidget(none)
            return
        for path in recent:
            link = QLabel(f'<a href="{path}">{Path(path).stem}</a> <span style="color:#78909c">— {path}</span>')
            link.setTextInteractionFlags(Qt.TextInteractionFlag.LinksAccessibleByMouse)
            link.linkActivated.connect(self.recentRequested)
            self._recent_box.addWidget(link)
