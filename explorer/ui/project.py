"""A project: the user's data (classes and images), configs and runs. Plain Python, no Qt.

Saved as one JSON document (atomic write). Sample paths inside the project's folder are stored
relative to it, so a project folder can be moved or shared as a whole; other paths stay absolute.
Built-in samples are recorded as ``sample:NAME`` sources and regenerated if the cache was cleared.

The engine knows nothing about projects: :meth:`Project.to_source` and :meth:`Project.run_config`
turn one into what :class:`explorer.engine.Trainer` takes.
"""

from __future__ import annotations

import gc
import json
import math
import os
import re
import stat
import sys
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any, NoReturn

from explorer.data import DataError, Problem, Sample, Source, materialize_sample
from explorer.engine import ConfigError, RunConfig
from explorer.engine.atomic import write_json
from explorer.engine.tasks import DEFAULT_TASK, Task, find_task
from models import list_models

__all__ = [
    "MAX_PROJECT_BYTES",
    "PROJECT_FORMAT",
    "PROJECT_SUFFIX",
    "Project",
    "ProjectError",
    "RunRecord",
    "bulk_objects",
    "default_config",
    "read_project_file",
]

PROJECT_FORMAT = "model-explorer-project"
PROJECT_VERSION = 1
PROJECT_SUFFIX = ".mexp"
SAMPLE_PREFIX = "sample:"
#: a project file larger than this is refused unread (300,000 samples take about 40 MB)
MAX_PROJECT_BYTES = 256 * 2**20


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
    def from_dict(
        cls, d: Mapping[str, Any], base: Path | None, where: str = "project", field: str = "runs[0]"
    ) -> RunRecord:
        """Raises ProjectError naming ``where`` and the field (``runs[2].dir``)."""
        if not isinstance(d, Mapping):
            _fail(where, field, f"expected an object, got {_kind(d)}")
        if "dir" not in d:
            _fail(where, f"{field}.dir", "missing (the run's folder)")
        text = {k: _text(d, k, default, where, f"{field}.{k}") for k, default in _RUN_TEXT.items()}
        metrics = d.get("metrics")
        if metrics is None:
            metrics = {}
        if not isinstance(metrics, Mapping):
            _fail(where, f"{field}.metrics", f"expected an object, got {_kind(metrics)}")
        if not text["dir"]:
            _fail(where, f"{field}.dir", "empty (the run's folder)")
        return cls(
            dir=_abs(text["dir"], base),
            name=text["name"],
            arch=text["arch"],
            task=text["task"],
            status=text["status"],
            created=text["created"],
            message=text["message"],
            metrics={str(k): _metric(v) for k, v in metrics.items()},
        )


