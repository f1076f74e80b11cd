"""Family ``conv_rnn``: convolutional recurrent cells reading the image strip by strip.

A convolutional recurrent cell is an RNN/GRU/LSTM whose matrix products are
convolutions, so its input and hidden state are feature maps (B, C, h, w) and its
state keeps the spatial layout (Shi et al. 2015, ConvLSTM; Ballas et al. 2016, ConvGRU).
The cells follow PyTorch's own equations and gate order, ``*`` being a 2-D
convolution with "same" padding (with a 1x1 kernel on a 1x1 map a cell computes
exactly ``nn.RNNCell`` / ``nn.GRUCell`` / ``nn.LSTMCell``):

* :class:`ConvRNNCell`:  ``h_t = tanh(W_x * x_t + b_x + W_h * h_{t-1} + b_h)``
* :class:`ConvGRUCell`:  ``r, z = sigmoid(W_xr * x + b_xr + W_hr * h + b_hr), sigmoid(...)``,
  ``n = tanh(W_xn * x + b_xn + r (W_hn * h + b_hn))``, ``h_t = (1 - z) n + z h_{t-1}``
* :class:`ConvLSTMCell`: ``i, f, g, o`` as in ``nn.LSTM``; ``c_t = f c + i g``, ``h_t = o tanh(c_t)``

The image becomes a sequence (``split``): ``rows`` = horizontal strips ``step`` px
high, read top to bottom, each step's input (B, C, step, W); ``tiles`` = square
``step`` px tiles in raster order. The image is zero-padded at the bottom (and
right) to whole strips/tiles. Each step's input first passes an optional conv stem
(``stem``; the same weights for every step), then the stacked cells (``cells.0``
...; layer i reads layer i-1's states). The head classifies the last layer's final
state (global average pool + linear).

Intermediates:

* ``stem`` (B, S, rows * h', cols * w'): the stem's output for every step, laid
  out at the steps' positions in the image (a feature map of the whole image);
* ``cells.N`` (B, T, Hc, h', w'): layer N's hidden state after every step;
* with ``gates=True`` (the default): ``cells.N:gate_r`` / ``gate_z`` / ``gate_n`` (GRU),
  ``cells.N:gate_i`` / ``gate_f`` / ``gate_g`` / ``gate_o`` and ``cells.N:cell`` (LSTM),
  ``cells.N:preact`` (ConvRNN), each (B, T, Hc, h', w').
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ._base import ACTIVATIONS, ExplorerModel, head_dropout_param, init_param, init_weights, make_activation
from ._intermediates import Box, Intermediate
from ._recurrent import gate_info
from ._registry import register_model
from ._seqhead import linear_head
from ._spec import ParamError, Params, param

__all__ = [
    "CONV_CELLS",
    "ConvGRUCell",
    "ConvLSTMCell",
    "ConvRNN",
    "ConvRNNCell",
    "ConvRNNParams",
    "ConvRecurrentCell",
]

# Longer sequences than this are slow to unroll step by step and hard to learn.
_MAX_STEPS = 256

State = tuple[Tensor, ...]
_SPLIT_WORD = {"rows": "strip", "tiles": "tile"}
_CELL_TITLES = {"rnn": "ConvRNN", "gru": "ConvGRU", "lstm": "ConvLSTM"}


# -- cells ---------------------------------------------------------------------------------------


class ConvRecurrentCell(nn.Module):
    """Base of the convolutional cells: ``input_conv`` (W_x, b_x) and ``hidden_conv`` (W_h, b_h).

    Both convolutions produce all gate blocks at once, in PyTorch's order, so the
    input projections of a whole sequence are computed in one batched convolution
    before the step loop (as cuDNN does for ``nn.LSTM``).

    Args:
        in_channels: channels of the input maps.
        hidden_channels: channels of the hidden state (``Hc``).
        kernel_size: odd square kernel of both convolutions.
    """

    blocks: ClassVar[int] = 1
    #: Names of the values :meth:`step` returns besides the hidden state, in order.
    gate_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd to keep the map size, got {kernel_size}")
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.kernel_size = kernel_size
        pad = kernel_size // 2
        self.input_conv = nn.Conv2d(in_channels, self.blocks * hidden_channels, kernel_size, padding=pad)
        self.hidden_conv = nn.Conv2d(hidden_channels, self.blocks * hidden_channels, kernel_size, padding=pad)

    def zero_state(self, like: Tensor) -> State:
        """Zero state for an input projection ``like`` (B, blocks*Hc, h, w)."""
        b, _, h, w = like.shape
        return (like.new_zeros(b, self.hidden_channels, h, w),)

    def step(self, xp: Tensor, state: State) -> tuple[State, tuple[Tensor, ...]]:
        """One step from the input projection ``xp`` = W_x * x_t + b_x.

        Returns the new state (its first entry is h_t) and the values named by :attr:`gate_names`.
        """
        raise NotImplementedError

    def forward(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """One step on an input map x (B, C, h, w): (h_t, new state)."""
        xp = self.input_conv(x)  # (B, blocks*Hc, h, w)
        state = self.zero_state(xp) if state is None else state
        new, _ = self.step(xp, state)
        return new[0], new

    def sequence(self, xs: Tensor, *, gates: bool = False) -> tuple[Tensor, dict[str, Tensor]]:
        """Read a sequence xs (B, T, C, h, w) from a zero state.

        Returns:
            Hidden states (B, T, Hc, h, w) and, with ``gates``, ``{name: (B, T, Hc, h, w)}``.
        """
        b, t = xs.shape[:2]
        xp = self.input_conv(xs.flatten(0, 1))  # (B*T, blocks*Hc, h, w): all steps at once
        xp = xp.reshape(b, t, *xp.shape[1:])  # (B, T, blocks*Hc, h, w)
        state = self.zero_state(xp[:, 0])
        hs: list[Tensor] = []
        rec: list[tuple[Tensor, ...]] = []
        for i in range(t):
            state, g = self.step(xp[:, i], state)
            hs.append(state[0])
            if gates:
                rec.append(g)
        out = torch.stack(hs, dim=1)  # (B, T, Hc, h, w)
        named = {n: torch.stack([g[k] for g in rec], dim=1) for k, n in enumerate(self.gate_names)} if gates else {}
        return out, named

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.hidden_channels}, kernel_size={self.kernel_size}"


class ConvRNNCell(ConvRecurrentCell):
    """``h_t = tanh(W_x * x_t + b_x + W_h * h_{t-1} + b_h)``; gate value: ``preact``."""

    blocks = 1
    gate_names = ("preact",)

    def step(self, xp: Tensor, state: State) -> tuple[State, tuple[Tensor, ...]]:
        pre = xp + self.hidden_conv(state[0])  # (B, Hc, h, w)
        return (torch.tanh(pre),), (pre,)


class ConvGRUCell(ConvRecurrentCell):
    """PyTorch's GRU with convolutions; gate values ``gate_r``, ``gate_z``, ``gate_n``."""

    blocks = 3
    gate_names = ("gate_r", "gate_z", "gate_n")

    def step(self, xp: Tensor, state: State) -> tuple[State, tuple[Tensor, ...]]:
        h = state[0]
        xr, xz, xn = xp.chunk(3, dim=1)
        hr, hz, hn = self.hidden_conv(h).chunk(3, dim=1)
        r = torch.sigmoid(xr + hr)
        z = torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        h = (1 - z) * n + z * h  # (B, Hc, h, w)
        return (h,), (r, z, n)


