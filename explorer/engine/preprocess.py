"""The model's input contract: from an image file to the exact tensor the model saw.

A :class:`Preprocess` is written into every run's ``config.json`` (and beside every
export) so that any client can reproduce the input from the file alone:
decode -> channels -> resize to (height, width) -> x * scale -> (x - mean) / std.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from explorer.data import DEFAULT_MAX_PIXELS, prepare_image, prepare_line_image, read_image

__all__ = ["Preprocess", "channel_stats", "valid_pixels"]


@dataclass
class Preprocess:
    channels: int  # 1 or 3
    color: str  # "gray" | "rgb"
    height: int
    width: int | None  # None: variable width (sequence models)
    resize: str = "auto"  # "auto" (area when shrinking, else linear) | "linear" | "area"
    scale: float = 1.0 / 255.0
    mean: list[float] = field(default_factory=lambda: [0.0])
    std: list[float] = field(default_factory=lambda: [1.0])
    fit: str = "stretch"  # "stretch": resized to (height, width); "keep_aspect": height fixed, width follows
    max_width: int | None = None  # keep_aspect: wider images are squeezed to this width
    pad: str = "edge"  # keep_aspect batches: right-padded by repeating the last column

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Preprocess:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        p = cls(**known)
        if p.channels not in (1, 3) or len(p.mean) != p.channels or len(p.std) != p.channels:
            raise ValueError(f"preprocess: inconsistent channels/mean/std in {dict(d)}")
        return p

    # -- numpy side (files) -------------------------------------------------------------
    def load_uint8(self, path: str | os.PathLike[str], max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
        """Read one file into the model's uint8 (H, W, C) input. Raises DecodeError."""
        img = read_image(path, max_pixels=max_pixels)
        if self.width is None:
            return prepare_line_image(
                img, channels=self.channels, height=self.height, max_width=self.max_width, resize=self.resize
            )
        return prepare_image(img, channels=self.channels, height=self.height, width=self.width, resize=self.resize)

    # -- torch side (batches) -----------------------------------------------------------
    def to_unit(self, batch: torch.Tensor) -> torch.Tensor:
        """uint8 (B, H, W, C) -> float (B, C, H, W) in [0, 1]."""
        return batch.permute(0, 3, 1, 2).float().mul_(self.scale)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return (x - mean) / std

    def to_tensor(self, batch: torch.Tensor) -> torch.Tensor:
        """uint8 (B, H, W, C) -> normalised float (B, C, H, W), what the model is fed."""
        return self.normalize(self.to_unit(batch))

    def input_shape(self) -> tuple[int, int, int | None]:
        return (self.channels, self.height, self.width)


def channel_stats(images: np.ndarray, scale: float = 1.0 / 255.0) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 (N, H, W, C) images on the scaled range.

    A flat channel (std ~ 0) gets std 1 so normalisation never divides by ~0.
    """
    if images.size == 0:
        c = images.shape[-1] if images.ndim == 4 else 1
        return [0.5] * c, [0.25] * c
    c = images.shape[-1]
    flat = images.reshape(-1, c)
    # float64 accumulation in chunks: exact enough and bounded memory for big sets
    total = np.zeros(c)
    total_sq = np.zeros(c)
    step = 1 << 22
    for i in range(0, flat.shape[0], step):
        chunk = flat[i : i + step].astype(np.float64)
        total += chunk.sum(0)
        total_sq += np.square(chunk).sum(0)
    n = flat.shape[0]
    mean = total / n
    var = np.maximum(total_sq / n - mean**2, 0.0)
    std = np.sqrt(var)
    std = np.where(std * scale < 1e-3, 1.0 / scale, std)
    return [float(m * scale) for m in mean], [float(s * scale) for s in std]


def valid_pixels(images: np.ndarray, widths: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The images' real pixels (padding excluded) as one (1, P, 1, C) array for statistics."""
    parts = [images[i, :, : widths[i]].reshape(-1, images.shape[-1]) for i in idx]
    if not parts:
        return images[:0]
    return np.concatenate(parts)[None, :, None, :]
