"""Finding image files: which names count as images, why a path cannot be a sample, sorted folder walks.

Nothing here decodes pixels; a file that looks usable is decoded later, once, by
:mod:`explorer.data.loading`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from .decode import IMAGE_EXTENSIONS, check_file
from .errors import DecodeError

__all__ = ["file_problem", "is_image_name", "sorted_walk", "walk_images"]


def is_image_name(name: str) -> bool:
    """True when the name's suffix is one of :data:`~explorer.data.decode.IMAGE_EXTENSIONS`."""
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def file_problem(path: str) -> str | None:
    """Why an image-named path cannot be a sample without decoding it, or None if it looks usable."""
    try:
        check_file(path)
    except DecodeError as exc:
        return str(exc)
    return None


def walk_images(folder: Path) -> Iterator[tuple[Path, str | None]]:
    """Yields ``(path, problem)`` for every image-named entry below ``folder``, sorted, hidden ones skipped.

    Sub-folders are entered unless they are hidden or themselves named like an image (those are
    reported, not searched: a folder called ``x.png`` is almost certainly a mistake). Symbolic links
    to folders are not followed, which rules out cycles. A folder that cannot be listed is reported
    as a problem rather than silently contributing nothing.
    """
    errors: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(folder, onerror=errors.append, followlinks=False):
        entries = sorted(n for n in dirnames + filenames if not n.startswith("."))
        dirnames[:] = [d for d in sorted(dirnames) if not d.startswith(".") and not is_image_name(d)]
        for name in entries:
            if not is_image_name(name):
                continue
            path = os.path.join(dirpath, name)
            yield Path(path), file_problem(path)
    for exc in errors:
        yield Path(exc.filename or folder), f"cannot read folder: {exc.strerror or exc}"


def sorted_walk(folder: Path) -> list[tuple[Path, str | None]]:
    """:func:`walk_images`, sorted by path parts so the order depends on the paths only."""
    # os.walk yields a folder before its sub-folders; sort the whole list so the order depends on
    # paths only (a/b.png before a/c/d.png before a/e.png would otherwise depend on the walk).
    return sorted(walk_images(folder), key=lambda item: item[0].parts)