#: a run record's text fields and their defaults
_RUN_TEXT = {"dir": "", "name": "", "arch": "", "task": DEFAULT_TASK, "status": "", "created": "", "message": ""}


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
        out.update(Counter(map(itemgetter(1), self.samples)))  # C-level: 300,000 samples in a few ms
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
        """Reads a project document, every field checked.

        Raises:
            ProjectError: naming ``where`` and the field (``samples[12]``, ``config.train.lr``).
        """
        if not isinstance(d, Mapping) or d.get("format") != PROJECT_FORMAT:
            raise ProjectError(f"{where}: not a Model Explorer project (format != {PROJECT_FORMAT!r})")
        version = d.get("version", 0)
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            _fail(where, "version", f"expected a whole number >= 0, got {_shown(version)}")
        if version > PROJECT_VERSION:
            raise ProjectError(f"{where}: written by a newer Model Explorer (version {version})")
        config = d.get("config")
        if config is None:
            config = {}
        if not isinstance(config, Mapping):
            _fail(where, "config", f"expected an object, got {_kind(config)}")
        arch = config.get("arch", RunConfig.arch)
        if not isinstance(arch, str) or arch not in list_models():
            _fail(
                where,
                "config.arch",
                f"{_shown(arch)} is not an architecture of this version ({', '.join(list_models())})",
            )
        try:
            run_config = RunConfig.from_dict(config)
        except ConfigError as e:
            _fail(where, f"config.{e.key}" if e.key else "config", str(e).removeprefix(f"{e.key}: "))
        except (TypeError, ValueError, AttributeError, KeyError, OverflowError) as e:
            _fail(where, "config", f"unreadable ({type(e).__name__}: {e})")
        sources = _texts(d, "sources", where)
        roots = _sample_roots(sources)
        classes = list(dict.fromkeys(_texts(d, "classes", where)))  # a class listed twice is one class
        samples = [(_abs(p, base, roots), t) for p, t in _pairs(d, "samples", where)]
        problems = [(_abs(p, base, roots), r) for p, r in _pairs(d, "problems", where)]
        runs = [RunRecord.from_dict(r, base, where, f"runs[{i}]") for i, r in enumerate(_list(d, "runs", where))]
        project = cls(
            name=_text(d, "name", "Untitled", where, "name"),
            task=_text(d, "task", DEFAULT_TASK, where, "task"),
            classes=classes,
            samples=samples,
            sources=sources,
            problems=problems,
            config=run_config,
            params_by_arch=_params_by_arch(d, where),
            runs=runs,
        )
        if project.has_classes:  # a sample's class is one of the classes
            known = set(classes)
            project.classes += list(dict.fromkeys(t for _, t in samples if t not in known))
        return project

    def save(self, path: str | os.PathLike[str]) -> None:
        path = Path(path)
        write_json(path, self.to_dict(Path(os.path.abspath(path)).parent))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Project:
        """Reads a project file; built-in samples it uses are regenerated if missing.

        Raises:
            ProjectError: the file is missing, not a regular file (a FIFO or device is never
                opened), too large, not UTF-8 JSON, not a project, or damaged; the message names
                the file and the field.
        """
        path = Path(path)
        with bulk_objects(os.stat(path).st_size // 50 if path.is_file() else 0):
            return cls.from_dict(read_project_file(path), Path(os.path.abspath(path)).parent, str(path))


#: from this many objects on, :func:`bulk_objects` builds them without garbage-collector passes
BULK_OBJECTS = 50_000


#: GIL switch interval (s) while a worker builds a bulk of objects (see :func:`bulk_objects`).
BULK_SWITCH_INTERVAL = 0.0001
_bulk_lock = threading.Lock()
_bulk_depth = [0, 0.005]  # bulks running now, the switch interval to restore when none is


@contextmanager
def bulk_objects(count: int) -> Iterator[None]:
    """Builds ``count`` (about) long-lived objects without cyclic garbage-collector passes.

    Each full collection walks every tracked object while holding the GIL: making 300,000 samples
    (or their :class:`~explorer.data.Sample` objects) triggers several, of seconds each on a busy
    machine, which freeze the window whichever thread allocates. Under ``count`` >= :data:`BULK_OBJECTS`
    collection is paused while building, and what exists afterwards is moved out of the collector's
    sight (``gc.freeze``); those objects are still freed by reference counting (samples hold no cycles).
    """
    if count < BULK_OBJECTS:
        yield
        return
    enabled = gc.isenabled()
    gc.disable()
    # A long pure-Python loop on a worker makes each of the GUI thread's many GIL hand-overs (every
    # Qt call and every Python slot or model callback) wait up to a switch interval: hundreds of them
    # froze the window for seconds at Python's default of 5 ms.
    with _bulk_lock:
        if _bulk_depth[0] == 0:
            _bulk_depth[1] = sys.getswitchinterval()
            sys.setswitchinterval(min(_bulk_depth[1], BULK_SWITCH_INTERVAL))
        _bulk_depth[0] += 1
    try:
        yield
    finally:
        with _bulk_lock:
            _bulk_depth[0] -= 1
            if _bulk_depth[0] == 0:
                sys.setswitchinterval(_bulk_depth[1])
        gc.freeze()
        if enabled:
            gc.enable()


def read_project_file(path: str | os.PathLike[str], max_bytes: int | None = None) -> Any:
    """The JSON document in a project file, read safely.

    ``stat`` first: a folder, FIFO, socket or device is refused unopened (reading a FIFO would block
    for ever), as is a file over ``max_bytes`` (default :data:`MAX_PROJECT_BYTES`). The file is
    opened non-blocking and checked again (it may have been swapped since), then read with the
    cap. Bytes that are not UTF-8, invalid JSON and nesting too deep for the parser are messages.

    Raises:
        ProjectError: naming the file and the reason.
    """
    limit = MAX_PROJECT_BYTES if max_bytes is None else max_bytes
    try:
        st = os.stat(path)
    except OSError as e:
        raise ProjectError(f"{path}: cannot read ({e.strerror or e})") from None
    _check_kind(path, st.st_mode, st.st_size, limit)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            _check_kind(path, st.st_mode, st.st_size, limit)
            data = f.read(limit + 1)
    except OSError as e:
        raise ProjectError(f"{path}: cannot read ({e.strerror or e})") from None
    if len(data) > limit:
        raise ProjectError(f"{path}: too large for a project file (over {limit // 2**20} MiB)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ProjectError(f"{path}: cannot read (not UTF-8 text: byte {e.start} is invalid)") from None
    try:
        return _loads(text)
    except json.JSONDecodeError as e:
        raise ProjectError(
            f"{path}: cannot read (invalid JSON at line {e.lineno}, column {e.colno}: {e.msg})"
        ) from None
    except RecursionError:
        raise ProjectError(f"{path}: cannot read (JSON nested too deeply)") from None
    except ValueError as e:  # an integer too long to convert
        raise ProjectError(f"{path}: cannot read ({e})") from None


def _no_constant(_name: str) -> None:
    """NaN and Infinity are not JSON (this app never writes them); read as null, then checked as such."""
    return None


_DECODER = json.JSONDecoder(parse_constant=_no_constant)
_WS = re.compile(r"[ \t\n\r]*")


def _loads(text: str) -> Any:
    """``json.loads``, in small steps: the top-level object and its lists are walked in Python and
    only their items are handed to the C decoder, so a thread reading a project of 300,000 samples
    lets the GUI thread run between items (one big ``json.loads`` would hold the GIL throughout)."""
    value, end = _decode(text, _WS.match(text, 0).end(), 2)
    end = _WS.match(text, end).end()
    if end != len(text):
        raise json.JSONDecodeError("Extra data", text, end)
    return value


def _decode(text: str, i: int, levels: int) -> tuple[Any, int]:
    opener = text[i : i + 1]
    if levels <= 0 or opener not in ("{", "["):
        return _DECODER.raw_decode(text, i)
    closer = "}" if opener == "{" else "]"
    out: Any = {} if opener == "{" else []
    i = _WS.match(text, i + 1).end()
    if text[i : i + 1] == closer:
        return out, i + 1
    while True:
        if opener == "{":
            if text[i : i + 1] != '"':
                raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, i)
            key, i = _DECODER.raw_decode(text, i)
            i = _WS.match(text, i).end()
            if text[i : i + 1] != ":":
                raise json.JSONDecodeError("Expecting ':' delimiter", text, i)
            value, i = _decode(text, _WS.match(text, i + 1).end(), levels - 1)
            out[key] = value
        else:
            value, i = _decode(text, i, levels - 1)
            out.append(value)
        i = _WS.match(text, i).end()
        c = text[i : i + 1]
        if c == closer:
            return out, i + 1
        if c != ",":
            raise json.JSONDecodeError(f"Expecting ',' delimiter or '{closer}'", text, i)
        i = _WS.match(text, i + 1).end()


def _check_kind(path: str | os.PathLike[str], mode: int, size: int, limit: int) -> None:
    if stat.S_ISDIR(mode):
        raise ProjectError(f"{path}: a folder, not a project file")
    if not stat.S_ISREG(mode):
        raise ProjectError(f"{path}: not a regular file (a FIFO, socket or device is never opened as a project)")
    if size > limit:
        raise ProjectError(
            f"{path}: too large for a project file ({size / 2**20:,.0f} MiB; the limit is {limit // 2**20} MiB)"
        )


# -- field checks: each failure names the file and the field ---------------------------------------


def _fail(where: str, field: str, message: str) -> NoReturn:
    raise ProjectError(f"{where}: field '{field}': {message}")


def _kind(v: Any) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "true/false", type(None): "null"}.get(
        type(v), "a number" if isinstance(v, int | float) else type(v).__name__
    )


