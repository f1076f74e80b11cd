"""What listing a data location produces: samples, the problems met, and the source holding both."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .layouts import FOLDER_LAYOUT

__all__ = ["Problem", "Sample", "Source"]


@dataclass(frozen=True)
class Problem:
    """One file (or manifest line) that cannot be used, and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class Sample:
    """One image and its target.

    Attributes:
        path: The image file.
        target: Class name (``classify``), text (``sequence``) or one caption (``caption``).
        extras: ``(column, value)`` pairs from numeric manifest columns, in header order; a
            missing value is NaN so that every sample of a source has the same columns.
    """

    path: Path
    target: str
    extras: tuple[tuple[str, float], ...] = ()


@dataclass
class Source:
    """Samples listed from one place, plus the problems met while listing them.

    Attributes:
        samples: In a deterministic order (sorted by class then path, or manifest order).
        problems: Files or manifest lines that were skipped.
        task: The task name the layout implies (``layout.task`` of :mod:`~explorer.data.layouts`).
        origin: Where the samples came from, for messages and run configs.
    """

    samples: list[Sample]
    problems: list[Problem] = field(default_factory=list)
    task: str = FOLDER_LAYOUT.task
    origin: str = ""

    @property
    def classes(self) -> list[str]:
        """Sorted unique targets."""
        return sorted({s.target for s in self.samples})
