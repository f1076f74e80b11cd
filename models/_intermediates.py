"""What a model's intermediates are: the declaration beside ``forward_intermediates``.

Every family answers ``model.intermediate_info(image_size)`` with one :class:`Intermediate`
per key that ``forward_intermediates`` returns for an input of that (H, W), in the same
order, plus ``model.output_info(image_size)`` for the first element it returns. Callers
(``inspect``, the trainer's probes, the app's views) read these declarations; they never
guess what an entry is from its name or its rank (timm's ``feature_info`` idea).

Axes name the per-sample dimensions (the batch axis is never listed):

==================  =============================  ==========================================
kind                axes                           what it is
==================  =============================  ==========================================
feature_map         ("channel", "y", "x")          a conv layer's activation
filter              ("out", "in", "ky", "kx")      a conv layer's weights (first-layer filters)
recurrent_state     ("time", "unit")               a recurrent layer's output, one direction
gate                ("time", "unit")               a gate activation of that layer/direction
cell_state          ("time", "unit")               the LSTM cell state c_t
spatial_state       ("time", "channel", "y", "x")  a ConvRNN/ConvGRU/ConvLSTM hidden state
attention           ("token", "y", "x")            soft attention over the encoder grid
ctc_frames          ("time", "class")              per-frame class scores of a CTC head
tokens              ("token",)                     emitted token ids
logits              ("class",)                     class (and regression) outputs
token_logits        ("token", "class")             per-emitted-token vocabulary scores
==================  =============================  ==========================================

``regions`` (sequence readers) gives, per time step, the box of the input image that the
step reads, as ``(y0, x0, y1, x1)`` in input pixels (end exclusive): a row, a column
band, a tile or a strip. ``grid`` (attention) is the (gh, gw) encoder grid that the
attention axes index; cell (i, j) covers the input box ``cell_box(i, j, grid, image_size)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["KINDS", "AXES", "Intermediate", "cell_box"]

#: kind -> its per-sample axes
AXES: dict[str, tuple[str, ...]] = {
    "feature_map": ("channel", "y", "x"),
    "filter": ("out", "in", "ky", "kx"),
    "recurrent_state": ("time", "unit"),
    "gate": ("time", "unit"),
    "cell_state": ("time", "unit"),
    "spatial_state": ("time", "channel", "y", "x"),
    "attention": ("token", "y", "x"),
    "ctc_frames": ("time", "class"),
    "tokens": ("token",),
    "logits": ("class",),
    "token_logits": ("token", "class"),
}
KINDS = tuple(AXES)

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Intermediate:
    """One entry of ``forward_intermediates`` (or its output), described.

    Attributes:
        kind: one of :data:`KINDS`.
        layer: the ``named_modules()`` name of the module that produced it.
        title: short human text for axes and pickers ("LSTM layer 1, forward: forget gate").
        direction: ``"fwd"`` / ``"bwd"`` for recurrent entries, else None.
        gate: the gate's readable name (``"input gate"``, ``"forget gate"``, ``"candidate"``,
            ``"cell state"``, ``"update gate"``, ...) for kinds gate / cell_state, and for the
            spatial_state entries that are a convolutional cell's gate or cell state; else None.
        regions: per time step, the input box ``(y0, x0, y1, x1)`` it reads (sequence readers).
        grid: (gh, gw) of the encoder grid (attention).
        range: the value range when the activation bounds it ((0, 1) for sigmoid gates and
            attention, (-1, 1) for tanh), else None.
    """

    kind: str
    layer: str
    title: str
    direction: str | None = None
    gate: str | None = None
    regions: tuple[Box, ...] | None = None
    grid: tuple[int, int] | None = None
    range: tuple[float, float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in AXES:
            raise ValueError(f"unknown intermediate kind '{self.kind}'; valid: {', '.join(KINDS)}")

    @property
    def axes(self) -> tuple[str, ...]:
        return AXES[self.kind]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (what crosses into the UI and into probe files)."""
        d: dict[str, Any] = {"kind": self.kind, "axes": list(self.axes), "layer": self.layer, "title": self.title}
        for key in ("direction", "gate", "grid", "range"):
            v = getattr(self, key)
            if v is not None:
                d[key] = list(v) if isinstance(v, tuple) else v
        if self.regions is not None:
            d["regions"] = [list(b) for b in self.regions]
        if self.extra:
            d["extra"] = dict(self.extra)
        return d


def cell_box(i: int, j: int, grid: tuple[int, int], image_size: tuple[int, int]) -> Box:
    """The input box (y0, x0, y1, x1) that cell (i, j) of a (gh, gw) grid covers."""
    (gh, gw), (h, w) = grid, image_size
    return (i * h // gh, j * w // gw, (i + 1) * h // gh, (j + 1) * w // gw)
