"""The captioner's encoder pieces: its own conv stages, torchvision bodies, 2-D positions.

Used by :mod:`models.captioner`: the encoder (``encoder.0`` ...) is either a stack of
:class:`EncoderBlock` or the stages of a torchvision backbone (:func:`backbone_stages`),
and :class:`PositionalEncoding2d` adds a position code to its output grid so that the
attention can tell where a cell is, not only what it shows.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .backbone import Backbone, BackboneParams

__all__ = ["EncoderBlock", "PositionalEncoding2d", "backbone_stages", "sinusoidal_2d"]


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


def backbone_stages(
    arch: str, weights: str, init: str, in_channels: int, image_size: tuple[int, int | None]
) -> tuple[list[nn.Module], dict[str, Any]]:
    """The body of a torchvision model as a list of stages (its classifier dropped), and what
    its weights file contributed."""
    bp = BackboneParams(arch=arch, weights=weights, init=init)
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
