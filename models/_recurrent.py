"""Recurrent pieces shared by the families that read sequences: rnn, crnn, patch_rnn.

* :class:`RecurrentStack`: stacked *single-layer* ``nn.RNN``/``nn.LSTM``/``nn.GRU``
  modules (``rnn.0``, ``rnn.1``, ...), equal to one multi-layer module with the same
  weights, but with every layer's output reachable for the probes.
* :func:`recurrent_gates`: the hidden states and gate activations of one such layer,
  recomputed step by step from the layer's own weights (cuDNN and the fused CPU
  kernels return only the outputs, never the gates).
* :func:`pool_sequence`: the sequence of states reduced to one vector for a head.

Intermediate names (what ``forward_intermediates`` of every recurrent family adds;
``rnn.N`` is the module name of layer N, ``D`` is ``fwd`` or ``bwd``):

=====================  ==========  =============================================
key                    shape       content
=====================  ==========  =============================================
``rnn.N:D``            (B, T, H)   the layer's output for direction D (always)
``rnn.N:D:gate_i``     (B, T, H)   LSTM input gate, sigmoid      (gates=True)
``rnn.N:D:gate_f``     (B, T, H)   LSTM forget gate, sigmoid
``rnn.N:D:gate_g``     (B, T, H)   LSTM candidate, tanh
``rnn.N:D:gate_o``     (B, T, H)   LSTM output gate, sigmoid
``rnn.N:D:cell``       (B, T, H)   LSTM cell state c_t
``rnn.N:D:gate_r``     (B, T, H)   GRU reset gate, sigmoid
``rnn.N:D:gate_z``     (B, T, H)   GRU update gate, sigmoid
``rnn.N:D:gate_n``     (B, T, H)   GRU candidate, tanh
``rnn.N:D:preact``     (B, T, H)   SimpleRNN pre-activation (before tanh/relu)
=====================  ==========  =============================================

Step t of the ``bwd`` direction is the state after reading steps T-1 ... t, so it sits
at the same time index as the input it has just read (PyTorch's own layout).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ._intermediates import Box, Intermediate

__all__ = [
    "CELLS",
    "POOLS",
    "GATES",
    "CELL_TITLES",
    "RecurrentStack",
    "gate_info",
    "pool_sequence",
    "recurrent_gates",
]

CELLS = ("rnn", "lstm", "gru")
POOLS = ("last", "mean", "max")

#: Gate (and extra state) names per cell, in PyTorch's weight-block order.
GATES: dict[str, tuple[str, ...]] = {
    "rnn": ("preact",),
    "lstm": ("gate_i", "gate_f", "gate_g", "gate_o", "cell"),
    "gru": ("gate_r", "gate_z", "gate_n"),
}

_CELL_MODULES: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}

#: How titles name each cell.
CELL_TITLES = {"rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}

# gate key -> (kind, readable gate name, value range): sigmoid gates (0, 1), tanh candidates (-1, 1),
# the SimpleRNN pre-activation and the LSTM cell state are unbounded.
_GATE_INFO: dict[str, tuple[str, str, tuple[float, float] | None]] = {
    "gate_i": ("gate", "input gate", (0.0, 1.0)),
    "gate_f": ("gate", "forget gate", (0.0, 1.0)),
    "gate_g": ("gate", "candidate", (-1.0, 1.0)),
    "gate_o": ("gate", "output gate", (0.0, 1.0)),
    "cell": ("cell_state", "cell state", None),
    "gate_r": ("gate", "reset gate", (0.0, 1.0)),
    "gate_z": ("gate", "update gate", (0.0, 1.0)),
    "gate_n": ("gate", "candidate", (-1.0, 1.0)),
    "preact": ("gate", "pre-activation", None),
}


def gate_info(
    key: str,
    *,
    layer: str,
    title: str,
    direction: str | None = None,
    regions: tuple[Box, ...] | None = None,
    spatial: bool = False,
) -> Intermediate:
    """The declaration of gate ``key`` (an entry of :data:`GATES`) of one layer (and direction).

    ``title`` names the layer ("GRU layer 1, backward"); the gate's name is appended.
    ``spatial``: a convolutional cell's gate, (time, channel, y, x) like its state.
    """
    kind, name, rng = _GATE_INFO[key]
    if spatial:
        kind = "spatial_state"
    return Intermediate(kind, layer, f"{title}: {name}", direction=direction, gate=name, regions=regions, range=rng)


# -- gate recomputation --------------------------------------------------------------------------


def _time_reverse(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse (B, T, ...) along time; with ``lengths`` only each sequence's valid prefix."""
    if lengths is None:
        return x.flip(1)
    t = x.shape[1]
    steps = torch.arange(t, device=x.device).unsqueeze(0)  # (1, T)
    lens = lengths.to(x.device).unsqueeze(1)  # (B, 1)
    idx = torch.where(steps < lens, lens - 1 - steps, steps)  # (B, T): padding stays in place
    idx = idx.view(*idx.shape, *([1] * (x.ndim - 2))).expand_as(x)
    return x.gather(1, idx)


