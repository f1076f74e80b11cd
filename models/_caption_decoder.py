"""The captioner's decoder: additive attention, the LSTM decoder, greedy and beam search.

One :meth:`Decoder.step` emits one word: attend over the annotation vectors, scale the
context by the gating scalar, run the LSTM cell on ``[embed(y_prev), z]``, predict the
word with the deep output layer. :func:`greedy` and :func:`beam_search` drive the steps.

Token ids are fixed: ``PAD=0, START=1, END=2, UNK=3``. PAD and START are never emitted.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ._base import init_weights

__all__ = [
    "PAD",
    "START",
    "END",
    "UNK",
    "Attention",
    "Decoder",
    "beam_search",
    "emitted_scores",
    "greedy",
    "init_decoder",
    "next_logp",
    "normalised",
]

PAD, START, END, UNK = 0, 1, 2, 3


# -- modules ------------------------------------------------------------------------------------


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
        self,
        word: Tensor,
        state: tuple[Tensor, Tensor],
        feats: Tensor,
        feats_proj: Tensor,
        record: dict[str, Tensor] | None = None,
    ) -> tuple[Tensor, Tensor, Tensor | None, tuple[Tensor, Tensor]]:
        """Previous word (B,) -> logits (B, V), alpha (B, P), gate (B, 1) or None, new (h, c).

        With ``record``, the LSTM cell's gates ``gate_i/f/g/o`` (B, H) are stored into it
        (recomputed from the cell's weights: ``nn.LSTMCell`` does not return them).
        """
        h, c = state
        z, alpha = self.attention(feats, feats_proj, h)  # (B, D), (B, P): where to look for this word
        beta = None
        if self.gate is not None:
            beta = torch.sigmoid(self.gate(h))  # (B, 1)
            z = beta * z
        e = self.embed(word)  # (B, E)
        inp = torch.cat([e, z], 1)  # (B, E + D)
        if record is not None:
            record.update(_lstm_cell_gates(self.lstm, inp, h))
        h, c = self.lstm(inp, (h, c))  # (B, H)
        logits = self.classifier(self.dropout(e + self.out_h(h) + self.out_z(z)))  # (B, V)
        return logits, alpha, beta, (h, c)


# -- the model ----------------------------------------------------------------------------------


def _lstm_cell_gates(cell: nn.LSTMCell, inp: Tensor, h: Tensor) -> dict[str, Tensor]:
    """The gates of one ``nn.LSTMCell`` step (PyTorch's ``i, f, g, o`` order), each (B, H)."""
    pre = F.linear(inp, cell.weight_ih, cell.bias_ih) + F.linear(h, cell.weight_hh, cell.bias_hh)
    gi, gf, gg, go = pre.chunk(4, dim=-1)
    return {
        "gate_i": torch.sigmoid(gi),
        "gate_f": torch.sigmoid(gf),
        "gate_g": torch.tanh(gg),
        "gate_o": torch.sigmoid(go),
    }


def init_decoder(dec: Decoder, scheme: str) -> None:
    """:func:`~models._base.init_weights`, plus the LSTM cell it does not know."""
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


# -- decoding -----------------------------------------------------------------------------------


def next_logp(logits: Tensor) -> Tensor:
    """Log-probabilities (N, V) of the next word; PAD and START, never emitted, at -inf."""
    lp = torch.log_softmax(logits.float(), dim=-1)  # (N, V)
    lp[:, PAD] = -math.inf
    lp[:, START] = -math.inf
    return lp


def emitted_scores(logits: Tensor) -> Tensor:
    """The logits (..., V) among which decoding picks: PAD and START at -inf, so that the
    argmax is the word greedy decoding emits."""
    out = logits.clone()
    out[..., PAD] = -math.inf
    out[..., START] = -math.inf
    return out


def _end_lengths(words: Tensor) -> tuple[Tensor, Tensor]:
    """(length, ended) of (B, T) emitted words: words before the first END, and whether there is one."""
    is_end = words == END
    ended = is_end.any(1)
    full = torch.full_like(ended, words.shape[1], dtype=torch.long)
    return torch.where(ended, is_end.float().argmax(1), full), ended


def _empty(feats: Tensor, dec: Decoder, record: bool) -> dict[str, Tensor]:
    """What :func:`greedy` returns for zero steps."""
    b, p = feats.shape[:2]
    hsize = dec.lstm.hidden_size
    out = {
        "words": torch.zeros(b, 0, dtype=torch.long, device=feats.device),
        "logp": feats.new_zeros(b, 0, dtype=torch.float32),
        "alphas": feats.new_zeros(b, 0, p),
        "h": feats.new_zeros(b, 0, hsize),
        "gate": feats.new_zeros(b, 0, 1),
        "logits": feats.new_zeros(b, 0, dec.classifier.out_features),
    }
    if record:
        out.update({k: feats.new_zeros(b, 0, hsize) for k in ("cell", "gate_i", "gate_f", "gate_g", "gate_o")})
    out["length"] = torch.zeros(b, dtype=torch.long, device=feats.device)
    out["ended"] = torch.zeros(b, dtype=torch.bool, device=feats.device)
    return out


def greedy(dec: Decoder, feats: Tensor, max_len: int, *, record: bool = False) -> dict[str, Tensor]:
    """Batched greedy decoding of annotation vectors ``feats`` (B, P, D).

    Returns per step (B, T, ...), T <= max_len: ``words``, ``logp`` (of the chosen word),
    ``alphas`` (B, T, P), ``h`` (B, T, H), ``gate`` (B, T, 1; ones without the gate),
    ``logits`` (B, T, V; :func:`emitted_scores`) and, with ``record``, the LSTM cell state
    ``cell`` and gates ``gate_i/f/g/o`` (B, T, H); plus ``length`` (B,): words emitted before
    END (END not counted), and ``ended`` (B,) bool.
    """
    proj = dec.attention.feature_proj(feats)  # (B, P, A): the same for every step
    state = dec.init_state(feats)
    b = feats.shape[0]
    word = torch.full((b,), START, dtype=torch.long, device=feats.device)
    done = torch.zeros(b, dtype=torch.bool, device=feats.device)
    steps: dict[str, list[Tensor]] = {}
    for _ in range(max_len):
        rec: dict[str, Tensor] | None = {} if record else None
        logits, alpha, beta, state = dec.step(word, state, feats, proj, rec)
        best, word = next_logp(logits).max(-1)  # (B,), (B,)
        step = {"words": word, "logp": best, "alphas": alpha, "h": state[0]}
        step["gate"] = beta if beta is not None else alpha.new_ones(b, 1)
        step["logits"] = emitted_scores(logits)
        if rec is not None:
            step.update(cell=state[1], **rec)
        for k, v in step.items():
            steps.setdefault(k, []).append(v)
        done = done | (word == END)
        if bool(done.all()):
            break
    if not steps:
        return _empty(feats, dec, record)
    out = {k: torch.stack(v, 1) for k, v in steps.items()}
    out["length"], out["ended"] = _end_lengths(out["words"])
    return out


def normalised(logp: float, steps: int, length_norm: float) -> float:
    """The ranking score of a hypothesis: log-prob / steps ** length_norm."""
    return logp / (max(steps, 1) ** length_norm) if steps else 0.0


def _expand(
    dec: Decoder, live: list[tuple[list[int], list[Tensor]]], cand: Tensor, k: int, last: bool
) -> tuple[list[dict[str, Any]], list[tuple[int, int, float]]]:
    """One beam step's bookkeeping: the best ``k`` candidates of ``cand`` (n * V,), split into
    finished hypotheses (END, or the last step) and (source, word, log-prob) that live on."""
    vocab = dec.classifier.out_features
    finished, going = [], []
    top, idx = cand.topk(min(k, cand.numel()))
    for lp, i in zip(top.tolist(), idx.tolist()):
        if not math.isfinite(lp):
            continue
        src, tok = divmod(i, vocab)
        toks, als = live[src]
        if tok == END or last:
            out_toks = toks if tok == END else [*toks, tok]
            finished.append({"tokens": out_toks, "src": src, "logp": lp, "steps": len(toks) + 1, "end": tok == END})
        else:
            going.append((src, tok, lp))
    return finished, going


def _beam_one(dec: Decoder, feats: Tensor, proj: Tensor, max_len: int, k: int) -> list[dict[str, Any]]:
    """Beam search for one image (feats (1, P, D)): finished hypotheses, unsorted."""
    state = dec.init_state(feats)
    word = torch.full((1,), START, dtype=torch.long, device=feats.device)
    live_logp = torch.zeros(1, device=feats.device)
    live: list[tuple[list[int], list[Tensor]]] = [([], [])]
    finished: list[dict[str, Any]] = []
    for t in range(max_len):
        n = len(live)
        logits, alpha, _, state = dec.step(word, state, feats.expand(n, -1, -1), proj.expand(n, -1, -1))
        cand = (live_logp[:, None] + next_logp(logits)).view(-1)  # (n * V,)
        done, going = _expand(dec, live, cand, k - len(finished), t == max_len - 1)
        for f in done:
            als = live[f["src"]][1]
            f["alphas"] = als if f["end"] else [*als, alpha[f["src"]]]
        finished += done
        if not going:
            break
        sel = torch.tensor([s for s, _, _ in going], device=feats.device)
        state = (state[0][sel], state[1][sel])
        word = torch.tensor([w for _, w, _ in going], device=feats.device)
        live_logp = torch.tensor([lp for _, _, lp in going], device=feats.device)
        live = [([*live[s][0], w], [*live[s][1], alpha[s]]) for s, w, _ in going]
    return finished


def beam_search(
    dec: Decoder, feats: Tensor, proj: Tensor, max_len: int, k: int, length_norm: float
) -> list[dict[str, Any]]:
    """Beam search for one image (feats (1, P, D), proj its attention projection): up to ``k``
    hypotheses, each finishing at END or after ``max_len`` steps (the live beam shrinks as
    hypotheses finish), best first: ``{"tokens", "score", "alphas" (n_tokens, P), "logp", "ended"}``;
    ``logp`` is the sum of the log-probabilities of the emitted words (END included when
    ``ended``), ``score`` its ranking value (:func:`normalised`)."""
    p = feats.shape[1]
    out = [
        {
            "tokens": f["tokens"],
            "score": normalised(f["logp"], f["steps"], length_norm),
            "alphas": torch.stack(f["alphas"]).float().cpu() if f["alphas"] else torch.zeros(0, p),
            "logp": float(f["logp"]),
            "ended": bool(f["end"]),
        }
        for f in _beam_one(dec, feats, proj, max_len, k)
    ]
    out.sort(key=lambda c: c["score"], reverse=True)
    return out
