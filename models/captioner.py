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
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ._base import INITS, ExplorerModel, init_weights
from ._registry import register_model
from ._spec import ParamError, Params, param
from .backbone import ARCHS, WEIGHT_SUFFIXES, Backbone, BackboneParams

__all__ = [
    "PAD",
    "START",
    "END",
    "UNK",
    "Attention",
    "Captioner",
    "CaptionerParams",
    "Decoder",
    "EncoderBlock",
    "PositionalEncoding2d",
    "sinusoidal_2d",
]

PAD, START, END, UNK = 0, 1, 2, 3
ENCODERS = ("cnn", *ARCHS)
POSITIONS = ("sinusoidal", "learned", "none")
_LINE_ASPECT = 2  # images at least this many times as wide as high (or of variable width) are read as lines
_NOMINAL_LINE_ASPECT = 4  # learned positions of a variable-width model are laid out for width = 4 x height


@dataclass
class CaptionerParams(Params):
    encoder: str = param(
        "cnn",
        help="Image encoder: 'cnn' = the conv stack below (channels, height_pools, width_pools), trained from "
        "scratch; or a torchvision backbone (resnet18, mobilenet_v3_small, ...) without its classifier, optionally "
        "from a local weights file.",
        choices=ENCODERS,
    )
    channels: tuple[int, ...] = param(
        (32, 64, 128, 256),
        help="encoder=cnn: output channels of each conv stage (3x3 conv, batch norm, ReLU, then max pooling as "
        "height_pools/width_pools say); one stage per value.",
        min=1,
        max=1024,
    )
    height_pools: int = param(
        -1,
        help="encoder=cnn: how many of the first stages halve the height. -1 = auto: every stage for text-like "
        "lines (variable width, or at least twice as wide as high), else 3 (a grid of 1/8 the image size).",
        min=-1,
        max=8,
    )
    width_pools: int = param(
        -1,
        help="encoder=cnn: how many of the first stages halve the width; the later ones keep it, so a text line "
        "keeps many columns to attend to. -1 = auto: 2 for text-like lines (a 32x140 line gives a 2 x 35 grid "
        "with 4 stages), else 3 (64x64 gives 8 x 8).",
        min=-1,
        max=8,
    )
    weights: str = param(
        "",
        help="Torchvision encoders: local .pth/.pt/.safetensors state dict of the whole torchvision model to "
        "start from (empty = random init). Tensors that do not fit are skipped.",
    )
    freeze_encoder: bool = param(
        False, help="Keep the (pretrained) encoder fixed, batch-norm statistics included; only the decoder trains."
    )
    encoder_lr_scale: float = param(
        1.0,
        help="The encoder's learning rate relative to the decoder's (e.g. 0.1 to fine-tune a pretrained backbone "
        "gently).",
        min=0.0,
        max=10.0,
    )
    pos_encoding: str = param(
        "sinusoidal",
        help="Position added to every grid cell so the attention knows where it looks: 'sinusoidal' = fixed 2-D "
        "sine/cosine code (any grid size), 'learned' = a trained table (resized to other grid sizes), 'none'.",
        choices=POSITIONS,
    )
    embed_dim: int = param(128, help="Size of the word embeddings (and of the deep output layer).", min=1, max=4096)
    hidden_size: int = param(256, help="Units of the decoder's LSTM cell.", min=1, max=4096)
    attention_dim: int = param(128, help="Size of the additive attention's hidden layer.", min=1, max=4096)
    dropout: float = param(0.3, help="Dropout before the word classifier.", min=0.0, max=0.9)
    attention_reg: float = param(
        1.0,
        help="Weight of the doubly stochastic attention penalty: over a caption every grid cell should receive "
        "about as much attention as any other (0 = off).",
        min=0.0,
        max=100.0,
    )
    gate: bool = param(
        True, help="Scale the attention context by a learned gate sigmoid(f(h)) (Show, Attend and Tell)."
    )
    init: str = param(
        "default",
        help="Weight initialisation: 'default' = PyTorch's, 'xavier' = Glorot uniform, 'he' = Kaiming normal.",
        choices=INITS,
    )

    def pools(self, image_size: tuple[int, int | None]) -> tuple[int, int]:
        """(height_pools, width_pools) of encoder=cnn for this input size, auto resolved."""
        h, w = image_size
        stages = len(self.channels)
        line = w is None or w >= _LINE_ASPECT * h
        hp = self.height_pools if self.height_pools >= 0 else (stages if line else min(stages, 3))
        wp = self.width_pools if self.width_pools >= 0 else min(stages, 2 if line else 3)
        return hp, wp

    def check(self, *, in_channels: int, image_size: tuple[int, int | None]) -> None:
        h, w = image_size
        if self.encoder == "cnn":
            stages = len(self.channels)
            if self.weights:
                raise ParamError("weights", "only torchvision encoders load weights files; encoder=cnn starts random")
            if self.freeze_encoder:
                raise ParamError(
                    "freeze_encoder",
                    "a randomly initialised encoder=cnn would never learn; use a backbone with weights",
                )
            for name in ("height_pools", "width_pools"):
                if getattr(self, name) > stages:
                    raise ParamError(
                        name, f"{getattr(self, name)} is more than the {stages} conv stages; valid range [-1, {stages}]"
                    )
            hp, wp = self.pools(image_size)
            if h < 2**hp:
                raise ParamError(
                    "channels" if self.height_pools < 0 else "height_pools",
                    f"{hp} height-halving stages need an image at least {2**hp} px high, got {h}; "
                    "use fewer stages or height_pools",
                )
            if w is not None and w < 2**wp:
                raise ParamError(
                    "width_pools",
                    f"{wp} width-halving stages need an image at least {2**wp} px wide, got {w}",
                )
        else:
            if self.weights:
                if not self.weights.lower().endswith(WEIGHT_SUFFIXES):
                    raise ParamError("weights", f"'{self.weights}' is not a {', '.join(WEIGHT_SUFFIXES)} file")
                if not os.path.isfile(self.weights):
                    raise ParamError("weights", f"no such file: '{self.weights}'")
            elif self.freeze_encoder:
                raise ParamError("freeze_encoder", "freezing a randomly initialised encoder is useless; give weights")


