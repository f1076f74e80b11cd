"""Manifest layouts: which target column implies which task, and how its rows are read.

The data layer knows tasks only as the names these declarations carry: a reader finds the layout
of its input here and copies ``layout.task`` into the :class:`~explorer.data.records.Source`; the
engine's task registry turns that name into a Task. Adding a target kind means adding one
:class:`TargetLayout` to :data:`MANIFEST_LAYOUTS`, not a branch in a reader.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = [
    "CAPTION",
    "COCO_LAYOUT",
    "FOLDER_LAYOUT",
    "LABEL",
    "MANIFEST_LAYOUTS",
    "TARGET_COLUMNS",
    "TEXT",
    "TargetLayout",
    "find_layout",
]


@dataclass(frozen=True)
class TargetLayout:
    """One kind of target as it is laid out on disk.

    Attributes:
        column: The manifest header naming the target column (lower case; headers are matched
            case-insensitively).
        task: The task name the layout implies (``Source.task``).
        repeats: Whether an image may have several rows (several targets). When False, a repeated
            path is reported as a duplicate and skipped.
        parse: Manifest cell -> target; an empty result means the target is missing.
    """

    column: str
    task: str
    repeats: bool = False
    parse: Callable[[str], str] = str.strip


#: One class name per image (a ``label`` column, a class sub-folder or dropped files).
LABEL = TargetLayout("label", "classify")
#: One text (a line, a digit string) per image.
TEXT = TargetLayout("text", "sequence")
#: One or more sentences per image, one row each.
CAPTION = TargetLayout("caption", "caption", repeats=True)

#: Manifest target columns in the order they are looked for: the first one present in a header wins.
MANIFEST_LAYOUTS: tuple[TargetLayout, ...] = (LABEL, TEXT, CAPTION)

#: Class sub-folders and dropped files: the folder name (or the chosen label) is the target.
FOLDER_LAYOUT = LABEL

#: COCO-style captions JSON.
COCO_LAYOUT = CAPTION

#: Target column name -> task, derived from :data:`MANIFEST_LAYOUTS` (kept for callers of the old table).
TARGET_COLUMNS: dict[str, str] = {layout.column: layout.task for layout in MANIFEST_LAYOUTS}


def find_layout(columns: Iterable[str]) -> TargetLayout | None:
    """The layout of the first :data:`MANIFEST_LAYOUTS` column among ``columns`` (lower case), or None."""
    present = set(columns)
    return next((layout for layout in MANIFEST_LAYOUTS if layout.column in present), None)
