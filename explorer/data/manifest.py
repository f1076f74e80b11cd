"""CSV manifests: a header row naming ``path`` and a target column, then one row per sample.

The target column decides the layout (:mod:`explorer.data.layouts`): which task the source implies,
whether an image may have several rows, and how a cell becomes a target. Numeric extra columns
become :attr:`~explorer.data.records.Sample.extras`. Bad rows are problems, never exceptions.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from . import layouts
from .errors import DataError
from .layouts import TargetLayout
from .records import Problem, Sample, Source
from .walk import file_problem

__all__ = ["MANIFEST_NAME", "MANIFEST_NAMES", "read_manifest"]

#: The manifest file that turns a folder into a manifest source.
MANIFEST_NAME = "labels.csv"

#: Manifest names looked for in a data folder, in this order (captions.csv is the caption layout).
MANIFEST_NAMES: tuple[str, ...] = (MANIFEST_NAME, "captions.csv")

_Row = tuple[int, list[str]]  # (file line number, cells)


@dataclass(frozen=True)
class _Header:
    """A manifest's header: its columns (lower case), its layout and where the wanted cells are."""

    columns: list[str]
    layout: TargetLayout
    path_i: int
    target_i: int
    extras: list[int]


def read_manifest(csv_path: str | Path) -> Source:
    """Reads a CSV manifest: a header row, then one row per sample.

    The header must have a ``path`` column and a target column (``label``, ``text`` or ``caption``;
    names are case-insensitive). Paths are relative to the manifest's folder (absolute paths are
    allowed). Extra columns whose non-empty values all parse as finite numbers become
    :attr:`Sample.extras`; other extra columns are ignored. The file is UTF-8, with or without BOM.

    Bad rows do not raise: a wrong column count, an empty path or target, a missing file, a directory
    or a repeated path (unless the layout allows several rows per image, as captions do) become problems whose reason
    starts with ``"<manifest name> line N: "``.

    Args:
        csv_path: The manifest file.

    Returns:
        Samples in file order, and the problems.

    Raises:
        DataError: If the file cannot be read or decoded, has no valid header, or has no rows at all.
    """
    csv_path = Path(csv_path).expanduser()
    rows = _read_rows(csv_path)
    header = _read_header(csv_path, rows)
    samples: list[Sample] = []
    problems: list[Problem] = []
    first_line: dict[Path, int] = {}
    for line, row in rows[1:]:
        item = _row_sample(csv_path, header, line, row)
        if isinstance(item, Problem):
            problems.append(item)
        elif header.layout.repeats or item.path not in first_line:
            first_line.setdefault(item.path, line)
            samples.append(item)
        else:
            problems.append(
                Problem(str(item.path), f"{csv_path.name} line {line}: duplicate of line {first_line[item.path]}")
            )
    return Source(samples, problems, header.layout.task, str(csv_path))


def _read_rows(csv_path: Path) -> list[_Row]:
    """The manifest's non-blank rows; any failure to read it is a :class:`DataError`."""
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
    return rows


def _read_header(csv_path: Path, rows: list[_Row]) -> _Header:
    """The header of ``rows[0]``; a :class:`DataError` when it names no path or target, or no rows follow."""
    _, header = rows[0]
    columns = [c.strip().lower() for c in header]
    layout = layouts.find_layout(columns)
    if "path" not in columns or layout is None:
        raise DataError(
            f"{csv_path}: the first row must be a header naming a 'path' column and a target column "
            f"({', '.join(known.column for known in layouts.MANIFEST_LAYOUTS)}); found: {','.join(header) or '(empty line)'}"
        )
    path_i, target_i = columns.index("path"), columns.index(layout.column)
    if len(rows) < 2:
        raise DataError(f"{csv_path}: manifest has a header but no rows")
    extras = _numeric_columns(columns, rows[1:], skip={path_i, target_i})
    return _Header(columns, layout, path_i, target_i, extras)


def _row_sample(csv_path: Path, header: _Header, line: int, row: list[str]) -> Sample | Problem:
    """One data row as a sample, or the problem that keeps it from being one (duplicates aside)."""
    where = f"{csv_path.name} line {line}"
    columns = header.columns
    if len(row) != len(columns):
        return Problem(str(csv_path), f"{where}: expected {len(columns)} columns, found {len(row)}")
    rel, target = row[header.path_i].strip(), header.layout.parse(row[header.target_i])
    if not rel:
        return Problem(str(csv_path), f"{where}: empty path")
    path = csv_path.parent / rel
    if not target:
        return Problem(str(path), f"{where}: empty {header.layout.column}")
    problem = file_problem(str(path))
    if problem is not None:
        return Problem(str(path), f"{where}: {problem}")
    extras = tuple((columns[i], _cell_value(row[i])) for i in header.extras)
    return Sample(path, target, extras)


def _parse_float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _cell_value(text: str) -> float:
    """A numeric extra column's cell; empty cells are NaN (only numeric columns get here)."""
    value = _parse_float(text.strip())
    return math.nan if value is None else value


def _numbered_rows(reader: Iterable[list[str]]) -> Iterator[_Row]:
    """Non-blank rows with the file line number each one ends on (what a user sees in an editor)."""
    for row in reader:
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        yield reader.line_num, row  # type: ignore[attr-defined]


def _numeric_columns(columns: list[str], rows: list[_Row], skip: set[int]) -> list[int]:
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
