"""Family ``captioner``: a conv encoder and an LSTM decoder with soft attention.

After Xu et al., "Show, Attend and Tell: Neural Image Caption Generation with Visual
Attention" (2015). The encoder (``encoder.0`` ... one module per stage: the project's
own conv stack or the stages of a torchvision backbone) turns the image into a grid of
``gh x gw`` feature vectors; a positional encoding (``position``) is added to every
cell so that the attention can tell *where* a cell is, not only what it shows. Cell
``p = row * gw + col`` is one annotation vector ``a_p``.

The decoder (``decoder``) is an LSTM cell. Before every word it looks at the grid
with additive (Bahdanau) attention, ``e_p = w . tanh(W_a a_p + W_h h)``,
``alpha = softmax(e)``, context ``z = beta * sum_p alpha_p a_p`` with the paper's
gating scalar ``beta = sigmoid(f(h))``; it then reads ``[embed(y_prev), z]`` and
predicts the word with the paper's deep output ``L_o(E y_prev + L_h h + L_z z)``.
Its state starts from the mean annotation vector. Training is teacher forced
(:meth:`Captioner.forward`); :meth:`Captioner.generate` decodes greedily or with a
beam and returns the attention of every emitted word. The doubly stochastic
attention penalty (weight ``attention_reg``) and gradient clipping are applied by the
training loop, which reads ``params.attention_reg``.

Token ids are fixed: ``PAD=0, START=1, END=2, UNK=3``; ``num_outputs`` is the
vocabulary size including them.

The family is read in four files: this one (the model and its registration),
:mod:`models._caption_params` (:class:`CaptionerParams`), :mod:`models._caption_encoder`
(own conv stages, torchvision bodies, 2-D positions) and :mod:`models._caption_decoder`
(attention, the decoder, greedy and beam search). The public names stay importable from here.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from ._base import ExplorerModel, init_weights
from ._caption_decoder import (
    END,
    PAD,
    START,
    UNK,
    Attention,
    Decoder,
    beam_search,
    greedy,
    init_decoder,
    normalised,
)
from ._caption_encoder import EncoderBlock, PositionalEncoding2d, backbone_stages, sinusoidal_2d
from ._caption_export import CaptionDecoderStep, CaptionEncoderGraph
from ._caption_params import ENCODERS, NOMINAL_LINE_ASPECT, POSITIONS, CaptionerParams
from ._intermediates import Intermediate
from ._recurrent import GATES, gate_info
from ._registry import register_model
from ._spec import ParamError

__all__ = [
    "PAD",
    "START",
    "END",
    "UNK",
    "ENCODERS",
    "POSITIONS",
    "Attention",
    "Captioner",
    "CaptionerParams",
    "Decoder",
    "EncoderBlock",
    "PositionalEncoding2d",
    "sinusoidal_2d",
]

# -- the model ----------------------------------------------------------------------------------


class Captioner(ExplorerModel):
    """``encoder.N`` stages -> ``position`` -> ``decoder`` (``decoder.attention``, ``decoder.lstm``, ...)."""

    def __init__(
        self, p: CaptionerParams, *, in_channels: int, num_outputs: int, image_size: tuple[int, int | None]
    ) -> None:
        super().__init__()
        self.params = p
        self.vocab_size = num_outputs
        self.weights_report: dict[str, Any] = {"loaded": 0, "skipped": [], "missing": []}
        h, w = image_size
        self.pools: tuple[int, int] | None = None  # encoder=cnn: (height_pools, width_pools) resolved
        self._grid_cache: dict[tuple[int, int], tuple[int, int]] = {}
        self.feature_dim = self._build_encoder(in_channels, image_size)
        nominal_w = w if w is not None else NOMINAL_LINE_ASPECT * h
        self.position = PositionalEncoding2d(p.pos_encoding, self.feature_dim, self.grid_size(h, nominal_w))
        self.decoder = Decoder(
            feature_dim=self.feature_dim,
            vocab_size=num_outputs,
            embed_dim=p.embed_dim,
            hidden_size=p.hidden_size,
            attention_dim=p.attention_dim,
            dropout=p.dropout,
            gate=p.gate,
        )
        init_decoder(self.decoder, p.init)
        if p.freeze_encoder:
            for prm in self.encoder.parameters():
                prm.requires_grad = False

    def _build_encoder(self, in_channels: int, image_size: tuple[int, int | None]) -> int:
        """Sets ``encoder`` (and ``pools`` / ``weights_report``); returns its output channels."""
        p = self.params
        if p.encoder == "cnn":
            self.pools = p.pools(image_size)
            hp, wp = self.pools
            stages: list[nn.Module] = []
            prev = in_channels
            for i, ch in enumerate(p.channels):
                stages.append(EncoderBlock(prev, ch, halve_height=i < hp, halve_width=i < wp))
                prev = ch
            self.encoder = nn.Sequential(*stages)
            init_weights(self.encoder, p.init)
            return prev
        stages, self.weights_report = backbone_stages(p.encoder, p.weights, p.init, in_channels, image_size)
        self.encoder = nn.Sequential(*stages)
        h, w = image_size
        return int(self._probe(in_channels, h, w if w is not None else h).shape[1])

    # -- encoder ------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> Captioner:
        super().train(mode)
        if self.params.freeze_encoder:
            self.encoder.eval()  # a frozen encoder keeps its batch-norm statistics too
        return self

    @torch.no_grad()
    def _probe(self, in_channels: int, h: int, w: int) -> Tensor:
        """The encoder's output for a blank (1, C, h, w) image, batch-norm statistics untouched."""
        was = self.encoder.training
        self.encoder.eval()
        dev = next(self.encoder.parameters()).device
        out = self.encoder(torch.zeros(1, in_channels, h, w, device=dev))
        self.encoder.train(was)
        return out

    def grid_size(self, height: int, width: int) -> tuple[int, int]:
        """(gh, gw) of the attention grid for an input of ``height x width`` pixels."""
        p = self.params
        if p.encoder == "cnn":
            assert self.pools is not None
            hp, wp = self.pools
            return height >> hp, width >> wp  # each max pool floors the halving
        key = (int(height), int(width))
        if key not in self._grid_cache:
            in_ch = self._first_conv_in_channels()
            out = self._probe(in_ch, *key)
            self._grid_cache[key] = (int(out.shape[-2]), int(out.shape[-1]))
        return self._grid_cache[key]

    def _first_conv_in_channels(self) -> int:
        return next(m for m in self.encoder.modules() if isinstance(m, nn.Conv2d)).in_channels

    def encode(self, x: Tensor, feats: dict[str, Tensor] | None = None) -> tuple[Tensor, int, int]:
        """Image (B, C, H, W) -> annotation vectors (B, P, D) with positions added, and (gh, gw).

        When ``feats`` is given, every encoder stage's output is recorded under its name.
        """
        for i, stage in enumerate(self.encoder):
            x = stage(x)  # (B, C_i, H_i, W_i)
            if feats is not None:
                feats[f"encoder.{i}"] = x
        x = self.position(x)  # (B, D, gh, gw)
        b, d, gh, gw = x.shape
        return x.flatten(2).transpose(1, 2), gh, gw  # (B, P = gh * gw, D), p = row * gw + col

    # -- training -----------------------------------------------------------------------------
    def forward(self, x: Tensor, tokens: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        """Teacher forcing.

        Args:
            x: normalised images (B, C, H, W).
            tokens: (B, L) int64 captions ``START w1 ... END PAD ...``.

        Returns:
            logits (B, L-1, V) predicting ``tokens[:, 1:]`` and the attention weights
            (B, L-1, P) over the grid cells used for each of those words (rows sum to 1).
            PAD positions are not masked here: the loss does that.
        """
        feats, _, _ = self.encode(x)  # (B, P, D)
        dec = self.decoder
        proj = dec.attention.feature_proj(feats)  # (B, P, A): the same for every step
        state = dec.init_state(feats)
        logits, alphas = [], []
        for t in range(tokens.shape[1] - 1):
            lg, alpha, _, state = dec.step(tokens[:, t], state, feats, proj)
            logits.append(lg)
            alphas.append(alpha)
        if not logits:
            b, p = feats.shape[:2]
            return feats.new_zeros(b, 0, self.vocab_size), feats.new_zeros(b, 0, p)
        return torch.stack(logits, 1), torch.stack(alphas, 1)  # (B, L-1, V), (B, L-1, P)

    def param_groups(self, base_lr: float) -> list[dict[str, Any]]:
        """Optimizer groups: decoder (and positions) at ``base_lr``, the encoder at
        ``base_lr * encoder_lr_scale``; a frozen encoder is left out."""
        enc = {id(q) for q in self.encoder.parameters()}
        rest = [q for q in self.parameters() if id(q) not in enc and q.requires_grad]
        groups: list[dict[str, Any]] = [{"params": rest, "lr": base_lr}]
        enc_params = [q for q in self.encoder.parameters() if q.requires_grad]
        if enc_params:
            groups.append({"params": enc_params, "lr": base_lr * self.params.encoder_lr_scale})
        return groups

    # -- decoding -----------------------------------------------------------------------------
    def _greedy(self, x: Tensor, max_len: int, feats_out: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
        """Encode ``x`` and decode greedily (:func:`models._caption_decoder.greedy`); with
        ``feats_out`` the encoder stages are recorded there and the LSTM gates are returned too."""
        feats, _, _ = self.encode(x, feats_out)  # (B, P, D)
        return greedy(self.decoder, feats, max_len, record=feats_out is not None)

    def _beam_one(self, feats: Tensor, proj: Tensor, max_len: int, k: int, length_norm: float) -> list[dict]:
        """Beam search for one image (:func:`models._caption_decoder.beam_search`)."""
        return beam_search(self.decoder, feats, proj, max_len, k, length_norm)

    @torch.no_grad()
    def generate(self, x: Tensor, *, max_len: int, beam: int = 1, length_norm: float = 0.7) -> list[list[dict]]:
        """Captions for a batch of images (call in eval mode).

        Args:
            x: normalised images (B, C, H, W).
            max_len: most decoding steps (words, END included).
            beam: 1 = greedy; k > 1 = beam search keeping k hypotheses.
            length_norm: ranking score = log-prob / steps ** length_norm (0 = raw log-prob).

        Returns:
            per image, up to ``beam`` candidates, best first: ``{"tokens": [ids without
            START/END], "score": float, "alphas": Tensor (n_tokens, P), "logp": float (the sum of
            the emitted words' log-probabilities, END included when "ended"), "ended": bool}``.
        """
        if beam < 1:
            raise ValueError(f"beam must be >= 1, got {beam}")
        if beam > 1:
            feats, _, _ = self.encode(x)
            proj = self.decoder.attention.feature_proj(feats)
            return [
                self._beam_one(feats[i : i + 1], proj[i : i + 1], max_len, beam, length_norm) for i in range(x.shape[0])
            ]
        g = self._greedy(x, max_len)
        out = []
        for i in range(x.shape[0]):
            n = int(g["length"][i])
            steps = n + int(bool(g["ended"][i]))
            logp = float(g["logp"][i, :steps].sum()) if steps else 0.0
            best = {"tokens": g["words"][i, :n].tolist(), "score": normalised(logp, steps, length_norm), "logp": logp}
            best["ended"] = bool(g["ended"][i])
            out.append([{**best, "alphas": g["alphas"][i, :n].float().cpu()}])
        return out

    @torch.no_grad()
    def forward_intermediates(self, x: Tensor, max_len: int = 30) -> tuple[Tensor, dict[str, Tensor]]:
        """Greedy captions: the scores of every emitted word, and what produced them.

        Returns:
            ``token_logits`` (B, Lmax, V), Lmax = the longest caption (END not included): at
            step t of a caption, the decoder's logits with PAD and START (never emitted) at
            -inf, so ``argmax(-1)`` is the emitted word; after a caption's end, rows that are
            PAD for sure (0 at PAD, -inf elsewhere). And the intermediates, in this order (see
            :meth:`intermediate_info`): ``encoder.N`` (B, C, h, w) per encoder stage,
            ``attention`` (B, Lmax, gh, gw), ``decoder.lstm:h`` (B, Lmax, hidden), the LSTM
            cell's ``decoder.lstm:gate_i/f/g/o`` and ``decoder.lstm:cell`` (B, Lmax, hidden),
            with the gate on ``decoder.gate`` (B, Lmax, 1), and ``tokens`` (B, Lmax) int64:
            the emitted words, PAD after each caption. Steps after a caption's end are zero.
        """
        feats: dict[str, Tensor] = {}
        enc, gh, gw = self.encode(x, feats)  # (B, P, D)
        g = greedy(self.decoder, enc, max_len, record=True)
        b = x.shape[0]
        lmax = int(g["length"].max()) if b else 0
        valid = torch.arange(lmax, device=x.device)[None, :] < g["length"][:, None]  # (B, Lmax)
        m = valid[..., None]

        def cut(t: Tensor) -> Tensor:  # (B, T, ...) -> (B, Lmax, ...), zero after each caption
            return torch.where(m, t[:, :lmax], torch.zeros_like(t[:, :lmax]))

        feats["attention"] = cut(g["alphas"]).reshape(b, lmax, gh, gw)
        feats["decoder.lstm:h"] = cut(g["h"])
        for name in GATES["lstm"]:
            feats[f"decoder.lstm:{name}"] = cut(g[name])
        if self.decoder.gate is not None:
            feats["decoder.gate"] = cut(g["gate"])
        words = g["words"][:, :lmax]
        feats["tokens"] = torch.where(valid, words, torch.full_like(words, PAD))
        pad_row = torch.full_like(g["logits"][:1, :1], -math.inf)
        pad_row[..., PAD] = 0.0
        return torch.where(m, g["logits"][:, :lmax], pad_row), feats

    def intermediate_info(self, image_size: tuple[int, int]) -> dict[str, Intermediate]:
        """What :meth:`forward_intermediates` returns for an input of ``image_size`` (H, W)."""
        grid = self.grid_size(*image_size)
        info = {
            f"encoder.{i}": Intermediate("feature_map", f"encoder.{i}", f"encoder stage {i + 1}")
            for i in range(len(self.encoder))
        }
        info["attention"] = Intermediate(
            "attention", "decoder.attention", "attention per word", grid=grid, range=(0.0, 1.0)
        )
        info["decoder.lstm:h"] = Intermediate("recurrent_state", "decoder.lstm", "decoder LSTM: hidden state")
        for name in GATES["lstm"]:
            info[f"decoder.lstm:{name}"] = gate_info(name, layer="decoder.lstm", title="decoder LSTM")
        if self.decoder.gate is not None:
            info["decoder.gate"] = Intermediate(
                "gate", "decoder.gate", "attention gate (beta)", gate="attention gate", range=(0.0, 1.0)
            )
        info["tokens"] = Intermediate("tokens", "decoder.classifier", "emitted words")
        return info

    def output_info(self, image_size: tuple[int, int]) -> Intermediate:
        return Intermediate("token_logits", "decoder.classifier", "word scores per emitted word")

    def export_modules(self) -> tuple[CaptionEncoderGraph, CaptionDecoderStep]:
        """The model as two graphs for ONNX / ``torch.export``: the encoder (image -> features,
        h, c) and one decoder step (token, h, c, features -> logits, h_next, c_next, alpha);
        see :mod:`models._caption_export`."""
        return CaptionEncoderGraph(self), CaptionDecoderStep(self)


@register_model(
    "captioner",
    params=CaptionerParams,
    description="Image captioning (Show, Attend and Tell): CNN or torchvision encoder, LSTM decoder with soft "
    "attention over a position-coded feature grid; greedy or beam-search decoding.",
    tasks=("caption",),
)
def _build_captioner(
    p: CaptionerParams, *, in_channels: int, num_outputs: int, image_size: tuple[int, int | None]
) -> Captioner:
    if num_outputs <= UNK + 1:
        raise ParamError(
            "num_outputs",
            f"a caption vocabulary holds PAD, START, END, UNK and at least one word; got {num_outputs} tokens",
        )
    return Captioner(p, in_channels=in_channels, num_outputs=num_outputs, image_size=image_size)
