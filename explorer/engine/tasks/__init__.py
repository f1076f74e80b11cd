"""Tasks by name. Adding a task adds its module, an entry here and its tests.

Everything that differs by task is answered by a :class:`Task` (see :mod:`.base`); code
outside this package asks :func:`get_task` for one and never compares task names
(``tests/test_task_ownership.py`` enforces it).
"""

from __future__ import annotations

from explorer.data import Source

from ..config import ConfigError
from .base import EVAL_BATCH, Evaluation, Example, ExportGraph, Headline, InspectRequest, PreparedData, Split, Task
from .caption import CaptionTask
from .classify import ClassifyTask
from .sequence import SequenceTask

__all__ = [
    "EVAL_BATCH",
    "Evaluation",
    "Example",
    "ExportGraph",
    "Headline",
    "InspectRequest",
    "PreparedData",
    "Split",
    "Task",
    "get_task",
    "find_task",
    "detect_task",
    "task_for_source",
    "TASK_NAMES",
    "DEFAULT_TASK",
]

_TASKS: dict[str, type[Task]] = {t.name: t for t in (ClassifyTask, SequenceTask, CaptionTask)}
#: every task this version trains, in the order pickers list them
TASK_NAMES = tuple(_TASKS)
#: the task of images that carry no text (a folder of class folders, loose images)
DEFAULT_TASK = ClassifyTask.name


def get_task(name: str, extra: dict | None = None) -> Task:
    """A fresh task object for one run; ``extra`` is a saved run's ``task_extra``.

    Raises:
        ConfigError: no task of that name.
    """
    try:
        return _TASKS[name](extra)
    except KeyError:
        raise ConfigError("data.task", f"task '{name}' is not available; available: {', '.join(TASK_NAMES)}") from None


def find_task(name: str, extra: dict | None = None) -> Task | None:
    """:func:`get_task`, or None for a name this version does not know (e.g. a project
    saved by a newer version): for code that shows such data without training it."""
    return _TASKS[name](extra) if name in _TASKS else None


def detect_task(source: Source, requested: str = "auto") -> str:
    """The requested task, or the one the data layout implies (``auto``)."""
    if requested != "auto":
        return requested
    return source.task or DEFAULT_TASK


def task_for_source(source: Source, requested: str = "auto", extra: dict | None = None) -> Task:
    """The task object for a source: :func:`detect_task` then :func:`get_task`."""
    return get_task(detect_task(source, requested), extra)
