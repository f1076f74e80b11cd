"""Which sections a probe gets: read from the model's declaration (``report.info``), by kind.

Nothing here looks at a key's name or an array's rank: a key becomes a section because of the
``kind`` it is declared with, and recurrent entries are grouped by their declared ``layer`` and
``direction``, so a layer's state, every gate and its cell state share one section (and so do a
convolutional cell's spatial state and its spatial gates).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Planned", "plan_sections", "keys_of_kind", "frames_box", "option_label", "RECURRENT_KINDS", "HEADER_KINDS"]

RECURRENT_KINDS = ("recurrent_state", "gate", "cell_state")
#: kinds drawn in the header (the model's text and outputs), not as sections of their own
HEADER_KINDS = ("tokens", "logits", "token_logits")
_VIEW_OF_KIND = {
    "feature_map": "feature_map",
    "filter": "filter",
    "recurrent_state": "recurrent",
    "gate": "recurrent",
    "cell_state": "recurrent",
    "spatial_state": "spatial_state",
    "attention": "attention",
    "ctc_frames": "ctc_frames",
    "gradcam": "gradcam",
}
_FIRST = {"attention": 0, "gradcam": 1}
_ORDER = {"recurrent_state": 0, "gate": 1, "cell_state": 2}


def _order(d: Mapping) -> int:
    if d["kind"] == "spatial_state":  # a convolutional cell: its state, then its gates as declared
        return 0 if d.get("gate") is None else 1
    return _ORDER[d["kind"]]


@dataclass(frozen=True)
class Planned:
    """One section to build: the view that draws it and the keys it draws, in order."""

    view: str
    keys: tuple[str, ...]


def plan_sections(info: Mapping[str, Mapping]) -> list[Planned]:
    """Sections in declaration order (attention first); recurrent and spatial entries grouped per
    (layer, direction)."""
    groups: dict[tuple, list[str]] = {}
    for key, d in info.items():
        view = _VIEW_OF_KIND.get(d["kind"])
        if view is None:
            continue
        grouped = view in ("recurrent", "spatial_state")
        group = (view, d.get("layer"), d.get("direction")) if grouped else (view, key)
        groups.setdefault(group, []).append(key)
    out = []
    for group, keys in groups.items():
        if group[0] in ("recurrent", "spatial_state"):  # the state first, gates as declared, the cell state last
            keys = sorted(keys, key=lambda k: _order(info[k]))
        out.append(Planned(group[0], tuple(keys)))
    # where the model looked for each word, then what Grad-CAM says it used, sit right under the
    # output; the rest as declared
    return sorted(out, key=lambda p: _FIRST.get(p.view, len(_FIRST)))


def keys_of_kind(info: Mapping[str, Mapping], kind: str) -> list[str]:
    return [k for k, d in info.items() if d["kind"] == kind]


def frames_box(info: Mapping[str, Mapping], frames: tuple[int, int], n_frames: int) -> tuple[int, ...] | None:
    """The input box (y0, x0, y1, x1) that time steps ``frames[0]`` .. ``frames[1] - 1`` of an
    ``n_frames``-step output read together: the union of their declared ``regions`` (a sequence
    reader's recurrent state with one region per output frame); None when no entry declares them."""
    f0, f1 = int(frames[0]), int(frames[1])
    for d in info.values():
        regions = d.get("regions")
        if d["kind"] in RECURRENT_KINDS and regions and len(regions) == n_frames and 0 <= f0 < f1 <= n_frames:
            boxes = regions[f0:f1]
            return (
                min(b[0] for b in boxes),
                min(b[1] for b in boxes),
                max(b[2] for b in boxes),
                max(b[3] for b in boxes),
            )
    return None


def option_label(d: Mapping) -> str:
    """Selector text of one state entry: the declared gate name ("forget gate", "candidate",
    "cell state"), else "hidden state"."""
    return str(d.get("gate") or ("cell state" if d["kind"] == "cell_state" else "hidden state"))