def _shown(v: Any) -> str:
    text = json.dumps(v) if isinstance(v, int | float | str | bool | type(None)) else _kind(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _text(d: Mapping[str, Any], key: str, default: str, where: str, field: str) -> str:
    v = d.get(key)
    if v is None:
        return default
    if not isinstance(v, str):
        _fail(where, field, f"expected text, got {_kind(v)}")
    return v


def _list(d: Mapping[str, Any], key: str, where: str) -> list[Any]:
    v = d.get(key)
    if v is None:
        return []
    if not isinstance(v, list):
        _fail(where, key, f"expected a list, got {_kind(v)}")
    return v


def _texts(d: Mapping[str, Any], key: str, where: str) -> list[str]:
    items = _list(d, key, where)
    for i, v in enumerate(items):
        if not isinstance(v, str):
            _fail(where, f"{key}[{i}]", f"expected text, got {_kind(v)}")
    return items


def _pairs(d: Mapping[str, Any], key: str, where: str) -> list[tuple[str, str]]:
    """``[[path, text], ...]`` (samples, problems)."""
    items = _list(d, key, where)
    for i, v in enumerate(items):
        if not (isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) and isinstance(v[1], str)):
            _fail(
                where,
                f"{key}[{i}]",
                f"expected [path, text], got {_shown(v) if not isinstance(v, list) else _shown_list(v)}",
            )
        if not v[0]:
            _fail(where, f"{key}[{i}]", "the path is empty")
    return [(p, t) for p, t in items]