def _one_direction(layer: nn.RNNBase, x: Tensor, suffix: str) -> dict[str, Tensor]:
    """Unroll one direction of a single-layer module over x (B, T, F), reading t = 0 .. T-1."""
    w_ih = getattr(layer, f"weight_ih_l0{suffix}")
    w_hh = getattr(layer, f"weight_hh_l0{suffix}")
    b_ih = getattr(layer, f"bias_ih_l0{suffix}", None) if layer.bias else None
    b_hh = getattr(layer, f"bias_hh_l0{suffix}", None) if layer.bias else None
    b, t, _ = x.shape
    hsize = layer.hidden_size
    xp = F.linear(x, w_ih, b_ih)  # (B, T, G*H): all input projections at once
    h = x.new_zeros(b, hsize)
    c = x.new_zeros(b, hsize)
    names = ("h",) + GATES[_cell_name(layer)]
    rec: dict[str, list[Tensor]] = {n: [] for n in names}
    for step in range(t):
        hp = F.linear(h, w_hh, b_hh)  # (B, G*H)
        if isinstance(layer, nn.LSTM):
            gi, gf, gg, go = (xp[:, step] + hp).chunk(4, dim=-1)
            i, f, g, o = torch.sigmoid(gi), torch.sigmoid(gf), torch.tanh(gg), torch.sigmoid(go)
            c = f * c + i * g
            h = o * torch.tanh(c)
            vals = (h, i, f, g, o, c)
        elif isinstance(layer, nn.GRU):
            xr, xz, xn = xp[:, step].chunk(3, dim=-1)
            hr, hz, hn = hp.chunk(3, dim=-1)
            r = torch.sigmoid(xr + hr)
            z = torch.sigmoid(xz + hz)
            n = torch.tanh(xn + r * hn)  # PyTorch's GRU: the reset gate scales W_hn h + b_hn
            h = (1 - z) * n + z * h
            vals = (h, r, z, n)
        else:
            pre = xp[:, step] + hp
            h = torch.tanh(pre) if layer.nonlinearity == "tanh" else torch.relu(pre)
            vals = (h, pre)
        for name, v in zip(names, vals):
            rec[name].append(v)
    return {n: torch.stack(v, dim=1) for n, v in rec.items()}  # each (B, T, H)


def _cell_name(layer: nn.Module) -> str:
    if isinstance(layer, nn.LSTM):
        return "lstm"
    if isinstance(layer, nn.GRU):
        return "gru"
    if isinstance(layer, nn.RNN):
        return "rnn"
    raise TypeError(f"expected nn.RNN, nn.LSTM or nn.GRU, got {type(layer).__name__}")


