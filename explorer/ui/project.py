"""A project: the user's data (classes and images), configs and runs. Plain Python, no Qt.

Saved as one JSON document (atomic write). Sample paths inside the project's folder are stored
relative to it, so a project folder can be moved or shared as a whole; other paths stay absolute.
Built-in samples are recorded as ``sample:NAME`` sources and regenerated if the cache was cleared.

The engine knows nothing about projects: :meth:`Project.to_source` and :meth:`Project.run_config`
turn one into what :class:`explorer.engine.Trainer` takes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from explorer.data import DataError, Problem, Sample, Source, materialize_sample
from explorer.engine import ConfigError, RunConfig
from explorer.engine.atomic import read_json, write_json
from explorer.engine.tasks import DEFAULT_TASK, Task, find_task

__all__ = ["PROJECT_FORMAT", "PROJECT_SUFFIX", "Project", "ProjectError", "RunRecord", "default_config"]

PROJECT_FORMAT = "model-explorer-project"
PROJECT_VERSION = 1
PROJECT_SUFFIX = ".mexp"
SAMPLE_PREFIX = "sample:"


class ProjectError(ValueError):
    """A project file that cannot be read; the message names the file and the reason."""


def default_config() -> RunConfig:
    """What a new project trains with: the engine's defaults plus a live probe once a second."""
    cfg = RunConfig()
    cfg.train.probe_interval = 1.0
    return cfg


@dataclass
class RunRecord:
    """One training run of the project (its folder holds the weights and full history)."""

    dir: str
    name: str
    arch: str = ""
    task: str = DEFAULT_TASK
    status: str = "running"  # running | completed | early_stopped | stopped | failed
    created: str = ""
    message: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, base: Path | None) -> dict[str, Any]:
        return {
            "dir": _rel(self.dir, base, {}),
            "name": self.name,
            "arch": self.arch,
            "task": self.task,
            "status": self.status,
            "created": self.created,
            "message": self.message,
            "metrics": self.metrics,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], base: Path | None) -> RunRecord:
        return cls(
            dir=_abs(str(d["dir"]), base),
            name=str(d.get("name", "")),
            arch=str(d.get("arch", "")),
            task=str(d.get("task", DEFAULT_TASK)),
            status=str(d.get("status", "")),
            created=str(d.get("created", "")),
            message=str(d.get("message", "")),
            metrics=dict(d.get("metrics") or {}),
        )


