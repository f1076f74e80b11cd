"""Mutating JSON documents field by field (the fuzz tests of run folders and project files)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

#: A mutation that deletes the field instead of setting it.
DELETE = object()


def key_paths(obj: Any, depth: int, prefix: tuple = ()) -> Iterator[tuple]:
    """Every key path of ``obj`` down to ``depth`` levels (list items: the first one)."""
    if depth < 0:
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield (*prefix, k)
            yield from key_paths(v, depth - 1, (*prefix, k))
    elif isinstance(obj, list) and obj:
        yield (*prefix, 0)
        yield from key_paths(obj[0], depth - 1, (*prefix, 0))


def mutated(doc: Any, path: tuple, value: Any) -> Any:
    """A copy of ``doc`` with the field at ``path`` set to ``value`` (or deleted: :data:`DELETE`)."""
    doc = copy.deepcopy(doc)
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if value is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc
