"""A probe's beam candidates (:attr:`~explorer.engine.events.ProbeReport.candidates`) stored as two
halves: the JSON-able fields (words, score, logp, ended, ...) as a list of dicts, and the arrays
(a candidate's attention ``alphas``, ...) as ``<prefix>.<i>.<key>`` entries of an npz. Shared by
the event log's live probe files (:mod:`.eventlog`) and the epoch snapshots (:mod:`.replay`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["split_candidates", "join_candidates"]


def split_candidates(
    candidates: Sequence[Mapping[str, Any]],
    prefix: str = "c",
    store: Callable[[np.ndarray], np.ndarray] = np.asarray,
) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """(each candidate's non-array fields, its arrays as ``{prefix}.{i}.{key}`` -> ``store(array)``)."""
    fields = [{k: v for k, v in c.items() if not isinstance(v, np.ndarray)} for c in candidates]
    arrays = {
        f"{prefix}.{i}.{k}": store(v)
        for i, c in enumerate(candidates)
        for k, v in c.items()
        if isinstance(v, np.ndarray)
    }
    return fields, arrays


def join_candidates(
    fields: Sequence[Mapping[str, Any]],
    arrays: Mapping[str, np.ndarray],
    prefix: str = "c",
    restore: Callable[[np.ndarray], np.ndarray] = np.asarray,
) -> list[dict[str, Any]]:
    """The candidates again: each one's fields with its arrays (``restore(array)``) put back."""
    out = []
    for i, c in enumerate(fields):
        head = f"{prefix}.{i}."
        out.append({**c, **{k[len(head) :]: restore(a) for k, a in arrays.items() if k.startswith(head)}})
    return out