@dataclass
class Project:
    """Everything the user set up. ``samples`` are ``(path, target)``; for ``classify`` the target
    is a class name from ``classes`` (a class may be empty, e.g. just created)."""

    name: str = "Untitled"
    task: str = DEFAULT_TASK
    classes: list[str] = field(default_factory=list)
    samples: list[tuple[str, str]] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # where the samples came from, for the user
    problems: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    config: RunConfig = field(default_factory=default_config)
    params_by_arch: dict[str, dict[str, Any]] = field(default_factory=dict)  # edits kept per family
    runs: list[RunRecord] = field(default_factory=list)

    # -- queries ---------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(self.classes, 0)
        for _, target in self.samples:
            out[target] = out.get(target, 0) + 1
        return out

    @property
    def task_object(self) -> Task | None:
        """The project's :class:`~explorer.engine.tasks.Task`, or None for a task this version
        does not know (a project saved by a newer version): it is shown, not trained."""
        return find_task(self.task)

    @property
    def has_classes(self) -> bool:
        """The targets are classes that group the images (class folders, "move to class")."""
        task = self.task_object
        return task is not None and task.has_classes

    def describe(self) -> str:
        """One line for status bars: "120 images · 3 classes" (the task's words)."""
        task = self.task_object
        n = len(self.samples)
        return task.describe_dataset(n, len(self.classes)) if task else f"{n:,} images · task {self.task}"

    def is_empty(self) -> bool:
        return not self.samples and not self.classes and not self.runs

    def to_source(self) -> Source:
        """The samples as an engine-ready :class:`~explorer.data.Source`."""
        return Source(
            samples=[Sample(Path(p), t) for p, t in self.samples],
            problems=[Problem(p, r) for p, r in self.problems],
            task=self.task,
            origin=self.name,
        )

    def run_config(self) -> RunConfig:
        """A validated copy of the config with the current family's parameters.

        Raises:
            ConfigError: naming the bad key.
        """
        d = self.config.to_dict()
        d["params"] = dict(self.params_by_arch.get(self.config.arch, {}))
        # where the data came from, as the CLI names it (``sample:NAME``, a folder, a manifest) when
        # it came from one place; else the project's name
        d["data"]["source"] = self.sources[0] if len(self.sources) == 1 else self.name
        d["data"]["task"] = self.task
        return RunConfig.from_dict(d)

    # -- edits (the session wraps these and tells the views) -------------------------------------
    def add_class(self, name: str) -> str:
        name = self.unique_class_name(name)
        self.classes.append(name)
        return name

    def unique_class_name(self, base: str) -> str:
        base = base.strip() or "Class"
        if base not in self.classes:
            return base
        i = 2
        while f"{base} {i}" in self.classes:
            i += 1
        return f"{base} {i}"

    def rename_class(self, old: str, new: str) -> None:
        new = new.strip()
        if not new:
            raise ValueError("a class name cannot be empty")
        if new != old and new in self.classes:
            raise ValueError(f"there is already a class named '{new}'")
        self.classes[self.classes.index(old)] = new
        self.samples = [(p, new if t == old else t) for p, t in self.samples]

    def remove_class(self, name: str) -> int:
        """Removes a class and its samples; returns how many samples went."""
        self.classes.remove(name)
        before = len(self.samples)
        self.samples = [(p, t) for p, t in self.samples if t != name]
        return before - len(self.samples)

    def add_samples(self, samples: Iterable[tuple[str, str]]) -> int:
        """Adds ``(path, target)`` pairs; when the task has classes a path already present moves to the
        new class (an image has one label) and unknown classes are created. Returns how many were new or moved."""
        index = {p: i for i, (p, _) in enumerate(self.samples)}
        classes = self.has_classes
        changed = 0
        for path, target in samples:
            path = str(path)
            if classes and target not in self.classes:
                self.classes.append(target)
            i = index.get(path)
            if i is not None and classes:
                if self.samples[i][1] != target:
                    self.samples[i] = (path, target)
                    changed += 1
                continue
            index[path] = len(self.samples)
            self.samples.append((path, target))
            changed += 1
        return changed

    def remove_samples(self, indices: Iterable[int]) -> int:
        drop = set(indices)
        before = len(self.samples)
        self.samples = [s for i, s in enumerate(self.samples) if i not in drop]
        return before - len(self.samples)

    def add_problems(self, problems: Iterable[Problem | tuple[str, str] | str]) -> None:
        seen = set(self.problems)
        for pr in problems:
            if isinstance(pr, Problem):
                item = (pr.path, pr.reason)
            elif isinstance(pr, str):
                path, _, reason = pr.partition(": ")
                item = (path, reason or "cannot be used")
            else:
                item = (str(pr[0]), str(pr[1]))
            if item not in seen:
                seen.add(item)
                self.problems.append(item)

    def set_params(self, arch: str, values: Mapping[str, Any]) -> None:
        self.params_by_arch[arch] = dict(values)

    # -- file ------------------------------------------------------------------------------------
    def to_dict(self, base: Path | None = None) -> dict[str, Any]:
        roots = _sample_roots(self.sources)
        return {
            "format": PROJECT_FORMAT,
            "version": PROJECT_VERSION,
            "name": self.name,
            "task": self.task,
            "classes": list(self.classes),
            "sources": list(self.sources),
            "samples": [[_rel(p, base, roots), t] for p, t in self.samples],
            "problems": [[_rel(p, base, roots), r] for p, r in self.problems],
            "config": self.config.to_dict(),
            "params_by_arch": self.params_by_arch,
            "runs": [r.to_dict(base) for r in self.runs],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], base: Path | None = None, where: str = "project") -> Project:
        if not isinstance(d, Mapping) or d.get("format") != PROJECT_FORMAT:
            raise ProjectError(f"{where}: not a Model Explorer project (format != {PROJECT_FORMAT!r})")
        if int(d.get("version", 0)) > PROJECT_VERSION:
            raise ProjectError(f"{where}: written by a newer Model Explorer (version {d['version']})")
        try:
            config = RunConfig.from_dict(d.get("config") or {})
            sources = [str(s) for s in d.get("sources", [])]
            roots = _sample_roots(sources)
            samples = [(_abs(str(p), base, roots), str(t)) for p, t in d.get("samples", [])]
            problems = [(_abs(str(p), base, roots), str(r)) for p, r in d.get("problems", [])]
            runs = [RunRecord.from_dict(r, base) for r in d.get("runs", [])]
        except ConfigError as e:
            raise ProjectError(f"{where}: bad config ({e})") from None
        except (TypeError, ValueError, KeyError) as e:
            raise ProjectError(f"{where}: damaged project ({type(e).__name__}: {e})") from None
        return cls(
            name=str(d.get("name", "Untitled")),
            task=str(d.get("task", DEFAULT_TASK)),
            classes=[str(c) for c in d.get("classes", [])],
            samples=samples,
            sources=sources,
            problems=problems,
            config=config,
            params_by_arch={str(k): dict(v) for k, v in (d.get("params_by_arch") or {}).items()},
            runs=runs,
        )

    def save(self, path: str | os.PathLike[str]) -> None:
        path = Path(path)
        write_json(path, self.to_dict(Path(os.path.abspath(path)).parent))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Project:
        """Reads a project file; built-in samples it uses are regenerated if missing.

        Raises:
            ProjectError: the file is unreadable, not a project, or damaged.
        """
        path = Path(path)
        try:
            d = read_json(path)
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise ProjectError(f"{path}: cannot read ({e})") from None
        return cls.from_dict(d, Path(os.path.abspath(path)).parent, str(path))


def _sample_roots(sources: Iterable[str]) -> dict[str, Path]:
    """``{"sample:NAME": folder}`` of the built-in samples a project uses (generated if missing)."""
    roots = {}
    for src in sources:
        if src.startswith(SAMPLE_PREFIX):
            try:
                roots[src] = Path(os.path.abspath(materialize_sample(src[len(SAMPLE_PREFIX) :])))
            except DataError:
                pass  # its files show up as problems at training time
    return roots


def _rel(path: str, base: Path | None, roots: Mapping[str, Path]) -> str:
    """A path as stored: ``sample:NAME/...`` inside a built-in sample, relative inside the project
    folder, else absolute."""
    p = Path(os.path.abspath(path))  # not resolve(): no symlink walk for 10,000 paths
    for src, root in roots.items():
        if p.is_relative_to(root):
            return f"{src}/{p.relative_to(root).as_posix()}"
    if base is not None and p.is_relative_to(base):
        return p.relative_to(base).as_posix()
    return path


def _abs(path: str, base: Path | None, roots: Mapping[str, Path] | None = None) -> str:
    if path.startswith(SAMPLE_PREFIX) and "/" in path:
        src, _, rest = path.partition("/")
        root = (roots or {}).get(src)
        if root is not None:
            return str(root / rest)
    p = Path(path)
    if p.is_absolute() or base is None:
        return str(p)
    return str(base / p)
