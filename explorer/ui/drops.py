"""What a drop of files and folders means. Plain Python, no Qt.

* a project file (``.mexp``, or a ``.json`` that is a project) opens the project;
* a ``.csv`` file, or a folder holding ``labels.csv`` / ``captions.csv``, is a manifest;
* a folder with sub-folders that hold images is a data set: one class per sub-folder;
* image files, and folders of images without class sub-folders, are images for one class.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from explorer.data import IMAGE_EXTENSIONS, MANIFEST_NAME

from .project import PROJECT_FORMAT, PROJECT_SUFFIX

__all__ = ["DropPlan", "plan_drop", "is_image_path", "MANIFEST_NAMES"]

#: Manifest names looked for inside a dropped folder, in this order.
MANIFEST_NAMES = (MANIFEST_NAME, "captions.csv")


@dataclass
class DropPlan:
    projects: list[Path] = field(default_factory=list)
    manifests: list[Path] = field(default_factory=list)
    datasets: list[Path] = field(default_factory=list)  # folders of class folders
    image_folders: list[Path] = field(default_factory=list)  # folders of images (one class)
    images: list[Path] = field(default_factory=list)  # loose image files
    ignored: list[Path] = field(default_factory=list)  # anything else (reported to the user)

    def is_empty(self) -> bool:
        return not (
            self.projects or self.manifests or self.datasets or self.image_folders or self.images or self.ignored
        )


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def is_project_file(path: Path) -> bool:
    if path.suffix.lower() == PROJECT_SUFFIX:
        return True
    if path.suffix.lower() != ".json" or not path.is_file():
        return False
    try:
        with open(path, encoding="utf-8") as f:
            return f'"{PROJECT_FORMAT}"' in f.read(4096)
    except (OSError, UnicodeDecodeError):
        return False


def _has_class_folders(folder: Path) -> bool:
    try:
        with os.scandir(folder) as it:
            subdirs = [e for e in it if e.is_dir() and not e.name.startswith(".") and not is_image_path(Path(e.name))]
    except OSError:
        return False
    for d in subdirs:
        for _dirpath, _dirs, files in os.walk(d.path):
            if any(is_image_path(Path(f)) for f in files):
                return True
    return False


def plan_drop(paths: Iterable[str | os.PathLike[str]]) -> DropPlan:
    plan = DropPlan()
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            manifest = next((p / n for n in MANIFEST_NAMES if (p / n).is_file()), None)
            if manifest is not None:
                plan.manifests.append(manifest)
            elif _has_class_folders(p):
                plan.datasets.append(p)
            else:
                plan.image_folders.append(p)
        elif is_project_file(p):
            plan.projects.append(p)
        elif p.suffix.lower() == ".csv":
            plan.manifests.append(p)
        elif is_image_path(p):
            plan.images.append(p)
        else:
            plan.ignored.append(p)
    return plan