class ConvLSTMCell(ConvRecurrentCell):
    """PyTorch's LSTM with convolutions; gate values ``gate_i/f/g/o`` and ``cell`` (c_t).

    State: ``(h, c)``.
    """

    blocks = 4
    gate_names = ("gate_i", "gate_f", "gate_g", "gate_o", "cell")

    def zero_state(self, like: Tensor) -> State:
        b, _, h, w = like.shape
        z = like.new_zeros(b, self.hidden_channels, h, w)
        return (z, z)

    def step(self, xp: Tensor, state: State) -> tuple[State, tuple[Tensor, ...]]:
        h, c = state
        gi, gf, gg, go = (xp + self.hidden_conv(h)).chunk(4, dim=1)
        i, f, g, o = torch.sigmoid(gi), torch.sigmoid(gf), torch.tanh(gg), torch.sigmoid(go)
        c = f * c + i * g
        h = o * torch.tanh(c)  # (B, Hc, h, w)
        return (h, c), (i, f, g, o, c)


CONV_CELLS: dict[str, type[ConvRecurrentCell]] = {"rnn": ConvRNNCell, "gru": ConvGRUCell, "lstm": ConvLSTMCell}


# -- the model -----------------------------------------------------------------------------------


@dataclass
class ConvRNNParams(Params):
    split: str = param(
        "rows",
        help="How the image becomes a sequence: 'rows' = horizontal strips read top to bottom, "
        "'tiles' = square tiles read in raster order (left to right, then down).",
        choices=("rows", "tiles"),
    )
    step: int = param(
        4, help="Height of each strip (split=rows) or side of each tile (split=tiles), in pixels.", min=1, max=1024
    )
    cell: str = param(
        "gru",
        help="Convolutional cell: 'rnn' = ConvRNN (tanh), 'gru' = ConvGRU, 'lstm' = ConvLSTM.",
        choices=tuple(CONV_CELLS),
    )
    hidden_channels: tuple[int, ...] = param(
        (48,), help="Hidden-state channels of each stacked cell; one layer per value.", min=1, max=512
    )
    kernel_size: int = param(
        3, help="Kernel of the cells' input and hidden convolutions (pixels).", choices=(1, 3, 5, 7)
    )
    stem: int = param(
        16,
        help="Channels of a 3x3 conv stem (conv, batch norm, activation) applied to every strip/tile before "
        "the cells; 0 = the cells read the pixels.",
        min=0,
        max=512,
    )
    stem_pool: bool = param(
        True,
        help="2x2 max pool after the stem (when stem > 0): the cells work on half-size maps (rounded up), "
        "about 4x faster.",
    )
    activation: str = param("relu", help="Non-linearity of the stem.", choices=ACTIVATIONS)
    head_dropout: float = head_dropout_param()
    init: str = init_param()

    def check(self, *, in_channels: int, image_size: tuple[int, int | None]) -> None:
        h, w = image_size
        if self.step > h:
            raise ParamError("step", f"{self.step} px strips/tiles are taller than the {h} px image; use step <= {h}")
        if self.split == "tiles" and w is not None and self.step > w:
            raise ParamError("step", f"{self.step} px tiles are wider than the {w} px image; use step <= {w}")
        if self.stem_pool and self.stem > 0:
            if self.step < 2:
                raise ParamError("stem_pool", f"halves each strip/tile, which needs step >= 2, got {self.step}")
            if self.split == "rows" and w is not None and w < 2:
                raise ParamError("stem_pool", f"halves each strip, which needs an image at least 2 px wide, got {w}")
        steps = -(-h // self.step) * (-(-w // self.step) if self.split == "tiles" and w is not None else 1)
        if steps > _MAX_STEPS:
            raise ParamError("step", f"{steps} steps is more than {_MAX_STEPS}; use a larger step")


class ConvRNN(ExplorerModel):
    """Strips/tiles -> [``stem``] -> ``cells.0`` ... ``cells.N`` -> final state -> ``head``."""

    def __init__(
        self, p: ConvRNNParams, *, in_channels: int, num_outputs: int, image_size: tuple[int, int | None]
    ) -> None:
        super().__init__()
        self.params = p
        prev = in_channels
        self.stem: nn.Module | None = None
        if p.stem > 0:
            layers: list[nn.Module] = [
                nn.Conv2d(in_channels, p.stem, 3, padding=1, bias=False),
                nn.BatchNorm2d(p.stem),
                make_activation(p.activation),
            ]
            if p.stem_pool:  # only with a stem: there is nothing to pool otherwise
                layers.append(nn.MaxPool2d(2, ceil_mode=True))  # an odd strip keeps its last row
            self.stem = nn.Sequential(*layers)
            prev = p.stem
        cells = []
        for ch in p.hidden_channels:
            cells.append(CONV_CELLS[p.cell](prev, ch, p.kernel_size))
            prev = ch
        self.cells = nn.ModuleList(cells)
        self.head = linear_head(prev, num_outputs, p.head_dropout, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        init_weights(self, p.init)

    def steps(self, x: Tensor) -> tuple[Tensor, int, int]:
        """Image (B, C, H, W) -> step inputs (B, T, C, h, w), grid rows, grid columns.

        ``rows``: T = ceil(H / step) strips of (step, W); ``tiles``: raster-ordered
        (step, step) tiles. Zero padding completes the last strip/tile.
        """
        p = self.params
        b, c, h, w = x.shape
        s = p.step
        rows = -(-h // s)
        cols = -(-w // s) if p.split == "tiles" else 1
        tw = s if p.split == "tiles" else w
        pad_h, pad_w = rows * s - h, cols * tw - w
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        t = x.reshape(b, c, rows, s, cols, tw).permute(0, 2, 4, 1, 3, 5)  # (B, rows, cols, C, s, tw)
        return t.reshape(b, rows * cols, c, s, tw), rows, cols

    def _encode(self, x: Tensor, feats: dict[str, Tensor] | None, gates: bool) -> Tensor:
        b = x.shape[0]
        xs, rows, cols = self.steps(x)  # (B, T, C, h, w)
        if self.stem is not None:
            f = self.stem(xs.flatten(0, 1))  # (B*T, S, h', w')
            if feats is not None:
                _, c, h, w = f.shape
                m = f.reshape(b, rows, cols, c, h, w).permute(0, 3, 1, 4, 2, 5)  # (B, S, rows, h', cols, w')
                feats["stem"] = m.reshape(b, c, rows * h, cols * w)
            xs = f.reshape(b, rows * cols, *f.shape[1:])  # (B, T, S, h', w')
        for i, cell in enumerate(self.cells):
            xs, named = cell.sequence(xs, gates=gates and feats is not None)  # (B, T, Hc, h', w')
            if feats is not None:
                feats[f"cells.{i}"] = xs
                for name, v in named.items():
                    feats[f"cells.{i}:{name}"] = v  # (B, T, Hc, h', w')
        return xs[:, -1]  # (B, Hc, h', w'): the final state

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self._encode(x, None, False))  # (B, num_outputs)

    def forward_intermediates(self, x: Tensor, *, gates: bool = True) -> tuple[Tensor, dict[str, Tensor]]:
        feats: dict[str, Tensor] = {}
        last = self._encode(x, feats, gates)
        return self.head(last), feats

    def regions(self, image_size: tuple[int, int]) -> tuple[Box, ...]:
        """Per step, the strip (split=rows) or tile (split=tiles) it reads, clipped to the image."""
        p = self.params
        h, w = image_size
        s = p.step
        rows = -(-h // s)
        if p.split == "rows":
            return tuple((r * s, 0, min((r + 1) * s, h), w) for r in range(rows))
        cols = -(-w // s)
        return tuple((r * s, c * s, min((r + 1) * s, h), min((c + 1) * s, w)) for r in range(rows) for c in range(cols))

    def intermediate_info(self, image_size: tuple[int, int], *, gates: bool = True) -> dict[str, Intermediate]:
        """``stem`` (a feature map of the whole image), then per layer its spatial states and gates."""
        p = self.params
        regions = self.regions(image_size)
        info: dict[str, Intermediate] = {}
        if self.stem is not None:
            info["stem"] = Intermediate("feature_map", "stem", f"conv stem (every {_SPLIT_WORD[p.split]})")
        for i, cell in enumerate(self.cells):
            layer, title = f"cells.{i}", f"{_CELL_TITLES[p.cell]} layer {i + 1}"
            info[layer] = Intermediate("spatial_state", layer, f"{title}: hidden state", regions=regions)
            if gates:
                for g in cell.gate_names:
                    info[f"{layer}:{g}"] = gate_info(g, layer=layer, title=title, regions=regions, spatial=True)
        return info

    def output_info(self, image_size: tuple[int, int]) -> Intermediate:
        return Intermediate("logits", "head", "class scores")


@register_model(
    "conv_rnn",
    params=ConvRNNParams,
    description="Convolutional recurrent cells (ConvRNN / ConvGRU / ConvLSTM) reading the image as a sequence "
    "of strips or tiles, with spatial hidden states.",
    tasks=("classify",),
)
def _build_conv_rnn(
    p: ConvRNNParams, *, in_channels: int, num_outputs: int, image_size: tuple[int, int | None]
) -> ConvRNN:
    return ConvRNN(p, in_channels=in_channels, num_outputs=num_outputs, image_size=image_size)
