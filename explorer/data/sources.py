"""Where samples come from: class folders, manifest files, dropped files and built-in samples.

A *source* is only a list of ``(path, target)`` samples plus the problems found while listing
them. Nothing here decodes pixels: every file is decoded exactly once, later, by
:mod:`explorer.data.loading`, which reports the files that turn out to be unusable.

Supported layouts (``DATA`` on the command line):

* **class per folder**: ``root/<class>/**/<image>``; every immediate sub-folder is a class.
* **manifest**: ``root/labels.csv`` (or any ``.csv`` given directly) with a header row. The first
  column is ``path`` (relative to the manifest), the second the target: ``label`` (task
  ``classify``), ``text`` (``sequence``) or ``caption`` (``caption``, several rows per image allowed).
  Further columns whose values are all numbers become :attr:`Sample.extras`.
* **dropped files**: explicit files and folders, all given one label.
* ``sample:NAME``: a built-in data set generated on first use (:mod:`explorer.data.samples`).
"""

from __future__ import annotations

import csv
import math
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .decode import IMAGE_EXTENSIONS
from .errors import DataError
from .samples import SAMPLE_PREFIX, materialize_sample

__all__ = [
    "MANIFEST_NAME",
    "MANIFEST_NAMES",
    "COCO_CAPTIONS_NAME",
    "read_coco_captions",
    "TARGET_COLUMNS",
    "DataError",
    "Problem",
    "Sample",
    "Source",
    "from_files",
    "open_source",
    "read_manifest",
    "scan_folder",
]

#: The manifest file that turns a folder into a manifest source.
MANIFEST_NAME = "labels.csv"

#: Manifest names looked for in a data folder, in this order (captions.csv is the caption layout).
MANIFEST_NAMES: tuple[str, ...] = (MANIFEST_NAME, "captions.csv")

#: Target column name -> task. The first one present in the header wins.
TARGET_COLUMNS: dict[str, str] = {"label": "classify", "text": "sequence", "caption": "caption"}