@torch.no_grad()
def recurrent_gates(layer: nn.RNNBase, x: Tensor, lengths: Tensor | None = None) -> dict[str, Tensor]:
    """Recompute a single-layer recurrent module's states and gates from its weights.

    Uses PyTorch's exact equations and weight-block order (LSTM ``i, f, g, o``; GRU
    ``r, z, n`` with ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``), zero initial
    states, and the ``_reverse`` weights for the backward direction.

    Args:
        layer: ``nn.RNN`` (tanh or relu), ``nn.LSTM`` (no ``proj_size``) or ``nn.GRU``
            with ``num_layers=1``, batch-first or not.
        x: the layer's input, always (B, T, F) here.
        lengths: valid steps per sequence (B,), as given to ``pack_padded_sequence``:
            the backward direction then starts at each sequence's own last step, and
            every value at a padded step is 0.

    Returns:
        ``{"fwd": h, "fwd:gate_i": ..., "bwd": h, ...}``: per direction the hidden
        states (B, T, H) and the entries of :data:`GATES` for the cell, each (B, T, H).
    """
    cell = _cell_name(layer)
    if layer.num_layers != 1:
        raise ValueError(f"recurrent_gates reads one layer; got num_layers={layer.num_layers}")
    if cell == "lstm" and layer.proj_size > 0:
        raise ValueError("recurrent_gates does not support LSTM projections (proj_size > 0)")
    out: dict[str, Tensor] = {}
    dirs = [("fwd", "")] + ([("bwd", "_reverse")] if layer.bidirectional else [])
    mask = None
    if lengths is not None:
        mask = (torch.arange(x.shape[1], device=x.device)[None, :] < lengths.to(x.device)[:, None]).to(x.dtype)
        mask = mask.unsqueeze(-1)  # (B, T, 1)
    for d, suffix in dirs:
        seq = x if d == "fwd" else _time_reverse(x, lengths)
        res = _one_direction(layer, seq, suffix)
        for name, v in res.items():
            if d == "bwd":
                v = _time_reverse(v, lengths)
            if mask is not None:
                v = v * mask
            out[d if name == "h" else f"{d}:{name}"] = v
    return out


