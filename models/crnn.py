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
from typing import ClassVar

import torch
from torch import Tensor, nn

from ._base import ACTIVATIONS, ExplorerModel, head_dropout_param, init_param, init_weights, make_activation
from ._intermediates import Box, Intermediate
from ._registry import register_model
from ._seqhead import Reading, RecurrentParams, linear_head, pooled_logits, recurrent_stack
from ._spec import ParamError, Params, param

__all__ = ["CRNN", "CRNNParams", "CRNNBlock", "HEADS"]

HEADS = ("classify", "ctc")


@dataclass
class _ConvStages(Params):
    """crnn's conv stages: the fields listed before the recurrent block."""

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


@dataclass
class CRNNParams(RecurrentParams, _ConvStages):
    """Conv stages (channels, width_pools, activation), the recurrent block (:class:`RecurrentParams`), head."""

    reading: ClassVar[Reading] = Reading(
        "column",
        "columns",
        "Read the columns left to right and right to left",
        pool_scope=" (head=classify)",
        pool_note=" The ctc head keeps every column.",
    )

    head: str = param(
        "classify",
        help="'classify' = one label per image from the pooled column states; 'ctc' = one prediction per "
        "column (frame) for reading text with CTC (the sequence task sets it).",
        choices=HEADS,
    )
    head_dropout: float = head_dropout_param(layer="output layer")
    init: str = init_param()

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
        super().check(in_channels=in_channels, image_size=image_size)


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
        self.rnn = recurrent_stack(p, prev * feat_h)
        self.head = linear_head(self.rnn.output_size, num_outputs, p.head_dropout)
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
        if self.params.head == "ctc":
            return self.head(out)  # (B, T, num_outputs): per-frame logits, class 0 = CTC blank
        return pooled_logits(self.head, out, self.params, lengths)  # (B, num_outputs)

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

    # -- what the intermediates are -----------------------------------------------------------
    def receptive_field(self) -> tuple[int, int, int]:
        """Width-wise geometry of a feature column: (stride, receptive-field width, first start).

        Column j sees input columns ``[start + j * stride, start + j * stride + width)`` (zero
        padding where that leaves the image); walked through every conv and pool of ``cnn``.
        """
        jump, width, start = 1, 1, 0
        for m in self.cnn.modules():
            if isinstance(m, (nn.Conv2d, nn.MaxPool2d)):
                k, st, pad, dil = (_pair(getattr(m, a))[1] for a in ("kernel_size", "stride", "padding", "dilation"))
                start -= pad * jump
                width += dil * (k - 1) * jump
                jump *= st
        return jump, width, start

    def regions(self, image_size: tuple[int, int]) -> tuple[Box, ...]:
        """Per frame j, the band of input columns it stands for: ``stride`` px wide, centred on
        the frame's receptive field, full height.

        The bands tile the image left to right without overlap (the last few columns of a width
        that is not a multiple of the stride belong to no band: the pooling floors them away).
        The receptive field itself is wider (:meth:`receptive_field`); we show the centre band
        because it is where a column's evidence concentrates and because neighbouring frames'
        bands do not overlap, so a frame's highlight reads as "this frame looks here".
        """
        h, w = image_size
        stride, width, start = self.receptive_field()
        shift = start + (width - stride) // 2  # the band's offset from j * stride (0 for this stack)
        frames = int(self.output_lengths(torch.tensor([w]))[0])
        return tuple(
            (0, min(max(j * stride + shift, 0), w), h, min(max((j + 1) * stride + shift, 0), w)) for j in range(frames)
        )

    def intermediate_info(self, image_size: tuple[int, int], *, gates: bool = True) -> dict[str, Intermediate]:
        """``cnn.N`` feature maps, then the recurrent states and gates, per frame reading :meth:`regions`."""
        info = {
            f"cnn.{i}": Intermediate("feature_map", f"cnn.{i}", f"conv stage {i + 1}") for i in range(len(self.cnn))
        }
        info.update(self.rnn.intermediate_info(self.regions(image_size), gates=gates))
        return info

    def output_info(self, image_size: tuple[int, int]) -> Intermediate:
        if self.params.head == "ctc":
            stride, width, _ = self.receptive_field()
            return Intermediate(
                "ctc_frames",
                "head",
                "CTC frame scores (class 0 = blank)",
                regions=self.regions(image_size),
                extra={"stride": stride, "receptive_field": width},
            )
        return Intermediate("logits", "head", "class scores")


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
