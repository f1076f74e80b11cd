"""Family ``patch_rnn``: a shared CNN on every tile, a GRU/LSTM over the tile sequence.

The time-distributed design: the image is cut into square tiles (``tile`` px, every
``stride`` px; overlapping when ``stride < tile``), each tile is resized to
``tile_input`` px when that differs, and one small CNN (``cnn.0`` ...; the same
weights for every tile) turns each tile into a feature vector (its last feature map,
flattened). The vectors, in raster order (top row left to right, then the next
row), are a sequence read by a recurrent stack (``rnn.0`` ...); the final (or
pooled) state feeds the classifier ``head``.

The image is padded with zeros at the bottom and right, when needed, so the tiles
cover every pixel: ``ceil((H - tile) / stride) + 1`` tile rows, likewise columns.

Intermediates:

* ``cnn.N`` (B, C_N, rows * h_N, cols * w_N): conv stage N's output for every tile,
  the tiles' maps laid out side by side at their grid positions (a mosaic; with
  ``stride == tile`` it is a plain feature map of the whole image);
* ``rnn.N:fwd`` / ``rnn.N:bwd`` (B, T, hidden): the state after every tile, T = rows * cols;
* with ``gates=True`` (the default) ``rnn.N:D:gate_*`` and ``rnn.N:D:cell`` as in
  :mod:`models._recurrent`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor, nn
from torch.nn import functional as F

from ._base import ACTIVATIONS, ExplorerModel, head_dropout_param, init_param, init_weights, make_activation
from ._intermediates import Box, Intermediate
from ._registry import register_model
from ._seqhead import Reading, RecurrentParams, cell_param, linear_head, pooled_logits, recurrent_stack
from ._spec import ParamError, Params, param

__all__ = ["PatchRNN", "PatchRNNParams", "TileBlock", "tile_grid"]

# More tiles than this makes a sequence that is slow to read and hard to learn from.
_MAX_TILES = 1024


def tile_grid(size: int, tile: int, stride: int) -> int:
    """Tiles along one side of ``size`` px, after padding so the last tile reaches the edge."""
    return math.ceil(max(size - tile, 0) / stride) + 1


@dataclass
class _Tiles(Params):
    """How patch_rnn cuts and encodes tiles: the fields listed before the recurrent block."""

    tile: int = param(8, help="Side of the square tiles the image is cut into (pixels).", min=1, max=1024)
    stride: int = param(
        0,
        help="Step between neighbouring tiles (pixels); 0 = the tile size (tiles touch), smaller = overlapping.",
        min=0,
        max=1024,
    )
    tile_input: int = param(
        0,
        help="Side every tile is resized to before the shared CNN (pixels); 0 = keep the tile size.",
        min=0,
        max=512,
    )
    channels: tuple[int, ...] = param(
        (16, 32),
        help="Output channels of each stage of the shared tile CNN (3x3 conv, batch norm, activation, 2x2 "
        "max pool); one stage per value.",
        min=1,
        max=512,
    )
    activation: str = param("relu", help="Non-linearity after every conv of the tile CNN.", choices=ACTIVATIONS)


@dataclass
class PatchRNNParams(RecurrentParams, _Tiles):
    """Tiles and tile CNN, the recurrent block (:class:`RecurrentParams`, GRU or LSTM), head."""

    reading: ClassVar[Reading] = Reading("tile", "tiles", "Also read the tiles in reverse raster order")

    cell: str = cell_param("gru", ("gru", "lstm"))
    head_dropout: float = head_dropout_param()
    init: str = init_param()

    @property
    def step(self) -> int:
        return self.stride or self.tile

    @property
    def cnn_input(self) -> int:
        return self.tile_input or self.tile

    def check(self, *, in_channels: int, image_size: tuple[int, int | None]) -> None:
        h, w = image_size
        if self.tile > h or (w is not None and self.tile > w):
            raise ParamError(
                "tile",
                f"{self.tile} px tiles do not fit a {h} x {w if w is not None else 'any'} image; "
                f"use tile <= {min(h, w) if w is not None else h}",
            )
        if self.step > self.tile:
            raise ParamError(
                "stride",
                f"{self.stride} is larger than the tile ({self.tile} px) and would skip pixels; "
                f"valid range [0, {self.tile}]",
            )
        stages = len(self.channels)
        if self.cnn_input < 2**stages:
            name = "tile_input" if self.tile_input else "tile"
            raise ParamError(
                name,
                f"the tile CNN's {stages} pooling stages need tiles of at least {2**stages} px, got "
                f"{self.cnn_input}; use larger tiles, tile_input, or fewer channels stages",
            )
        if w is not None:
            n = tile_grid(h, self.tile, self.step) * tile_grid(w, self.tile, self.step)
            if n > _MAX_TILES:
                raise ParamError(
                    "stride" if self.stride else "tile",
                    f"{n} tiles is more than {_MAX_TILES}; use larger tiles or a larger stride",
                )
        super().check(in_channels=in_channels, image_size=image_size)


class TileBlock(nn.Sequential):
    """3x3 conv -> batch norm -> activation -> 2x2 max pool, applied to every tile."""

    def __init__(self, in_ch: int, out_ch: int, *, activation: str) -> None:
        super().__init__(
            nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            make_activation(activation),
            nn.MaxPool2d(2),
        )


class PatchRNN(ExplorerModel):
    """Tiles -> shared ``cnn.N`` -> tile vectors in raster order -> ``rnn.N`` -> pool -> ``head``."""

    def __init__(
        self, p: PatchRNNParams, *, in_channels: int, num_outputs: int, image_size: tuple[int, int | None]
    ) -> None:
        super().__init__()
        self.params = p
        blocks = []
        prev = in_channels
        for ch in p.channels:
            blocks.append(TileBlock(prev, ch, activation=p.activation))
            prev = ch
        self.cnn = nn.Sequential(*blocks)
        side = p.cnn_input // 2 ** len(p.channels)
        self.rnn = recurrent_stack(p, prev * side * side)
        self.head = linear_head(self.rnn.output_size, num_outputs, p.head_dropout)
        init_weights(self, p.init)

    def tiles(self, x: Tensor) -> tuple[Tensor, int, int]:
        """Image (B, C, H, W) -> tiles (B, T, C, t, t) in raster order, tile rows, tile columns.

        ``t`` is ``tile_input``; the image is zero-padded at the bottom/right so the
        tiles cover it.
        """
        p = self.params
        b, c, h, w = x.shape
        rows, cols = tile_grid(h, p.tile, p.step), tile_grid(w, p.tile, p.step)
        pad_h, pad_w = (rows - 1) * p.step + p.tile - h, (cols - 1) * p.step + p.tile - w
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        t = x.unfold(2, p.tile, p.step).unfold(3, p.tile, p.step)  # (B, C, rows, cols, tile, tile)
        t = t.permute(0, 2, 3, 1, 4, 5).reshape(b, rows * cols, c, p.tile, p.tile)  # (B, T, C, tile, tile)
        if p.cnn_input != p.tile:
            t = F.interpolate(
                t.reshape(b * rows * cols, c, p.tile, p.tile),
                size=(p.cnn_input, p.cnn_input),
                mode="bilinear",
                align_corners=False,
                antialias=p.cnn_input < p.tile,
            ).reshape(b, rows * cols, c, p.cnn_input, p.cnn_input)
        return t, rows, cols

    @staticmethod
    def mosaic(maps: Tensor, batch: int, rows: int, cols: int) -> Tensor:
        """Per-tile maps (B*T, C, h, w) -> one (B, C, rows*h, cols*w) map, tiles at their grid positions."""
        _, c, h, w = maps.shape
        m = maps.reshape(batch, rows, cols, c, h, w).permute(0, 3, 1, 4, 2, 5)  # (B, C, rows, h, cols, w)
        return m.reshape(batch, c, rows * h, cols * w)

    def _sequence(self, x: Tensor, feats: dict[str, Tensor] | None) -> Tensor:
        b = x.shape[0]
        tiles, rows, cols = self.tiles(x)  # (B, T, C, t, t)
        f = tiles.flatten(0, 1)  # (B*T, C, t, t)
        for i, block in enumerate(self.cnn):
            f = block(f)  # (B*T, C_i, h_i, w_i)
            if feats is not None:
                feats[f"cnn.{i}"] = self.mosaic(f, b, rows, cols)
        return f.reshape(b, rows * cols, -1)  # (B, T, C'*h'*w')

    def forward(self, x: Tensor) -> Tensor:
        seq = self._sequence(x, None)  # (B, T, F)
        out, _ = self.rnn(seq)  # (B, T, D*H)
        return pooled_logits(self.head, out, self.params)  # (B, num_outputs)

    def forward_intermediates(self, x: Tensor, *, gates: bool = True) -> tuple[Tensor, dict[str, Tensor]]:
        feats: dict[str, Tensor] = {}
        seq = self._sequence(x, feats)  # (B, T, F)
        out, states = self.rnn.forward_intermediates(seq, gates=gates)  # (B, T, D*H)
        feats.update(states)
        return pooled_logits(self.head, out, self.params), feats

    def regions(self, image_size: tuple[int, int]) -> tuple[Box, ...]:
        """Per step, the box of the tile it reads (raster order), clipped to the image: a tile
        reaching into the bottom/right zero padding reads only its part inside the image."""
        p = self.params
        h, w = image_size
        rows, cols = tile_grid(h, p.tile, p.step), tile_grid(w, p.tile, p.step)
        return tuple(
            (r * p.step, c * p.step, min(r * p.step + p.tile, h), min(c * p.step + p.tile, w))
            for r in range(rows)
            for c in range(cols)
        )

    def intermediate_info(self, image_size: tuple[int, int], *, gates: bool = True) -> dict[str, Intermediate]:
        """``cnn.N`` tile mosaics (feature maps), then the recurrent states and gates, one step per tile."""
        info = {
            f"cnn.{i}": Intermediate("feature_map", f"cnn.{i}", f"tile CNN stage {i + 1} (all tiles)")
            for i in range(len(self.cnn))
        }
        info.update(self.rnn.intermediate_info(self.regions(image_size), gates=gates))
        return info

    def output_info(self, image_size: tuple[int, int]) -> Intermediate:
        return Intermediate("logits", "head", "class scores")


@register_model(
    "patch_rnn",
    params=PatchRNNParams,
    description="The image cut into tiles, one shared small CNN per tile, a GRU/LSTM reading the tiles in "
    "raster order (time-distributed CNN + RNN).",
    tasks=("classify",),
)
def _build_patch_rnn(
    p: PatchRNNParams, *, in_channels: int, num_outputs: int, image_size: tuple[int, int | None]
) -> PatchRNN:
    return PatchRNN(p, in_channels=in_channels, num_outputs=num_outputs, image_size=image_size)
