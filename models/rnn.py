"""Family ``rnn``: a recurrent net that reads the image row by row.

An image (B, C, H, W) becomes a sequence of H steps, step t holding row t of every
channel (C*W numbers). A stack of SimpleRNN/LSTM/GRU layers reads it top to bottom
(and bottom to top when bidirectional); the head classifies the pooled states.

The stack is a :class:`RecurrentStack`: an ``nn.ModuleList`` of *single-layer*
``nn.RNN``/``nn.LSTM``/``nn.GRU`` modules (``rnn.0``, ``rnn.1``, ...). It computes
exactly what one multi-layer module with the same weights computes, but every
layer's output, per direction, stays reachable for the explorer's probes, and each
layer is a plain torch module whose weights can be used to recompute gates.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ._base import ACTIVATIONS, INITS, ExplorerModel, init_weights, make_activation
from ._registry import register_model
from ._spec import ParamError, Params, param

__all__ = ["CELLS", "POOLS", "RNNParams", "RecurrentStack", "RowRNN", "pool_sequence"]

CELLS = ("rnn", "lstm", "gru")
POOLS = ("last", "mean", "max")

_CELL_MODULES: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


# -- shared recurrent pieces (used by crnn too) -------------------------------------------------


class RecurrentStack(nn.ModuleList):
    """Stacked single-layer recurrent modules, equal to one ``num_layers`` module.

    Layer ``i`` reads layer ``i-1``'s output (both directions concatenated, like
    PyTorch's multi-layer modules); ``dropout`` is applied between layers only, in
    training mode, as ``nn.GRU(dropout=...)`` does.

    Args:
        cell: ``"rnn"`` (SimpleRNN, tanh), ``"lstm"`` or ``"gru"``.
        input_size: features per time step.
        hidden_size: units per direction.
        num_layers: stacked layers.
        bidirectional: add a backward-reading direction to every layer.
        dropout: dropout probability between layers.
    """

    def __init__(
        self, cell: str, input_size: int, hidden_size: int, num_layers: int, bidirectional: bool, dropout: float = 0.0
    ) -> None:
        cls = _CELL_MODULES[cell]
        dirs = 2 if bidirectional else 1
        super().__init__(
            cls(
                input_size if i == 0 else hidden_size * dirs, hidden_size, batch_first=True, bidirectional=bidirectional
            )
            for i in range(num_layers)
        )
        self.cell = cell
        self.hidden_size = hidden_size
        self.bidirectional = bidirectional
        self.dropout = dropout  # a float, not an nn.Dropout: a child module would join the list

    @property
    def output_size(self) -> int:
        return self.hidden_size * (2 if self.bidirectional else 1)

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Run the stack on ``x`` (B, T, F).

        Returns:
            The last layer's output (B, T, D*H) and the list of every layer's output
            (before inter-layer dropout); direction ``fwd`` is ``[..., :H]``, ``bwd`` ``[..., H:]``.
        """
        outputs: list[Tensor] = []
        for i, layer in enumerate(self):
            if i > 0 and self.dropout > 0:
                x = F.dropout(x, self.dropout, self.training)
            x, _ = layer(x)  # (B, T, D*H)
            outputs.append(x)
        return x, outputs

    def split_directions(self, out: Tensor) -> dict[str, Tensor]:
        """``{"fwd": (B, T, H)[, "bwd": (B, T, H)]}`` of one layer's output."""
        h = self.hidden_size
        if not self.bidirectional:
            return {"fwd": out}
        return {"fwd": out[..., :h], "bwd": out[..., h:]}


def pool_sequence(out: Tensor, pool: str, hidden_size: int, bidirectional: bool) -> Tensor:
    """Reduce a recurrent output (B, T, D*H) over time to (B, D*H).

    ``last`` takes each direction's final state: step T-1 of the forward direction
    and step 0 of the backward one (it has read the whole sequence by then), i.e.
    the last layer's ``h_n``. ``mean`` / ``max`` reduce over all steps.
    """
    if pool == "mean":
        return out.mean(dim=1)
    if pool == "max":
        return out.amax(dim=1)
    if not bidirectional:
        return out[:, -1]
    return torch.cat([out[:, -1, :hidden_size], out[:, 0, hidden_size:]], dim=-1)  # (B, 2H)


