"""The captioner as two graphs a client without PyTorch can run: the encoder, and one decoder step.

:class:`CaptionEncoderGraph` maps an image to the annotation vectors and the decoder's initial
state; :class:`CaptionDecoderStep` emits one word. A client decodes greedily with::

    features, h, c = encoder(image)
    token = START
    for _ in range(max_length):
        logits, h, c, alpha = decoder(token, h, c, features)
        token = argmax(logits)          # PAD and START are already at -inf
        if token == END: break

which is what :func:`models._caption_decoder.greedy` computes. The attention projection
of the features is recomputed at every step (the graphs' interface stays the four tensors).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ._caption_decoder import PAD, START

if TYPE_CHECKING:
    from .captioner import Captioner

__all__ = ["CaptionEncoderGraph", "CaptionDecoderStep"]


class CaptionEncoderGraph(nn.Module):
    """image (B, C, H, W) -> features (B, N, D) (positions added), h (B, Hd), c (B, Hd)."""

    def __init__(self, model: Captioner) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x = image
        for stage in self.model.encoder:
            x = stage(x)  # (B, C_i, H_i, W_i)
        pos = self.model.position
        if pos.mode == "learned":
            # Captioner.encode resamples the table only for another grid size; a traced graph
            # would keep whichever branch its example took. Resampling to the table's own
            # size is the identity, so the graph always resamples.
            x = x + F.interpolate(pos.table, size=x.shape[-2:], mode="bilinear", align_corners=False)
        else:
            x = pos(x)  # (B, D, gh, gw)
        feats = x.flatten(2).transpose(1, 2)  # (B, N = gh * gw, D), n = row * gw + col
        h, c = self.model.decoder.init_state(feats)  # (B, Hd) each
        return feats, h, c


class CaptionDecoderStep(nn.Module):
    """token (B,) int64, h, c (B, Hd), features (B, N, D) -> logits (B, V), h_next, c_next, alpha (B, N).

    ``logits`` are the word scores with PAD and START (never emitted) at -inf, so their
    argmax is the word greedy decoding emits.
    """

    def __init__(self, model: Captioner) -> None:
        super().__init__()
        self.decoder = model.decoder
        mask = torch.zeros(model.vocab_size)
        mask[PAD] = -math.inf
        mask[START] = -math.inf
        self.register_buffer("never", mask, persistent=False)

    def forward(self, token: Tensor, h: Tensor, c: Tensor, features: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        proj = self.decoder.attention.feature_proj(features)  # (B, N, A)
        logits, alpha, _, (h_next, c_next) = self.decoder.step(token, (h, c), features, proj)
        return logits + self.never, h_next, c_next, alpha  # (B, V), (B, Hd), (B, Hd), (B, N)