_LAYOUT_HELP = (
    "Expected either one sub-folder per class (root/cat/1.png, root/dog/2.jpg, ...) "
    f"or a {MANIFEST_NAME} file in the folder with a header row 'path,label' and paths relative to it."
)


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
        task: ``"classify"``, ``"sequence"`` or ``"caption"``, as implied by the layout.
        origin: Where the samples came from, for messages and run configs.
    """

    samples: list[Sample]
    problems: list[Problem] = field(default_factory=list)
    task: str = "classify"
    origin: str = ""

    @property
    def classes(self) -> list[str]:
        """Sorted unique targets."""
        return sorted({s.target for s in self.samples})


# --------------------------------------------------------------------------------------------------
# Walking folders
# --------------------------------------------------------------------------------------------------


def _is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _file_problem(path: str) -> str | None:
    """Why an image-named path cannot be a sample without decoding it, or None if it looks usable."""
    try:
        st = os.stat(path)
    except OSError as exc:
        if os.path.islink(path):
            return "broken symbolic link"
        if isinstance(exc, FileNotFoundError):
            return "file not found"
        return f"cannot read file: {exc.strerror or exc}"
    if stat.S_ISDIR(st.st_mode):
        return "is a directory"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    return None


def _walk_images(folder: Path) -> Iterator[tuple[Path, str | None]]:
    """Yields ``(path, problem)`` for every image-named entry below ``folder``, sorted, hidden ones skipped.

    Sub-folders are entered unless they are hidden or themselves named like an image (those are
    reported, not searched: a folder called ``x.png`` is almost certainly a mistake). Symbolic links
    to folders are not followed, which rules out cycles. A folder that cannot be listed is reported
    as a problem rather than silently contributing nothing.
    """
    errors: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(folder, onerror=errors.append, followlinks=False):
        entries = sorted(n for n in dirnames + filenames if not n.startswith("."))
        dirnames[:] = [d for d in sorted(dirnames) if not d.startswith(".") and not _is_image_name(d)]
        for name in entries:
            if not _is_image_name(name):
                continue
            path = os.path.join(dirpath, name)
            yield Path(path), _file_problem(path)
    for exc in errors:
        yield Path(exc.filename or folder), f"cannot read folder: {exc.strerror or exc}"


def _sorted_walk(folder: Path) -> list[tuple[Path, str | None]]:
    # os.walk yields a folder before its sub-folders; sort the whole list so the order depends on
    # paths only (a/b.png before a/c/d.png before a/e.png would otherwise depend on the walk).
    return sorted(_walk_images(folder), key=lambda item: item[0].parts)


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
    class_dirs = [e for e in entries if not e.name.startswith(".") and e.is_dir() and not _is_image_name(e.name)]
    loose = [e for e in entries if not e.name.startswith(".") and _is_image_name(e.name)]

    samples: list[Sample] = []
    problems: list[Problem] = []
    for entry in loose:  # image-named directories at the top level are mistakes worth reporting
        if entry.is_dir():
            problems.append(Problem(entry.path, "is a directory"))
    for entry in class_dirs:
        for path, problem in _sorted_walk(Path(entry.path)):
            if problem is None:
                samples.append(Sample(path, entry.name))
            else:
                problems.append(Problem(str(path), problem))

    if not samples and not problems:
        if loose:
            raise DataError(
                f"{root}: found {len(loose)} image(s) directly in the folder but no class sub-folders. {_LAYOUT_HELP}"
            )
        if class_dirs:
            raise DataError(f"{root}: no image files found in its sub-folders. {_LAYOUT_HELP}")
        raise DataError(f"{root}: folder is empty. {_LAYOUT_HELP}")
    return Source(samples, problems, "classify", str(root))


# --------------------------------------------------------------------------------------------------
# Manifests
# --------------------------------------------------------------------------------------------------


def _parse_float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def read_manifest(csv_path: str | Path) -> Source:
    """Reads a CSV manifest: a header row, then one row per sample.

    The header must have a ``path`` column and a target column (``label``, ``text`` or ``caption``;
    names are case-insensitive). Paths are relative to the manifest's folder (absolute paths are
    allowed). Extra columns whose non-empty values all parse as finite numbers become
    :attr:`Sample.extras`; other extra columns are ignored. The file is UTF-8, with or without BOM.

    Bad rows do not raise: a wrong column count, an empty path or target, a missing file, a directory
    or a repeated path (except for captions, where repeats are normal) become problems whose reason
    starts with ``"<manifest name> line N: "``.

    Args:
        csv_path: The manifest file.

    Returns:
        Samples in file order, and the problems.

    Raises:
        DataError: If the file cannot be read or decoded, has no valid header, or has no rows at all.
    """
    csv_path = Path(csv_path).expanduser()
    name = csv_path.name
    try:
        with open(csv_path, encoding="utf-8-sig", newline="") as f:
            rows = list(_numbered_rows(csv.reader(f)))
    except FileNotFoundError as exc:
        raise DataError(f"{csv_path}: manifest file does not exist") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{csv_path}: not a UTF-8 text file ({exc.reason} at byte {exc.start})") from exc
    except (OSError, csv.Error) as exc:
        raise DataError(f"{csv_path}: cannot read manifest: {getattr(exc, 'strerror', None) or exc}") from exc

    if not rows:
        raise DataError(f"{csv_path}: manifest is empty; expected a header row 'path,label' and one row per image")
    _, header = rows[0]
    columns = [c.strip().lower() for c in header]
    target_col = next((c for c in TARGET_COLUMNS if c in columns), None)
    if "path" not in columns or target_col is None:
        raise DataError(
            f"{csv_path}: the first row must be a header naming a 'path' column and a target column "
            f"({', '.join(TARGET_COLUMNS)}); found: {','.join(header) or '(empty line)'}"
        )
    task = TARGET_COLUMNS[target_col]
    path_i, target_i = columns.index("path"), columns.index(target_col)
    data_rows = rows[1:]
    if not data_rows:
        raise DataError(f"{csv_path}: manifest has a header but no rows")

    extra_cols = _numeric_columns(columns, data_rows, skip={path_i, target_i})
    base = csv_path.parent
    samples: list[Sample] = []
    problems: list[Problem] = []
    first_line: dict[Path, int] = {}
    for line, row in data_rows:
        where = f"{name} line {line}"
        if len(row) != len(columns):
            problems.append(Problem(str(csv_path), f"{where}: expected {len(columns)} columns, found {len(row)}"))
            continue
        rel, target = row[path_i].strip(), row[target_i].strip()
        if not rel:
            problems.append(Problem(str(csv_path), f"{where}: empty path"))
            continue
        path = base / rel
        if not target:
            problems.append(Problem(str(path), f"{where}: empty {target_col}"))
            continue
        problem = _file_problem(str(path))
        if problem is not None:
            problems.append(Problem(str(path), f"{where}: {problem}"))
            continue
        if task != "caption":
            if path in first_line:
                problems.append(Problem(str(path), f"{where}: duplicate of line {first_line[path]}"))
                continue
            first_line[path] = line
        extras = tuple((columns[i], _cell_value(row[i])) for i in extra_cols)
        samples.append(Sample(path, target, extras))
    return Source(samples, problems, task, str(csv_path))


def _cell_value(text: str) -> float:
    """A numeric extra column's cell; empty cells are NaN (only numeric columns get here)."""
    value = _parse_float(text.strip())
    return math.nan if value is None else value


