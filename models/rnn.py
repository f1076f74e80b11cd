"""Family ``rnn``: a recurrent net that reads the image row by row.

An image (B, C, H, W) becomes a sequence of H steps, step t holding row t of every
channel (C*W numbers). A stack of SimpleRNN/LSTM/GRU layers reads it top to bottom
(and bottom to top when bidirectional); the head classifies the pooled states.

The stack is a :class:`RecurrentStack`: an ``nn.ModuleList`` of *single-layer*
``nn.RNN``/``nn.LSTM``/``nn.GRU`` modules (``rnn.0``, ``rnn.1``, ...). It computes
exactly what one multi-layer module with the same weights computes, but every
layer's output, per direction, stays reachable for the explorer's probes, and each
layer is a plain torch module whose weights are used to recompute its gates
(:func:`models._recurrent.recurrent_gates`).

Intermediates: ``rnn.N:fwd`` / ``rnn.N:bwd`` (B, T=H, hidden) per layer and direction,
and with ``forward_intermediates(x, gates=True)`` (the default) the gate activations
``rnn.N:D:gate_i`` ... (LSTM ``gate_i/f/g/o`` and ``cell``, GRU ``gate_r/z/n``, SimpleRNN
``preact``), each (B, T, hidden); the full table is in :mod:`models._recurrent`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor, nn

from ._base import ACTIVATIONS, ExplorerModel, head_dropout_param, init_param, init_weights, make_activation
from ._intermediates import Box, Intermediate
from ._recurrent import CELLS, POOLS, RecurrentStack, pool_sequence, recurrent_gates
from ._registry import register_model
from ._seqhead import Reading, RecurrentParams, linear_head, pooled_logits, recurrent_stack
from ._spec import ParamError, param

# RecurrentStack, pool_sequence and recurrent_gates live in models/_recurrent.py; they are
# re-exported here because this is where readers of the row reader look for them.
__all__ = ["CELLS", "POOLS", "RNNParams", "RecurrentStack", "RowRNN", "pool_sequence", "recurrent_gates"]


# -- the row-reading model ----------------------------------------------------------------------


@dataclass
class RNNParams(RecurrentParams):
    """The recurrent block (:class:`RecurrentParams`: cell ... pool), then the row projection and head."""

    reading: ClassVar[Reading] = Reading("row", "rows", "Read the rows top to bottom and bottom to top")

    proj: int = param(
        0,
        help="Size of a dense layer applied to each row before the recurrent layers; 0 = feed rows directly.",
        min=0,
        max=2048,
    )
    activation: str = param(
        "relu", help="Non-linearity of the row projection (used when proj > 0).", choices=ACTIVATIONS
    )
    head_dropout: float = head_dropout_param()
    init: str = init_param()

    def check(self, *, in_channels: int, image_size: tuple[int, int | None]) -> None:
        if image_size[1] is None:
            raise ParamError("image_size", "rnn reads rows of a fixed width; give the image width")
        super().check(in_channels=in_channels, image_size=image_size)


class RowRNN(ExplorerModel):
    """Rows as time steps: [``proj``] -> ``rnn.0`` ... ``rnn.N`` -> pool -> ``head``."""

    def __init__(self, p: RNNParams, *, in_channels: int, num_outputs: int, image_size: tuple[int, int | None]) -> None:
        super().__init__()
        self.params = p
        width = image_size[1]
        assert width is not None  # check() refuses variable width
        n_in = in_channels * width
        self.proj: nn.Module | None = None
        if p.proj > 0:
            self.proj = nn.Sequential(nn.Linear(n_in, p.proj), make_activation(p.activation))
            n_in = p.proj
        self.rnn = recurrent_stack(p, n_in)
        self.head = linear_head(self.rnn.output_size, num_outputs, p.head_dropout)
        init_weights(self, p.init)

    def _rows(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        seq = x.permute(0, 2, 1, 3).reshape(b, h, c * w)  # (B, T=H, C*W)
        if self.proj is not None:
            seq = self.proj(seq)  # (B, T, P)
        return seq

    def forward(self, x: Tensor) -> Tensor:
        seq = self._rows(x)  # (B, T, F)
        out, _ = self.rnn(seq)  # (B, T, D*H)
        return pooled_logits(self.head, out, self.params)  # (B, num_outputs)

    def forward_intermediates(self, x: Tensor, *, gates: bool = True) -> tuple[Tensor, dict[str, Tensor]]:
        """Output plus ``rnn.N:fwd``/``:bwd`` states (B, T=H, hidden) and, with ``gates``,
        the gate activations ``rnn.N:D:gate_*`` (names in :mod:`models._recurrent`)."""
        seq = self._rows(x)  # (B, T, F)
        out, feats = self.rnn.forward_intermediates(seq, gates=gates)  # (B, T, D*H)
        return pooled_logits(self.head, out, self.params), feats

    def regions(self, image_size: tuple[int, int]) -> tuple[Box, ...]:
        """Step t reads row t (all channels, the whole width)."""
        h, w = image_size
        return tuple((t, 0, t + 1, w) for t in range(h))

    def intermediate_info(self, image_size: tuple[int, int], *, gates: bool = True) -> dict[str, Intermediate]:
        return self.rnn.intermediate_info(self.regions(image_size), gates=gates)

    def output_info(self, image_size: tuple[int, int]) -> Intermediate:
        return Intermediate("logits", "head", "class scores")


@register_model(
    "rnn",
    params=RNNParams,
    description="SimpleRNN / LSTM / GRU layers, stacked, optionally bidirectional, reading the image row by row.",
    tasks=("classify",),
)
def _build_rnn(p: RNNParams, *, in_channels: int, num_outputs: int, image_size: tuple[int, int | None]) -> RowRNN:
    return RowRNN(p, in_channels=in_channels, num_outputs=num_outputs, image_size=image_size)
