"""Where the app keeps its own files: settings, recent projects, autosaves, runs of unsaved projects.

``MODEL_EXPLORER_HOME`` moves all of them into one folder (tests and benchmarks use it so they
never touch the user's settings); otherwise settings are Qt's native per-user settings and files
go to the per-user application data folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths

__all__ = ["app_home", "app_settings", "recent_projects", "add_recent_project", "remove_recent_project"]

_ORG, _APP = "ModelExplorer", "Model Explorer"
MAX_RECENT = 10


def app_home() -> Path:
    env = os.environ.get("MODEL_EXPLORER_HOME")
    if env:
        home = Path(env).expanduser()
    else:
        loc = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericDataLocation)
        home = Path(loc or Path.home() / ".local" / "share") / "model-explorer"
    home.mkdir(parents=True, exist_ok=True)
    return home


def app_settings() -> QSettings:
    if os.environ.get("MODEL_EXPLORER_HOME"):
        return QSettings(str(app_home() / "settings.ini"), QSettings.Format.IniFormat)
    return QSettings(_ORG, _APP)


def recent_projects() -> list[str]:
    value = app_settings().value("recent/projects", [])
    if isinstance(value, str):  # QSettings returns a lone string for a one-element list
        value = [value]
    return [str(v) for v in (value or []) if v]


def add_recent_project(path: str | os.PathLike[str]) -> None:
    p = str(Path(path).resolve())
    items = [p] + [r for r in recent_projects() if r != p]
    app_settings().setValue("recent/projects", items[:MAX_RECENT])


def remove_recent_project(path: str) -> None:
    app_settings().setValue("recent/projects", [r for r in recent_projects() if r != path])