# -- the row-reading model ----------------------------------------------------------------------


@dataclass
class RNNParams(Params):
    cell: str = param(
        "lstm",
        help="Recurrent cell: 'rnn' = simple tanh RNN (forgets quickly), 'lstm' = long short-term memory, "
        "'gru' = gated recurrent unit (LSTM-like, lighter).",
        choices=CELLS,
    )
    hidden_size: int = param(128, help="Units of each recurrent layer (per direction).", min=1, max=2048)
    num_layers: int = param(1, help="Stacked recurrent layers; each reads the one below.", min=1, max=8)
    bidirectional: bool = param(
        True, help="Read the rows top to bottom and bottom to top; doubles the state size and the cost."
    )
    dropout: float = param(
        0.0, help="Dropout between stacked recurrent layers (needs num_layers >= 2).", min=0.0, max=0.9
    )
    pool: str = param(
        "last",
        help="How the row states become one vector: 'last' = final state of each direction, "
        "'mean' / 'max' = average / maximum over all rows.",
        choices=POOLS,
    )
    proj: int = param(
        0,
        help="Size of a dense layer applied to each row before the recurrent layers; 0 = feed rows directly.",
        min=0,
        max=2048,
    )
    activation: str = param(
        "relu", help="Non-linearity of the row projection (used when proj > 0).", choices=ACTIVATIONS
    )
    head_dropout: float = param(0.0, help="Dropout right before the classifier layer.", min=0.0, max=0.9)
    init: str = param(
        "default",
        help="Weight initialisation: 'default' = PyTorch's, 'xavier' = Glorot uniform, 'he' = Kaiming normal.",
        choices=INITS,
    )

    def check(self, *, in_channels: int, image_size: tuple[int, int | None]) -> None:
        if image_size[1] is None:
            raise ParamError("image_size", "rnn reads rows of a fixed width; give the image width")
        if self.dropout > 0 and self.num_layers < 2:
            raise ParamError(
                "dropout",
                f"{self.dropout} has no effect with num_layers=1 (it acts between recurrent layers); "
                "set num_layers >= 2 or dropout=0",
            )


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
        self.rnn = RecurrentStack(p.cell, n_in, p.hidden_size, p.num_layers, p.bidirectional, p.dropout)
        head: list[nn.Module] = []
        if p.head_dropout > 0:
            head.append(nn.Dropout(p.head_dropout))
        head.append(nn.Linear(self.rnn.output_size, num_outputs))
        self.head = nn.Sequential(*head)
        init_weights(self, p.init)

    def _rows(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        seq = x.permute(0, 2, 1, 3).reshape(b, h, c * w)  # (B, T=H, C*W)
        if self.proj is not None:
            seq = self.proj(seq)  # (B, T, P)
        return seq

    def _classify(self, out: Tensor) -> Tensor:
        p = self.params
        pooled = pool_sequence(out, p.pool, p.hidden_size, p.bidirectional)  # (B, D*H)
        return self.head(pooled)  # (B, num_outputs)

    def forward(self, x: Tensor) -> Tensor:
        seq = self._rows(x)  # (B, T, F)
        out, _ = self.rnn(seq)  # (B, T, D*H)
        return self._classify(out)

    def forward_intermediates(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        seq = self._rows(x)  # (B, T, F)
        out, layers = self.rnn(seq)
        feats: dict[str, Tensor] = {}
        for i, layer_out in enumerate(layers):
            for d, t in self.rnn.split_directions(layer_out).items():
                feats[f"rnn.{i}:{d}"] = t  # (B, T, H)
        return self._classify(out), feats


@register_model(
    "rnn",
    params=RNNParams,
    description="SimpleRNN / LSTM / GRU layers, stacked, optionally bidirectional, reading the image row by row.",
    tasks=("classify",),
)
def _build_rnn(p: RNNParams, *, in_channels: int, num_outputs: int, image_size: tuple[int, int | None]) -> RowRNN:
    return RowRNN(p, in_channels=in_channels, num_outputs=num_outputs, image_size=image_size)
