"""The open project as a QObject: every edit goes through here and is announced by a signal.

Views never change the :class:`~explorer.ui.project.Project` directly; they call a method of
:class:`ProjectSession` and redraw when its signal arrives, so two views of the same data can
never disagree. Changes are autosaved (debounced): into the project file when it has one, else
into ``autosave.mexp`` in the app's folder so an unsaved project survives a crash.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from explorer.data import DataError, Problem, Source, from_files, list_samples, open_source, read_manifest, scan_folder
from explorer.engine import RunConfig

from .drops import DropPlan, plan_drop
from .project import Project, RunRecord
from .settings import add_recent_project, app_home

__all__ = ["ProjectSession", "ImportResult", "AUTOSAVE_NAME"]

AUTOSAVE_NAME = "autosave.mexp"

#: What a built-in sample starts with: the CLI's defaults (``RunConfig()`` and the family's own
#: parameter defaults), except where a preset is faster and proven to learn as well. Each is proven
#: by ``tests/ui/test_samples.py`` (slow), which builds the project as the welcome screen does and
#: trains it headless; the figures are in the README.
SAMPLE_PRESETS: dict[str, dict[str, Any]] = {
    "shapes": {"arch": "cnn", "params": {"channels": [16, 32, 64]}, "epochs": 12},  # CLI: (32, 64, 128), 20
    "digit-strings": {"arch": "crnn", "params": {}, "epochs": 10},  # CLI defaults, 10 epochs
    "shape-scenes": {"arch": "captioner", "params": {}, "epochs": 15},  # CLI defaults, 15 of 20 epochs
}
AUTOSAVE_DELAY_MS = 1500


@dataclass
class ImportResult:
    added: int = 0
    classes: list[str] = field(default_factory=list)
    problems: int = 0
    errors: list[str] = field(default_factory=list)  # whole inputs that could not be used
    projects: list[Path] = field(default_factory=list)  # project files among the dropped paths

    def summary(self) -> str:
        parts = []
        if self.added:
            parts.append(f"added {self.added} image{'s' if self.added != 1 else ''}")
        if self.classes:
            parts.append(f"to {', '.join(self.classes[:5])}{' ...' if len(self.classes) > 5 else ''}")
        if self.problems:
            parts.append(f"{self.problems} file{'s' if self.problems != 1 else ''} could not be used (see Problems)")
        parts.extend(self.errors)
        return "; ".join(parts) or "nothing to import"


class ProjectSession(QObject):
    projectReplaced = Signal()  # a different project: reload everything
    datasetChanged = Signal()  # classes or samples
    problemsChanged = Signal()
    configChanged = Signal()  # arch, params or training settings changed by someone else than the forms
    runsChanged = Signal()
    pathChanged = Signal(str)
    dirtyChanged = Signal(bool)
    message = Signal(str)

    def __init__(self, parent: QObject | None = None, *, autosave: bool = True) -> None:
        super().__init__(parent)
        self.project = Project()
        self.path: Path | None = None
        self.current_class: str | None = None  # the dataset panel's selection: where loose drops go
        self._dirty = False
        self._autosave_enabled = autosave
        self._autosave = QTimer(self)
        self._autosave.setSingleShot(True)
        self._autosave.setInterval(AUTOSAVE_DELAY_MS)
        self._autosave.timeout.connect(self.autosave_now)

    # -- state ------------------------------------------------------------------------------------
    @property
    def dirty(self) -> bool:
        return self._dirty

    def mark_dirty(self) -> None:
        if not self._dirty:
            self._dirty = True
            self.dirtyChanged.emit(True)
        if self._autosave_enabled:
            self._autosave.start()

    def _set_clean(self) -> None:
        if self._dirty:
            self._dirty = False
            self.dirtyChanged.emit(False)

    def has_unsaved_runs(self) -> bool:
        """Runs that live only in the autosave: replacing the project would drop them from every list."""
        unsaved = self.path is None or self.path.name == AUTOSAVE_NAME
        return unsaved and bool(self.project.runs)

    def runs_root(self) -> Path:
        """Where new runs go: ``runs/`` beside the project file, or the app's folder when unsaved."""
        if self.path is not None:
            return self.path.parent / "runs"
        return app_home() / "unsaved-runs"

    def new_run_dir(self, arch: str) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        root = self.runs_root()
        d = root / f"{stamp}-{arch}"
        i = 2
        while d.exists():
            d = root / f"{stamp}-{arch}-{i}"
            i += 1
        return d

    # -- whole projects ---------------------------------------------------------------------------
    def new_project(self) -> None:
        self._replace(Project(), None)

    def open_project(self, path: str | os.PathLike[str], project: Project | None = None) -> None:
        """Opens ``path`` (``project``: already read from it, e.g. on a worker thread). Raises ProjectError."""
        path = Path(path)
        project = Project.load(path) if project is None else project
        for run in project.runs:
            if run.status == "running":  # the app ended while it trained
                run.status = "interrupted"
        self._replace(project, path)
        if path.name != AUTOSAVE_NAME:
            add_recent_project(path)
        self.message.emit(f"opened {path}")

    def _replace(self, project: Project, path: Path | None) -> None:
        self._autosave.stop()
        self.project = project
        self.path = path
        self._dirty = False
        self.pathChanged.emit(str(path) if path else "")
        self.dirtyChanged.emit(False)
        self.projectReplaced.emit()

    def save(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Saves to ``path`` (or the current file). Runs of an unsaved project move beside it.

        Raises:
            OSError: the file cannot be written.
        """
        target = Path(path) if path is not None else self.path
        if target is None:
            raise ValueError("the project has no file yet; give a path")
        if self.project.name == "Untitled" or self.path is None:
            self.project.name = target.stem
        first_save = self.path is None
        self.path = target
        if first_save:
            self._adopt_unsaved_runs()
        self.project.save(target)
        add_recent_project(target)
        self._autosave.stop()
        self._set_clean()
        self.pathChanged.emit(str(target))
        return target

    def _adopt_unsaved_runs(self) -> None:
        scratch = (app_home() / "unsaved-runs").resolve()
        dest_root = self.runs_root()
        moved = False
        for run in self.project.runs:
            src = Path(run.dir)
            if run.status == "running" or not src.is_dir() or not src.resolve().is_relative_to(scratch):
                continue
            dest = dest_root / src.name
            try:
                dest_root.mkdir(parents=True, exist_ok=True)
                shutil.move(str(src), str(dest))
                run.dir = str(dest)
                moved = True
            except OSError as e:
                self.message.emit(f"could not move run {src.name} beside the project: {e}")
        if moved:
            self.runsChanged.emit()

    def autosave_now(self) -> None:
        self._autosave.stop()
        if not self._dirty:
            return
        try:
            if self.path is not None:
                self.project.save(self.path)
                self._set_clean()
            elif not self.project.is_empty():
                self.project.save(app_home() / AUTOSAVE_NAME)
        except OSError as e:
            self.message.emit(f"autosave failed: {e}")

    # -- importing data ---------------------------------------------------------------------------
    def import_paths(self, paths: Iterable[str | os.PathLike[str]], target_class: str | None = None) -> ImportResult:
        """Adds dropped or chosen files and folders (see :mod:`explorer.ui.drops`).

        With ``target_class`` every image and image folder goes to that class; data-set folders
        and manifests are imported with their own labels either way.
        """
        plan = plan_drop(paths)
        result = ImportResult(projects=list(plan.projects))
        for manifest in plan.manifests:
            self._import_source(lambda m=manifest: read_manifest(m), result)
        for folder in plan.datasets:
            if target_class is not None:
                self._import_source(lambda f=folder: from_files([f], target_class), result)
            else:
                self._import_source(lambda f=folder: scan_folder(f), result)
        if target_class is not None:
            loose = plan.images + plan.image_folders
            if loose:
                self._import_source(lambda: from_files(loose, target_class), result)
        else:
            for folder in plan.image_folders:  # a folder of images is a class named after it
                self._import_source(lambda f=folder: from_files([f], f.name), result)
            if plan.images:
                label = self.default_class()
                self._import_source(lambda: from_files(plan.images, label), result)
        for p in plan.ignored:
            kind = p.suffix or "no suffix"
            self.project.add_problems(
                [(str(p), f"not an image file type ({kind}); drop images, folders, a .csv manifest or a project")]
            )
            result.problems += 1
        self._finish_import(result, plan)
        return result

    def default_class(self) -> str:
        """Class that loose images dropped on the window go to: the selected one, else the first, else a new one."""
        if self.current_class and self.current_class in self.project.classes:
            return self.current_class
        if self.project.classes:
            return self.project.classes[0]
        return self.project.unique_class_name("Class 1")

    def import_folder(self, path: str | os.PathLike[str]) -> ImportResult:
        return self.import_paths([path])

    def load_sample(self, name: str) -> ImportResult:
        """Starts a new project holding the built-in sample ``name``."""
        if name not in list_samples():
            raise DataError(f"unknown sample {name!r}; available: {', '.join(list_samples())}")
        project = Project(name=f"{name} sample")
        preset = SAMPLE_PRESETS.get(name)
        if preset:
            project.config.arch = preset["arch"]
            project.params_by_arch[preset["arch"]] = dict(preset["params"])
            project.config.train.epochs = preset["epochs"]
        self._replace(project, None)
        result = ImportResult()
        spec = f"sample:{name}"
        self._import_source(lambda: open_source(spec), result)
        self._finish_import(result, DropPlan())
        return result

    def _import_source(self, make: Any, result: ImportResult) -> None:
        try:
            source: Source = make()
        except DataError as e:
            result.errors.append(str(e))
            return
        p = self.project
        if p.samples and source.task != p.task and source.samples:
            result.errors.append(
                f"{source.origin}: holds {source.task} data but the project's task is {p.task}; "
                "start a new project for it"
            )
            return
        if not p.samples and source.samples and source.task != p.task:
            p.task = source.task
        added = p.add_samples((str(s.path), s.target) for s in source.samples)
        p.add_problems(source.problems)
        if source.origin and source.origin not in p.sources:
            p.sources.append(source.origin)
        result.added += added
        result.problems += len(source.problems)
        for c in dict.fromkeys(s.target for s in source.samples) if p.has_classes else []:
            if c not in result.classes:
                result.classes.append(c)

    def _finish_import(self, result: ImportResult, plan: DropPlan) -> None:
        if result.added or result.problems or result.classes:
            self.mark_dirty()
            self.datasetChanged.emit()
        if result.problems:
            self.problemsChanged.emit()
        self.message.emit(result.summary())

    # -- classes and samples ----------------------------------------------------------------------
    def add_class(self, name: str = "Class") -> str:
        if name == "Class":
            name = self.project.unique_class_name(f"Class {len(self.project.classes) + 1}")
        name = self.project.add_class(name)
        self.mark_dirty()
        self.datasetChanged.emit()
        return name

    def rename_class(self, old: str, new: str) -> None:
        """Raises ValueError for an empty or duplicate name."""
        if old == new.strip():
            return
        self.project.rename_class(old, new)
        if self.current_class == old:
            self.current_class = new.strip()
        self.mark_dirty()
        self.datasetChanged.emit()

    def remove_class(self, name: str) -> int:
        n = self.project.remove_class(name)
        if self.current_class == name:
            self.current_class = None
        self.mark_dirty()
        self.datasetChanged.emit()
        return n

    def remove_samples(self, indices: Iterable[int]) -> int:
        n = self.project.remove_samples(indices)
        if n:
            self.mark_dirty()
            self.datasetChanged.emit()
        return n

    def add_problems(self, problems: Iterable[Problem | tuple[str, str] | str]) -> None:
        before = len(self.project.problems)
        self.project.add_problems(problems)
        if len(self.project.problems) != before:
            self.mark_dirty()
            self.problemsChanged.emit()

    def clear_problems(self) -> None:
        self.project.problems.clear()
        self.mark_dirty()
        self.problemsChanged.emit()

    def set_task(self, task: str) -> None:
        if task != self.project.task:
            self.project.task = task
            self.mark_dirty()
            self.datasetChanged.emit()

    # -- configs (forms write here; they already show the value, so no configChanged) -------------
    def set_arch(self, arch: str) -> None:
        if arch != self.project.config.arch:
            self.project.config.arch = arch
            self.mark_dirty()

    def set_params(self, arch: str, values: Mapping[str, Any]) -> None:
        if self.project.params_by_arch.get(arch) != dict(values):
            self.project.set_params(arch, values)
            self.mark_dirty()

    def params(self, arch: str | None = None) -> dict[str, Any]:
        return dict(self.project.params_by_arch.get(arch or self.project.config.arch, {}))

    def set_input(self, height: int | None, width: int | None, color: str) -> None:
        """The model's input size (None = from the images) and colour mode."""
        d = self.project.config.data
        if (d.height, d.width, d.color) != (height, width, color):
            d.height, d.width, d.color = height, width, color
            self.mark_dirty()

    def set_config(self, config: RunConfig) -> None:
        """Replaces data (except source/task) and training settings; arch stays."""
        cfg = self.project.config
        if config.to_dict()["train"] != cfg.to_dict()["train"] or config.data != cfg.data:
            cfg.train = config.train
            cfg.data = config.data
            self.mark_dirty()

    # -- runs ------------------------------------------------------------------------------------
    def add_run(self, run: RunRecord) -> None:
        self.project.runs.append(run)
        self.mark_dirty()
        self.runsChanged.emit()

    def update_run(self, run: RunRecord, **changes: Any) -> None:
        """Sets fields of a run record (status, message, metrics) and tells the views."""
        for key, value in changes.items():
            setattr(run, key, value)
        self.mark_dirty()
        self.runsChanged.emit()

    def remove_run(self, run: RunRecord) -> None:
        self.project.runs = [r for r in self.project.runs if r is not run]
        self.mark_dirty()
        self.runsChanged.emit()