def _shown_list(v: list[Any]) -> str:
    return "[" + ", ".join(_shown(x) for x in v[:3]) + (", ..." if len(v) > 3 else "") + "]"


#: the largest number a parameter form shows (Qt spin boxes hold 32-bit integers)
_MAX_PARAM = 2**31 - 1


def _params_by_arch(d: Mapping[str, Any], where: str) -> dict[str, dict[str, Any]]:
    """Parameter edits per family, as the forms left them (validated when a run starts, so a
    half-typed value is kept); only their shape is checked here: plain values the forms can show."""
    v = d.get("params_by_arch")
    if v is None:
        return {}
    if not isinstance(v, Mapping):
        _fail(where, "params_by_arch", f"expected an object, got {_kind(v)}")
    out: dict[str, dict[str, Any]] = {}
    for arch, params in v.items():
        if not isinstance(params, Mapping):
            _fail(where, f"params_by_arch.{arch}", f"expected an object, got {_kind(params)}")
        for name, value in params.items():
            for x in value if isinstance(value, list) else [value]:
                if not _plain(x):
                    _fail(where, f"params_by_arch.{arch}.{name}", f"not a value a parameter can have ({_shown(x)})")
        out[str(arch)] = dict(params)
    return out


def _plain(x: Any) -> bool:
    if isinstance(x, bool) or x is None or isinstance(x, str):
        return True
    if isinstance(x, int):
        return abs(x) <= _MAX_PARAM
    return isinstance(x, float) and math.isfinite(x) and abs(x) <= _MAX_PARAM


def _metric(v: Any) -> Any:
    """A run's cached figure as the runs list shows it: numbers stay numbers (non-finite ones become
    None), other values become text, so a damaged figure never breaks the list."""
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, int | float):
        return v if math.isfinite(v) else None
    if isinstance(v, Mapping):
        return {str(k): _metric(x) for k, x in v.items()}
    return str(v)


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
    # string operations, not Path objects: 300,000 samples are saved in a fraction of a second
    p = os.path.abspath(path)  # not realpath(): no symlink walk
    for src, root in roots.items():
        inside = _inside(p, str(root))
        if inside is not None:
            return f"{src}/{inside}"
    if base is not None:
        inside = _inside(p, str(base))
        if inside is not None:
            return inside
    return path


def _inside(path: str, folder: str) -> str | None:
    """``path`` relative to ``folder`` (``/`` separated) when it lies inside it, else None."""
    prefix = folder if folder.endswith(os.sep) else folder + os.sep
    if not path.startswith(prefix):
        return None
    rest = path[len(prefix) :]
    return rest.replace(os.sep, "/") if os.sep != "/" else rest


def _abs(path: str, base: Path | None, roots: Mapping[str, Path] | None = None) -> str:
    # string operations, not Path objects: 300,000 samples are read in a fraction of a second
    if path.startswith(SAMPLE_PREFIX) and "/" in path:
        src, _, rest = path.partition("/")
        root = (roots or {}).get(src)
        if root is not None:
            return os.path.join(root, os.path.normpath(rest))
    p = os.path.normpath(path) if path else path
    if base is None or os.path.isabs(p):
        return p
    return os.path.join(base, p)