# -- the stack -------------------------------------------------------------------------------------


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

    def _run_layer(self, layer: nn.Module, x: Tensor, lengths: Tensor | None) -> Tensor:
        if lengths is None:
            return layer(x)[0]  # (B, T, D*H)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = pad_packed_sequence(layer(packed)[0], batch_first=True, total_length=x.shape[1])
        return out  # (B, T, D*H), zeros at padded steps

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, list[Tensor]]:
        """Run the stack on ``x`` (B, T, F).

        Args:
            x: the input sequence.
            lengths: valid steps per sequence (B,), every one >= 1; the steps after
                them are padding that no direction reads (packed sequences), and the
                outputs there are 0. ``None``: every step is read.

        Returns:
            The last layer's output (B, T, D*H) and the list of every layer's output
            (before inter-layer dropout); direction ``fwd`` is ``[..., :H]``, ``bwd`` ``[..., H:]``.
        """
        outputs: list[Tensor] = []
        for i, layer in enumerate(self):
            if i > 0 and self.dropout > 0:
                x = F.dropout(x, self.dropout, self.training)
            x = self._run_layer(layer, x, lengths)  # (B, T, D*H)
            outputs.append(x)
        return x, outputs

    def forward_intermediates(
        self, x: Tensor, *, prefix: str = "rnn", gates: bool = True, lengths: Tensor | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """:meth:`forward` plus the named states (and gates) of every layer and direction.

        Keys are ``f"{prefix}.{i}:{direction}"`` for the outputs and, with ``gates``,
        ``f"{prefix}.{i}:{direction}:{gate}"`` (see the module docstring). Gates are
        recomputed from each layer's weights on exactly the input that layer read
        (after inter-layer dropout, when training).
        """
        feats: dict[str, Tensor] = {}
        for i, layer in enumerate(self):
            if i > 0 and self.dropout > 0:
                x = F.dropout(x, self.dropout, self.training)
            recomputed = recurrent_gates(layer, x, lengths) if gates else {}
            x = self._run_layer(layer, x, lengths)  # (B, T, D*H)
            for d, t in self.split_directions(x).items():
                feats[f"{prefix}.{i}:{d}"] = t  # (B, T, H)
            for key, v in recomputed.items():
                if ":" in key:  # the recomputed states themselves would duplicate the outputs
                    feats[f"{prefix}.{i}:{key}"] = v  # (B, T, H)
        return x, feats

    def intermediate_info(
        self, regions: tuple[Box, ...], *, prefix: str = "rnn", gates: bool = True
    ) -> dict[str, Intermediate]:
        """What :meth:`forward_intermediates` returns, same keys and order.

        Args:
            regions: per time step, the input box that step reads (the family knows).
            prefix: as given to :meth:`forward_intermediates`.
            gates: as given to :meth:`forward_intermediates`.
        """
        info: dict[str, Intermediate] = {}
        dirs = ("fwd", "bwd") if self.bidirectional else ("fwd",)
        for i in range(len(self)):
            layer = f"{prefix}.{i}"
            titles = {d: self._title(i, d) for d in dirs}
            for d in dirs:
                info[f"{layer}:{d}"] = Intermediate(
                    "recurrent_state", layer, f"{titles[d]}: hidden state", direction=d, regions=regions
                )
            if gates:
                for d in dirs:
                    for g in GATES[self.cell]:
                        info[f"{layer}:{d}:{g}"] = gate_info(
                            g, layer=layer, title=titles[d], direction=d, regions=regions
                        )
        return info

    def _title(self, i: int, direction: str) -> str:
        title = f"{CELL_TITLES[self.cell]} layer {i + 1}"
        if self.bidirectional:
            title += ", forward" if direction == "fwd" else ", backward"
        return title

    def split_directions(self, out: Tensor) -> dict[str, Tensor]:
        """``{"fwd": (B, T, H)[, "bwd": (B, T, H)]}`` of one layer's output."""
        h = self.hidden_size
        if not self.bidirectional:
            return {"fwd": out}
        return {"fwd": out[..., :h], "bwd": out[..., h:]}


def pool_sequence(
    out: Tensor, pool: str, hidden_size: int, bidirectional: bool, lengths: Tensor | None = None
) -> Tensor:
    """Reduce a recurrent output (B, T, D*H) over time to (B, D*H).

    ``last`` takes each direction's final state: step T-1 of the forward direction
    and step 0 of the backward one (it has read the whole sequence by then), i.e.
    the last layer's ``h_n``. ``mean`` / ``max`` reduce over all steps. With
    ``lengths`` (B,) only each sequence's valid steps count.
    """
    if lengths is not None:
        lengths = lengths.to(out.device)
        valid = torch.arange(out.shape[1], device=out.device)[None, :] < lengths[:, None]  # (B, T)
        if pool == "mean":
            return (out * valid.unsqueeze(-1)).sum(1) / lengths.clamp(min=1).unsqueeze(-1).to(out.dtype)
        if pool == "max":
            return out.masked_fill(~valid.unsqueeze(-1), float("-inf")).amax(dim=1)
        last = out[torch.arange(out.shape[0], device=out.device), (lengths - 1).clamp(min=0)]  # (B, D*H)
        if not bidirectional:
            return last
        return torch.cat([last[:, :hidden_size], out[:, 0, hidden_size:]], dim=-1)
    if pool == "mean":
        return out.mean(dim=1)
    if pool == "max":
        return out.amax(dim=1)
    if not bidirectional:
        return out[:, -1]
    return torch.cat([out[:, -1, :hidden_size], out[:, 0, hidden_size:]], dim=-1)  # (B, 2H)