# -- encoder ------------------------------------------------------------------------------------


class EncoderBlock(nn.Sequential):
    """3x3 conv -> batch norm -> ReLU -> max pool (2, 2), (2, 1) or (1, 2) (none when neither halves)."""

    def __init__(self, in_ch: int, out_ch: int, *, halve_height: bool, halve_width: bool) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        ]
        if halve_height or halve_width:
            pool = (2 if halve_height else 1, 2 if halve_width else 1)
            layers.append(nn.MaxPool2d(pool, pool))
        super().__init__(*layers)


def _backbone_stages(
    p: CaptionerParams, in_channels: int, image_size: tuple[int, int | None]
) -> tuple[list[nn.Module], dict[str, Any]]:
    """The body of a torchvision model as a list of stages (its classifier dropped)."""
    bp = BackboneParams(arch=p.encoder, weights=p.weights, init=p.init)
    net = Backbone(bp, in_channels=in_channels, num_outputs=1, image_size=image_size)
    if net.kind == "resnet":
        stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        stages = [stem, net.layer1, net.layer2, net.layer3, net.layer4]
    else:
        stages = list(net.features)
    return stages, net.weights_report


# -- positions ----------------------------------------------------------------------------------


def _sinusoid(dim: int, n: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """(n, dim) sine/cosine code of positions 0..n-1 (Vaswani et al.)."""
    pos = torch.arange(n, device=device, dtype=torch.float32)[:, None]  # (n, 1)
    i = torch.arange(dim, device=device)
    freq = torch.exp(-math.log(10000.0) * (2 * (i // 2)).float() / max(dim, 1))  # (dim,)
    ang = pos * freq  # (n, dim)
    return torch.where(i % 2 == 0, torch.sin(ang), torch.cos(ang)).to(dtype)


def sinusoidal_2d(
    dim: int, gh: int, gw: int, device: torch.device | None = None, dtype: torch.dtype | None = None
) -> Tensor:
    """(dim, gh, gw) fixed 2-D position code: the first dim//2 channels code the row,
    the rest the column (DETR-style). It is defined for any grid size."""
    device = device or torch.device("cpu")
    dtype = dtype or torch.float32
    dr = dim // 2
    rows = _sinusoid(dr, gh, device, dtype).T[:, :, None].expand(dr, gh, gw)  # (dr, gh, gw)
    cols = _sinusoid(dim - dr, gw, device, dtype).T[:, None, :].expand(dim - dr, gh, gw)  # (dc, gh, gw)
    return torch.cat([rows, cols], 0)


class PositionalEncoding2d(nn.Module):
    """Adds a position code to a feature grid (B, D, gh, gw)."""

    def __init__(self, mode: str, dim: int, grid: tuple[int, int]) -> None:
        super().__init__()
        self.mode = mode
        self.dim = dim
        if mode == "learned":
            self.table = nn.Parameter(torch.randn(1, dim, *grid) * 0.1)  # (1, D, gh, gw)

    def code(self, gh: int, gw: int, device: torch.device, dtype: torch.dtype) -> Tensor | None:
        """(1, D, gh, gw) code, or None for mode 'none'."""
        if self.mode == "sinusoidal":
            return sinusoidal_2d(self.dim, gh, gw, device, dtype)[None]
        if self.mode == "learned":
            t = self.table
            if t.shape[-2:] != (gh, gw):
                # another grid size (variable-width input): the table is resampled, so positions are relative
                t = F.interpolate(t, size=(gh, gw), mode="bilinear", align_corners=False)
            return t.to(dtype)
        return None

    def forward(self, f: Tensor) -> Tensor:
        pe = self.code(f.shape[-2], f.shape[-1], f.device, f.dtype)
        return f if pe is None else f + pe


# -- decoder ------------------------------------------------------------------------------------


class Attention(nn.Module):
    """Additive (Bahdanau) attention: ``alpha = softmax_p(w . tanh(W_a a_p + W_h h))``."""

    def __init__(self, feature_dim: int, hidden_size: int, attention_dim: int) -> None:
        super().__init__()
        self.feature_proj = nn.Linear(feature_dim, attention_dim)
        self.hidden_proj = nn.Linear(hidden_size, attention_dim)
        self.score = nn.Linear(attention_dim, 1)

    def forward(self, feats: Tensor, feats_proj: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        """feats (B, P, D), feats_proj = feature_proj(feats) (B, P, A), h (B, H) -> z (B, D), alpha (B, P)."""
        e = self.score(torch.tanh(feats_proj + self.hidden_proj(h)[:, None, :])).squeeze(-1)  # (B, P)
        alpha = torch.softmax(e.float(), dim=-1).to(feats.dtype)  # (B, P), rows sum to 1
        z = torch.bmm(alpha[:, None, :], feats).squeeze(1)  # (B, D)
        return z, alpha


class Decoder(nn.Module):
    """One word per :meth:`step`: attend, gate, LSTM cell, deep output."""

    def __init__(
        self,
        *,
        feature_dim: int,
        vocab_size: int,
        embed_dim: int,
        hidden_size: int,
        attention_dim: int,
        dropout: float,
        gate: bool,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.init_h = nn.Linear(feature_dim, hidden_size)
        self.init_c = nn.Linear(feature_dim, hidden_size)
        self.attention = Attention(feature_dim, hidden_size, attention_dim)
        self.gate = nn.Linear(hidden_size, 1) if gate else None
        self.lstm = nn.LSTMCell(embed_dim + feature_dim, hidden_size)
        self.out_h = nn.Linear(hidden_size, embed_dim)
        self.out_z = nn.Linear(feature_dim, embed_dim)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(embed_dim, vocab_size)

    def init_state(self, feats: Tensor) -> tuple[Tensor, Tensor]:
        """(h0, c0), each (B, H), from the mean annotation vector of feats (B, P, D)."""
        mean = feats.mean(1)  # (B, D)
        return torch.tanh(self.init_h(mean)), torch.tanh(self.init_c(mean))

    def step(
        self, word: Tensor, state: tuple[Tensor, Tensor], feats: Tensor, feats_proj: Tensor
    ) -> tuple[Tensor, Tensor, Tensor | None, tuple[Tensor, Tensor]]:
        """Previous word (B,) -> logits (B, V), alpha (B, P), gate (B, 1) or None, new (h, c)."""
        h, c = state
        z, alpha = self.attention(feats, feats_proj, h)  # (B, D), (B, P): where to look for this word
        beta = None
        if self.gate is not None:
            beta = torch.sigmoid(self.gate(h))  # (B, 1)
            z = beta * z
        e = self.embed(word)  # (B, E)
        h, c = self.lstm(torch.cat([e, z], 1), (h, c))  # (B, H)
        logits = self.classifier(self.dropout(e + self.out_h(h) + self.out_z(z)))  # (B, V)
        return logits, alpha, beta, (h, c)


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
            feature_dim = prev
        else:
            stages, self.weights_report = _backbone_stages(p, in_channels, image_size)
            self.encoder = nn.Sequential(*stages)
            feature_dim = self._probe(in_channels, h, w if w is not None else h).shape[1]
        self.feature_dim = feature_dim
        self._grid_cache: dict[tuple[int, int], tuple[int, int]] = {}
        nominal_w = w if w is not None else _NOMINAL_LINE_ASPECT * h
        self.position = PositionalEncoding2d(p.pos_encoding, feature_dim, self.grid_size(h, nominal_w))
        self.decoder = Decoder(
            feature_dim=feature_dim,
            vocab_size=num_outputs,
            embed_dim=p.embed_dim,
            hidden_size=p.hidden_size,
            attention_dim=p.attention_dim,
            dropout=p.dropout,
            gate=p.gate,
        )
        _init_decoder(self.decoder, p.init)
        if p.freeze_encoder:
            for prm in self.encoder.parameters():
                prm.requires_grad = False

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
    def _next_logp(self, logits: Tensor) -> Tensor:
        lp = torch.log_softmax(logits.float(), dim=-1)  # (N, V)
        lp[:, PAD] = -math.inf  # never emitted
        lp[:, START] = -math.inf
        return lp

    def _greedy(self, x: Tensor, max_len: int, feats_out: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
        """Batched greedy decoding; per step: words, log-probs, alphas, hidden states, gates.

        Returns tensors (B, T, ...) for T <= max_len steps and ``length`` (B,): the number of
        emitted words before END (END itself not counted), ``ended`` (B,) bool.
        """
        feats, _, _ = self.encode(x, feats_out)  # (B, P, D)
        dec = self.decoder
        proj = dec.attention.feature_proj(feats)
        state = dec.init_state(feats)
        b = feats.shape[0]
        word = torch.full((b,), START, dtype=torch.long, device=feats.device)
        done = torch.zeros(b, dtype=torch.bool, device=feats.device)
        words, lps, alphas, hs, gates = [], [], [], [], []
        for _ in range(max_len):
            logits, alpha, beta, state = dec.step(word, state, feats, proj)
            best, word = self._next_logp(logits).max(-1)  # (B,), (B,)
            words.append(word)
            lps.append(best)
            alphas.append(alpha)
            hs.append(state[0])
            gates.append(beta if beta is not None else alpha.new_ones(b, 1))
            done = done | (word == END)
            if bool(done.all()):
                break
        if not words:
            z = torch.zeros(b, 0, dtype=torch.long, device=feats.device)
            return {
                "words": z,
                "logp": z.float(),
                "alphas": feats.new_zeros(b, 0, feats.shape[1]),
                "h": feats.new_zeros(b, 0, dec.lstm.hidden_size),
                "gate": feats.new_zeros(b, 0, 1),
                "length": torch.zeros(b, dtype=torch.long, device=feats.device),
                "ended": torch.zeros(b, dtype=torch.bool, device=feats.device),
            }
        w = torch.stack(words, 1)  # (B, T)
        is_end = w == END
        ended = is_end.any(1)
        length = torch.where(ended, is_end.float().argmax(1), torch.full_like(ended, w.shape[1], dtype=torch.long))
        return {
            "words": w,
            "logp": torch.stack(lps, 1),  # (B, T)
            "alphas": torch.stack(alphas, 1),  # (B, T, P)
            "h": torch.stack(hs, 1),  # (B, T, H)
            "gate": torch.stack(gates, 1),  # (B, T, 1)
            "length": length,
            "ended": ended,
        }

    @staticmethod
    def _normalised(logp: float, steps: int, length_norm: float) -> float:
        return logp / (max(steps, 1) ** length_norm) if steps else 0.0

    def _beam_one(self, feats: Tensor, proj: Tensor, max_len: int, k: int, length_norm: float) -> list[dict]:
        """Beam search for one image (feats (1, P, D)): ``k`` hypotheses, each finishing
        at END or after ``max_len`` steps; the live beam shrinks as hypotheses finish."""
        dec = self.decoder
        state = dec.init_state(feats)
        word = torch.full((1,), START, dtype=torch.long, device=feats.device)
        live_logp = torch.zeros(1, device=feats.device)
        live: list[tuple[list[int], list[Tensor]]] = [([], [])]
        finished: list[dict[str, Any]] = []
        for t in range(max_len):
            n = len(live)
            logits, alpha, _, state = dec.step(
                word, state, feats.expand(n, -1, -1), proj.expand(n, -1, -1)
            )  # (n, V), (n, P)
            cand = (live_logp[:, None] + self._next_logp(logits)).view(-1)  # (n * V,)
            top, idx = cand.topk(min(k - len(finished), cand.numel()))
            keep, next_words, next_logp, next_live = [], [], [], []
            for lp, i in zip(top.tolist(), idx.tolist()):
                if not math.isfinite(lp):
                    continue
                src, tok = divmod(i, self.vocab_size)
                toks, als = live[src]
                if tok == END or t == max_len - 1:
                    steps = len(toks) + 1
                    out_toks = toks if tok == END else [*toks, tok]
                    out_als = als if tok == END else [*als, alpha[src]]
                    finished.append({"tokens": out_toks, "alphas": out_als, "logp": lp, "steps": steps})
                else:
                    keep.append(src)
                    next_words.append(tok)
                    next_logp.append(lp)
                    next_live.append(([*toks, tok], [*als, alpha[src]]))
            if not next_live:
                break
            sel = torch.tensor(keep, device=feats.device)
            state = (state[0][sel], state[1][sel])
            word = torch.tensor(next_words, device=feats.device)
            live_logp = torch.tensor(next_logp, device=feats.device)
            live = next_live
        p = feats.shape[1]
        out = [
            {
                "tokens": f["tokens"],
                "score": self._normalised(f["logp"], f["steps"], length_norm),
                "alphas": torch.stack(f["alphas"]).float().cpu() if f["alphas"] else torch.zeros(0, p),
            }
            for f in finished
        ]
        out.sort(key=lambda c: c["score"], reverse=True)
        return out

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
            START/END], "score": float, "alphas": Tensor (n_tokens, P)}``.
        """
        if beam < 1:
            raise ValueError(f"beam must be >= 1, got {beam}")
        if beam == 1:
            g = self._greedy(x, max_len)
            out = []
            for i in range(x.shape[0]):
                n = int(g["length"][i])
                steps = n + int(bool(g["ended"][i]))
                logp = float(g["logp"][i, :steps].sum()) if steps else 0.0
                out.append(
                    [
                        {
                            "tokens": g["words"][i, :n].tolist(),
                            "score": self._normalised(logp, steps, length_norm),
                            "alphas": g["alphas"][i, :n].float().cpu(),
                        }
                    ]
                )
            return out
        feats, _, _ = self.encode(x)
        proj = self.decoder.attention.feature_proj(feats)
        return [
            self._beam_one(feats[i : i + 1], proj[i : i + 1], max_len, beam, length_norm) for i in range(x.shape[0])
        ]

    @torch.no_grad()
    def forward_intermediates(self, x: Tensor, max_len: int = 30) -> tuple[Tensor, dict[str, Tensor]]:
        """Greedy captions and what produced them.

        Returns:
            tokens (B, Lmax) of the emitted words, PAD after each caption (END not
            included), and ``encoder.N`` (B, C, h, w) per encoder stage, ``attention``
            (B, Lmax, gh, gw), ``decoder.lstm:h`` (B, Lmax, hidden) and, with the gate on,
            ``decoder.gate`` (B, Lmax, 1); steps after a caption's end are zero.
        """
        feats: dict[str, Tensor] = {}
        g = self._greedy(x, max_len, feats)
        gh, gw = self.grid_size(x.shape[-2], x.shape[-1])
        b = x.shape[0]
        lmax = int(g["length"].max()) if b else 0
        valid = torch.arange(lmax, device=x.device)[None, :] < g["length"][:, None]  # (B, Lmax)
        tokens = torch.where(valid, g["words"][:, :lmax], torch.full_like(g["words"][:, :lmax], PAD))
        m = valid[..., None].to(g["alphas"].dtype)
        feats["attention"] = (g["alphas"][:, :lmax] * m).reshape(b, lmax, gh, gw)
        feats["decoder.lstm:h"] = g["h"][:, :lmax] * m
        if self.decoder.gate is not None:
            feats["decoder.gate"] = g["gate"][:, :lmax] * m
        return tokens, feats


def _init_decoder(dec: Decoder, scheme: str) -> None:
    init_weights(dec, scheme)
    if scheme == "default":
        return
    for name, w in dec.lstm.named_parameters():  # init_weights knows nn.LSTM, not nn.LSTMCell
        if name.startswith("weight"):
            if scheme == "xavier":
                nn.init.xavier_uniform_(w)
            else:
                nn.init.kaiming_normal_(w, nonlinearity="tanh")
        else:
            nn.init.zeros_(w)


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
