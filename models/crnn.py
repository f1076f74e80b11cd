"""Family ``crnn``: conv features read left to right by a recurrent stack.

After Shi, Bai & Yao, "An End-to-End Trainable Neural Network for Image-based
Sequence Recognition" (CRNN, 2015): conv blocks (``cnn.0`` ...) shrink the image,
halving the height at every stage but the width only in the first ``width_pools``
stages (the paper's (2,2), (2,2), (2,1) pattern), so many feature columns remain.
Column j of the last feature map, (C * H') numbers, is time step j of a sequence
read by a (bi)directional recurrent stack (``rnn.0`` ...). Two heads share that encoder:

* ``head="classify"``: the pooled states feed one linear layer, (B, num_outputs);
* ``head="ctc"`` (chosen by the sequence task): the same linear layer applied to
  every column's state gives per-frame logits (B, T, num_outputs), T = feature width,
  class 0 being the CTC blank. :meth:`CRNN.output_lengths` maps each image's true
  pixel width to its number of valid frames, with the exact conv/pool arithmetic.

Variable width (``image_size=(H, None)``) works with both heads; the height is fixed.

Padding. Images of a batch are right-padded to the widest one. The conv stack only
mixes padding into a valid frame within its receptive field (a few columns at the
right end; there is no global pooling over the width), but the recurrent layers read
padded frames too: harmless for the forward direction (valid frames come first and
the CTC input lengths cut the loss), while the *backward* direction of a
bidirectional layer starts in the padding and carries it into the last valid
frames. That is the usual CRNN trade-off, eased by edge padding (the engine pads
with the image's last column) and by training on batches padded the same way.
Calling ``model(x, widths)`` instead packs the sequences (``pack_padded_sequence``)
so no direction reads padding and ``pool`` counts valid frames only; ``model(x)``
(what the engine and exported graphs call) stays a plain padded computation. Use
one convention for both training and inference.

Intermediates: ``cnn.N`` (B, C, H', W') per conv stage, ``rnn.N:fwd``/``:bwd``
(B, T, hidden) per recurrent layer and direction, and with ``gates=True`` (the
default) the recomputed gates ``rnn.N:D:gate_*`` (see :mod:`models._recurrent`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ._base import ACTIVATIONS, INITS, ExplorerModel, init_weights, make_activation
from ._recurrent import CELLS, POOLS, RecurrentStack, pool_sequence
from ._registry import register_model
from ._spec import ParamError, Params, param

__all__ = ["CRNN", "CRNNParams", "CRNNBlock", "HEADS"]

HEADS = ("classify", "ctc")


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
        help="How the column states become one vector (head=classify): 'last' = final state of each "
        "direction, 'mean' / 'max' = average / maximum over all columns. The ctc head keeps every column.",
        choices=POOLS,
    )
    head: str = param(
        "classify",
        help="'classify' = one label per image from the pooled column states; 'ctc' = one prediction per "
        "column (frame) for reading text with CTC (the sequence task sets it).",
        choices=HEADS,
    )
    head_dropout: float = param(0.0, help="Dropout right before the output layer.", min=0.0, max=0.9)
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

    def output_lengths(self, widths: Tensor) -> Tensor:
        """Valid frames per image from its true pixel width (B,) -> (B,), int64.

        Follows every conv and pooling layer of ``cnn`` with PyTorch's floor rule
        ``(w + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1``; a width too
        small for the stack gives 0 frames. Frame j of a longer, right-padded image
        is then exactly frame j of the image alone, up to the conv receptive field.
        """
        w = widths.to(torch.int64)
        for m in self.cnn.modules():
            if isinstance(m, (nn.Conv2d, nn.MaxPool2d)):
                k, s, pad, dil = (_pair(getattr(m, a))[1] for a in ("kernel_size", "stride", "padding", "dilation"))
                w = torch.div(w + 2 * pad - dil * (k - 1) - 1, s, rounding_mode="floor") + 1
                w = w.clamp(min=0)
        return w

    def _lengths(self, widths: Tensor | None, padded_width: int) -> Tensor | None:
        """Valid frames for the packed path, on the CPU, clamped to [1, frames of the batch]."""
        if widths is None:
            return None
        frames = int(self.output_lengths(torch.tensor([padded_width]))[0])
        return self.output_lengths(widths.cpu()).clamp(1, frames)

    def encode(
        self,
        x: Tensor,
        feats: dict[str, Tensor] | None = None,
        *,
        lengths: Tensor | None = None,
        gates: bool = True,
    ) -> Tensor:
        """Image (B, C, H, W) -> per-column recurrent states (B, T, D*H_rnn).

        When ``feats`` is given, every conv stage and recurrent layer/direction (and,
        with ``gates``, its gates) is recorded into it under its module name.
        ``lengths`` (B,) are valid frames per image (packed recurrent reading).
        """
        if feats is None:
            f = self.cnn(x)  # (B, C', H', W')
            out, _ = self.rnn(self.columns(f), lengths)  # (B, T=W', D*H)
            return out
        for i, block in enumerate(self.cnn):
            x = block(x)  # (B, C_i, H_i, W_i)
            feats[f"cnn.{i}"] = x
        out, states = self.rnn.forward_intermediates(self.columns(x), gates=gates, lengths=lengths)  # (B, T, D*H)
        feats.update(states)
        return out

    def _head(self, out: Tensor, lengths: Tensor | None) -> Tensor:
        p = self.params
        if p.head == "ctc":
            return self.head(out)  # (B, T, num_outputs): per-frame logits, class 0 = CTC blank
        pooled = pool_sequence(out, p.pool, p.hidden_size, p.bidirectional, lengths)  # (B, D*H)
        return self.head(pooled)  # (B, num_outputs)

    def forward(self, x: Tensor, widths: Tensor | None = None) -> Tensor:
        """Logits (B, num_outputs), or (B, T, num_outputs) with ``head="ctc"``.

        ``widths`` (B,): true pixel widths of right-padded images; when given, the
        recurrent layers read only each image's valid frames (see the module notes).
        """
        lengths = self._lengths(widths, x.shape[-1])
        f = self.cnn(x)  # (B, C', H', W')
        out, _ = self.rnn(self.columns(f), lengths)  # (B, T=W', D*H)
        return self._head(out, lengths)

    def forward_intermediates(
        self, x: Tensor, widths: Tensor | None = None, *, gates: bool = True
    ) -> tuple[Tensor, dict[str, Tensor]]:
        feats: dict[str, Tensor] = {}
        lengths = self._lengths(widths, x.shape[-1])
        out = self.encode(x, feats, lengths=lengths, gates=gates)  # (B, T, D*H)
        return self._head(out, lengths), feats


def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


@register_model(
    "crnn",
    params=CRNNParams,
    description="Conv stages whose feature columns are read left to right by a (bi)LSTM/GRU/RNN; classifies "
    "the image or reads its text (CTC head).",
    tasks=("classify", "sequence"),
)
def _build_crnn(p: CRNNParams, *, in_channels: int, num_outputs: int, image_size: tuple[int, int | None]) -> CRNN:
    return CRNN(p, in_channels=in_channels, num_outputs=num_outputs, image_size=image_size)
