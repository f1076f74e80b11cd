"""Tasks by name. The trainer asks for one; adding a task adds an entry here."""

from __future__ import annotations

from explorer.data import Source

from ..config import ConfigError
from .base import Evaluation, PreparedData, Split, Task
from .caption import CaptionTask
from .classify import ClassifyTask
from .sequence import SequenceTask

__all__ = ["Evaluation", "PreparedData", "Split", "Task", "get_task", "detect_task", "TASK_NAMES"]

_TASKS: dict[str, type[Task]] = {t.name: t for t in (ClassifyTask, SequenceTask, CaptionTask)}
TASK_NAMES = tuple(_TASKS)


def get_task(name: str, extra: dict | None = None) -> Task:
    """A fresh task object for one run; ``extra`` is a saved run's ``task_extra``."""
    try:
        return _TASKS[name](extra)
    except KeyError:
        raise ConfigError("data.task", f"task '{name}' is not available; available: {', '.join(TASK_NAMES)}") from None


def detect_task(source: Source, requested: str) -> str:
    """The requested task, or the one the data layout implies (``auto``)."""
    if requested != "auto":
        return requested
    return source.task or "classify"
