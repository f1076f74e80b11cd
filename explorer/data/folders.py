"""Folder sources: a data folder (class sub-folders, or a manifest inside it) and dropped files."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from .coco import COCO_CAPTIONS_NAME, read_coco_captions
from .errors import DataError
from .layouts import FOLDER_LAYOUT
from .manifest import MANIFEST_NAME, MANIFEST_NAMES, read_manifest
from .records import Problem, Sample, Source
from .walk import file_problem, is_image_name, sorted_walk

__all__ = ["from_files", "scan_folder"]

_LAYOUT_HELP = (
    "Expected either one sub-folder per class (root/cat/1.png, root/dog/2.jpg, ...) "
    f"or a {MANIFEST_NAME} file in the folder with a header row 'path,label' and paths relative to it."
)

_Found = Iterable[tuple[Path, str | None]]  # (path, why it cannot be a sample or None)


def scan_folder(root: str | Path) -> Source:
    """Lists the samples of a data folder.

    If ``root/labels.csv`` (or else ``root/captions.csv``) exists it is read with
    :func:`read_manifest`; otherwise every non-hidden immediate sub-folder is a class holding image
    files at any depth.

    Image-named entries that are directories, broken links or special files become problems; files
    with other suffixes are ignored. Files are not decoded here.

    Args:
        root: The data folder.

    Returns:
        The folder's samples (class order, then path order) and problems.

    Raises:
        DataError: If the folder does not exist, is not a folder, or holds no classes / images.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"{root}: folder does not exist")
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    for name in MANIFEST_NAMES:
        if (root / name).is_file():
            return read_manifest(root / name)
    if (root / COCO_CAPTIONS_NAME).is_file():
        return read_coco_captions(root / COCO_CAPTIONS_NAME)

    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        raise DataError(f"{root}: cannot list folder: {exc.strerror or exc}") from exc
    class_dirs = [e for e in entries if not e.name.startswith(".") and e.is_dir() and not is_image_name(e.name)]
    loose = [e for e in entries if not e.name.startswith(".") and is_image_name(e.name)]

    samples: list[Sample] = []
    # image-named directories at the top level are mistakes worth reporting
    problems = [Problem(entry.path, "is a directory") for entry in loose if entry.is_dir()]
    for entry in class_dirs:
        _collect(sorted_walk(Path(entry.path)), entry.name, samples, problems)

    if not samples and not problems:
        if loose:
            raise DataError(
                f"{root}: found {len(loose)} image(s) directly in the folder but no class sub-folders. {_LAYOUT_HELP}"
            )
        if class_dirs:
            raise DataError(f"{root}: no image files found in its sub-folders. {_LAYOUT_HELP}")
        raise DataError(f"{root}: folder is empty. {_LAYOUT_HELP}")
    return Source(samples, problems, FOLDER_LAYOUT.task, str(root))


def from_files(paths: Iterable[str | os.PathLike], label: str) -> Source:
    """Makes a source from explicitly chosen files and folders (e.g. dropped on the window).

    Folders are searched recursively like a class folder. Explicit files are taken as given if
    their suffix is an image suffix; otherwise they are reported, since the user asked for them.

    Args:
        paths: Files and folders, in the order given; duplicates are listed once.
        label: The target given to every sample.

    Returns:
        The samples and problems.

    Raises:
        DataError: If nothing usable or reportable was given, or ``label`` is empty.
    """
    if not label.strip():
        raise DataError("dropped files need a non-empty label")
    given = [Path(p).expanduser() for p in paths]
    found: dict[Path, str | None] = {}  # first mention wins, in the order given
    for path in given:
        if path.is_dir():
            for inner, problem in sorted_walk(path):
                found.setdefault(inner, problem)
        elif not is_image_name(path.name):
            found.setdefault(path, f"not an image file type ({path.suffix or 'no suffix'})")
        else:
            found.setdefault(path, file_problem(str(path)))
    samples: list[Sample] = []
    problems: list[Problem] = []
    _collect(found.items(), label, samples, problems)
    if not samples and not problems:
        raise DataError("no image files among the dropped files")
    origin = f"{len(given)} dropped file{'s' if len(given) != 1 else ''}"
    return Source(samples, problems, FOLDER_LAYOUT.task, origin)


def _collect(found: _Found, target: str, samples: list[Sample], problems: list[Problem]) -> None:
    """Appends each usable path to ``samples`` with ``target``, and each unusable one to ``problems``."""
    for path, problem in found:
        if problem is None:
            samples.append(Sample(path, target))
        else:
            problems.append(Problem(str(path), problem))
