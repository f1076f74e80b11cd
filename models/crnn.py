"""Family ``crnn``: conv features read left to right by a recurrent stack.

After Shi, Bai & Yao, "An End-to-End Trainable Neural Network for Image-based
Sequence Recognition" (CRNN, 2015): conv blocks (``cnn.0`` ...) shrink the image,
halving the height at every stage but the width only in the first ``width_pools``
stages (the paper's (2,2), (2,2), (2,1) pattern), so many feature columns remain.
Column j of the last feature map, (C * H') numbers, is time step j of a sequence
read by a (bi)directional recurrent stack (``rnn.0`` ...); the pooled states feed
the classification ``head``.

The encoder (:meth:`CRNN.encode`, image -> per-column states) is kept apart from
the head so a per-column (CTC) head can reuse it unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from ._base import ACTIVATIONS, INITS, ExplorerModel, init_weights, make_activation
from ._registry import register_model
from ._spec import ParamError, Params, param
from .rnn import CELLS, POOLS, RecurrentStack, pool_sequence

__all__ = ["CRNN", "CRNNParams", "CRNNBlock"]


@dataclass
class CRNNParams(Params):
    channels: tuple[int, ...] = param(
        (32, 64, 128),
        help="Output channels of each conv stage (3x3 conv, batch norm, activation, pooling); one stage per value.",
        min=1,
        max=1024,
    )
    width_pools: int = param(
        2,
        help="How many of the first conv stages also halve the width; the later ones halve only the height, "
        "so the sequence read by the recurrent layers stays long.",
        min=0,
        max=8,
    )
    activation: str = param("relu", help="Non-linearity after every conv.", choices=ACTIVATIONS)
    cell: str = param(
        "lstm",
        help="Recurrent cell: 'rnn' = simple tanh RNN, 'lstm' = long short-term memory, 'gru' = gated recurrent unit.",
        choices=CELLS,
    )
    hidden_size: int = param(128, help="Units of each recurrent layer (per direction).", min=1, max=2048)
    num_layers: int = param(1, help="Stacked recurrent layers; each reads the one below.", min=1, max=8)
    bidirectional: bool = param(True, help="Read the columns left to right and right to left; doubles the state size.")
    dropout: float = param(
        0.0, help="Dropout between stacked recurrent layers (needs num_layers >= 2).", min=0.0, max=0.9
    )
    pool: str = param(
        "last",
        help="How the column states become one vector: 'last' = final state of each direction, "
        "'mean' / 'max' = average / maximum over all columns.",
        choices=POOLS,
    )
    head_dropout: float = param(0.0, help="Dropout right before the classifier layer.", min=0.0, max=0.9)
    init: str = param(
        "default",
        help="Weight initialisation: 'default' = PyTorch's, 'xavier' = Glorot uniform, 'he' = Kaiming normal.",
        choices=INITS,
    )

    def check(self, *, in_channels: int, image_size: tuple[int, int | None]) -> None:
        h, w = image_size
        stages = len(self.channels)
        if self.width_pools > stages:
            raise ParamError(
                "width_pools", f"{self.width_pools} is more than the {stages} conv stages; valid range [0, {stages}]"
            )
        if h < 2**stages:
            raise ParamError(
                "channels",
                f"{stages} conv stages halve the height {stages} times and need an image at least "
                f"{2**stages} px high, got {h}; use fewer stages",
            )
        if w is not None and w < 2**self.width_pools:
            raise ParamError(
                "width_pools",
                f"{self.width_pools} width-halving stages need an image at least {2**self.width_pools} px wide, "
                f"got {w}",
            )
        if self.dropout > 0 and self.num_layers < 2:
            raise ParamError(
                "dropout",
                f"{self.dropout} has no effect with num_layers=1 (it acts between recurrent layers); "
                "set num_layers >= 2 or dropout=0",
            )


class CRNNBlock(nn.Sequential):
    """3x3 conv -> batch norm -> activation -> max pool (2, 2) or (2, 1)."""

    def __init__(self, in_ch: int, out_ch: int, *, activation: str, halve_width: bool) -> None:
        pool = (2, 2) if halve_width else (2, 1)
        super().__init__(
            nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            make_activation(activation),
            nn.MaxPool2d(pool, pool),
        )


class CRNN(ExplorerModel):
    """``cnn.N`` conv stages -> columns as a sequence -> ``rnn.N`` -> pool -> ``head``."""

    def __init__(
        self, p: CRNNParams, *, in_channels: int, num_outputs: int, image_size: tuple[int, int | None]
    ) -> None:
        super().__init__()
        self.params = p
        blocks = []
        prev = in_channels
        for i, ch in enumerate(p.channels):
            blocks.append(CRNNBlock(prev, ch, activation=p.activation, halve_width=i < p.width_pools))
            prev = ch
        self.cnn = nn.Sequential(*blocks)
        feat_h = image_size[0] // 2 ** len(p.channels)
        self.rnn = RecurrentStack(p.cell, prev * feat_h, p.hidden_size, p.num_layers, p.bidirectional, p.dropout)
        head: list[nn.Module] = []
        if p.head_dropout > 0:
            head.append(nn.Dropout(p.head_dropout))
        head.append(nn.Linear(self.rnn.output_size, num_outputs))
        self.head = nn.Sequential(*head)
        init_weights(self, p.init)

    @staticmethod
    def columns(f: Tensor) -> Tensor:
        """Feature map (B, C, H', W') -> sequence of its columns (B, T=W', C*H')."""
        b, c, h, w = f.shape
        return f.permute(0, 3, 1, 2).reshape(b, w, c * h)

    def encode(self, x: Tensor, feats: dict[str, Tensor] | None = None) -> Tensor:
        """Image (B, C, H, W) -> per-column recurrent states (B, T, D*H_rnn).

        When ``feats`` is given, every conv stage and recurrent layer/direction is
        recorded into it under its module name.
        """
        if feats is None:
            f = self.cnn(x)  # (B, C', H', W')
            out, _ = self.rnn(self.columns(f))  # (B, T=W', D*H)
            return out
        for i, block in enumerate(self.cnn):
            x = block(x)  # (B, C_i, H_i, W_i)
            feats[f"cnn.{i}"] = x
        out, layers = self.rnn(self.columns(x))  # (B, T, D*H)
        for i, layer_out in enumerate(layers):
            for d, t in self.rnn.split_directions(layer_out).items():
                feats[f"rnn.{i}:{d}"] = t  # (B, T, H)
        return out

    def _classify(self, out: Tensor) -> Tensor:
        p = self.params
        pooled = pool_sequence(out, p.pool, p.hidden_size, p.bidirectional)  # (B, D*H)
        return self.head(pooled)  # (B, num_outputs)

    def forward(self, x: Tensor) -> Tensor:
        return self._classify(self.encode(x))

    def forward_intermediates(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        feats: dict[str, Tensor] = {}
        out = self.encode(x, feats)
        return self._classify(out), feats


@register_model(
    "crnn",
    params=CRNNParams,
    description="Conv stages whose feature columns are read left to right by a (bi)LSTM/GRU/RNN, then classified.",
    tasks=("classify",),
)
def _build_crnn(p: CRNNParams, *, in_channels: int, num_outputs: int, image_size: tuple[int, int | None]) -> CRNN:
    return CRNN(p, in_channels=in_channels, num_outputs=num_outputs, image_size=image_size)