def _numbered_rows(reader: Iterable[list[str]]) -> Iterator[tuple[int, list[str]]]:
    """Non-blank rows with the file line number each one ends on (what a user sees in an editor)."""
    for row in reader:
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        yield reader.line_num, row  # type: ignore[attr-defined]


def _numeric_columns(columns: list[str], rows: list[tuple[int, list[str]]], skip: set[int]) -> list[int]:
    """Indices of extra columns whose non-empty cells (in well-formed rows) are all finite numbers."""
    numeric = []
    for i, col in enumerate(columns):
        if i in skip or not col:
            continue
        cells = [row[i].strip() for _, row in rows if len(row) == len(columns)]
        filled = [c for c in cells if c]
        if filled and all(_parse_float(c) is not None for c in filled):
            numeric.append(i)
    return numeric


# --------------------------------------------------------------------------------------------------
# Dropped files and the front door
# --------------------------------------------------------------------------------------------------


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
    samples: list[Sample] = []
    problems: list[Problem] = []
    seen: set[Path] = set()

    def add(path: Path, problem: str | None) -> None:
        if path in seen:
            return
        seen.add(path)
        if problem is None:
            samples.append(Sample(path, label))
        else:
            problems.append(Problem(str(path), problem))

    for path in given:
        if path.is_dir():
            for found, problem in _sorted_walk(path):
                add(found, problem)
        elif not _is_image_name(path.name):
            add(path, f"not an image file type ({path.suffix or 'no suffix'})")
        else:
            add(path, _file_problem(str(path)))
    if not samples and not problems:
        raise DataError("no image files among the dropped files")
    origin = f"{len(given)} dropped file{'s' if len(given) != 1 else ''}"
    return Source(samples, problems, "classify", origin)


#: A folder holding this file (and no CSV manifest) is read as COCO-style captions.
COCO_CAPTIONS_NAME = "captions.json"


def read_coco_captions(json_path: str | Path) -> Source:
    """COCO-style captions: ``{"images": [{"id", "file_name"}], "annotations": [{"image_id", "caption"}]}``.

    One sample per (image, caption) pair, task ``caption``; ``file_name`` is relative to
    the JSON file (or to an ``images/`` folder beside it). Annotations naming an unknown
    image, images without a caption and missing files become problems.

    Raises:
        DataError: unreadable JSON or not the COCO layout; the message names the file.
    """
    import json

    path = Path(json_path).expanduser()
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
        images = {img["id"]: str(img["file_name"]) for img in doc["images"]}
        annotations = [(a["image_id"], str(a["caption"])) for a in doc["annotations"]]
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{path}: cannot read captions JSON: {exc}") from exc
    except (KeyError, TypeError) as exc:
        raise DataError(
            f"{path}: not COCO captions (needs images[].id/file_name and annotations[].image_id/caption): {exc}"
        ) from exc
    base = path.parent
    samples: list[Sample] = []
    problems: list[Problem] = []
    resolved: dict[object, Path | None] = {}
    for image_id, caption in annotations:
        if image_id not in images:
            problems.append(Problem(str(path), f"annotation for unknown image id {image_id!r}"))
            continue
        if image_id not in resolved:
            candidates = [base / images[image_id], base / "images" / images[image_id]]
            found = next((c for c in candidates if c.is_file()), None)
            resolved[image_id] = found
            if found is None:
                problems.append(Problem(str(candidates[0]), "file not found (named in the captions JSON)"))
        if resolved[image_id] is not None and caption.strip():
            samples.append(Sample(resolved[image_id], caption.strip()))  # type: ignore[arg-type]
    for image_id, name in images.items():
        if image_id not in resolved:  # no annotation names it
            problems.append(Problem(str(base / name), "image has no caption in the JSON"))
    return Source(samples=samples, problems=problems, task="caption", origin=str(path))


def open_source(spec: str | Path) -> Source:
    """Opens what the user typed as ``DATA``: ``sample:NAME``, a ``.csv`` manifest or a folder.

    Args:
        spec: The specification.

    Returns:
        The source; its ``origin`` is ``spec`` for built-in samples, else the path.

    Raises:
        DataError: If the spec names nothing usable; the message names the spec.
    """
    text = os.fspath(spec)
    if isinstance(spec, str) and text.startswith(SAMPLE_PREFIX):
        source = scan_folder(materialize_sample(text[len(SAMPLE_PREFIX) :]))
        source.origin = text
        return source
    path = Path(text).expanduser()
    if path.is_dir():
        return scan_folder(path)
    if path.is_file():
        if path.suffix.lower() == ".csv":
            return read_manifest(path)
        if path.suffix.lower() == ".json":
            return read_coco_captions(path)
        raise DataError(f"{text}: not a data folder, a .csv manifest, a COCO captions .json or sample:NAME")
    raise DataError(f"{text}: no such folder or file (expected a data folder, a .csv manifest or sample:NAME)")
