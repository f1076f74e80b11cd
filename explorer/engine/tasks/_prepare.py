"""What the three tasks' data preparation shares: input geometry, loading, statistics.

A task's ``prepare`` decides which samples it keeps and what their targets become; the
steps around that are the same for every task and live here:

1. :class:`Geometry`: the input height/width/colour the run uses, from a trained run's
   :class:`~explorer.engine.preprocess.Preprocess` or derived from the images
   (:func:`fixed_geometry` for one size, :func:`line_geometry` for text lines that keep
   their aspect ratio at a fixed height);
2. :func:`load`: decode every file once (unusable files become problem lines), true widths;
3. :func:`fit_preprocess`: the normalisation statistics of the training images.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from explorer.data import Sample, infer_image_size, load_images

from ..config import ConfigError, DataConfig
from ..preprocess import Preprocess, channel_stats, valid_pixels

__all__ = ["MIN_HEIGHT", "MAX_HEIGHT", "MAX_WIDTH_FACTOR", "Geometry", "Images", "fit_preprocess", "load"]

MIN_HEIGHT, MAX_HEIGHT = 16, 64  # derived line height is clamped to this range
MAX_WIDTH_FACTOR = 40  # widest accepted line: 40 x its height (longer ones are squeezed)


@dataclass(frozen=True)
class Geometry:
    """The input contract's shape part: every image becomes (height, width or its own, C)."""

    height: int
    width: int | None  # None: keep the aspect ratio (variable width, at most max_width)
    color: str
    resize: str
    max_width: int | None = None

    @classmethod
    def of(cls, pre: Preprocess) -> Geometry:
        """A trained run's geometry (evaluation, resuming)."""
        return cls(pre.height, pre.width, pre.color, pre.resize, pre.max_width)

    @classmethod
    def fixed(cls, samples: Sequence[Sample], cfg: DataConfig) -> Geometry:
        """One size for all images: the configured one, else the images' typical size."""
        height, width = cfg.height, cfg.width
        if height is None or width is None:
            h, w = infer_image_size(samples)
            height, width = height or h, width or w
        return cls(height, width, cfg.color, cfg.resize)

    @classmethod
    def line(cls, samples: Sequence[Sample], cfg: DataConfig, median_height: int | None = None) -> Geometry:
        """Text lines: a fixed height (configured, else the median clamped to
        [MIN_HEIGHT, MAX_HEIGHT]), the width following each image unless configured."""
        height = cfg.height
        if height is None:
            h = (
                median_height
                if median_height is not None
                else infer_image_size(samples, min_side=1, max_side=1 << 20)[0]
            )
            height = min(max(h, MIN_HEIGHT), MAX_HEIGHT)
        return cls(height, cfg.width, cfg.color, cfg.resize, MAX_WIDTH_FACTOR * height)


@dataclass
class Images:
    """Decoded images of the usable samples (input order) with their true widths."""

    samples: list[Sample]
    images: torch.Tensor  # uint8 (N, H, W, C), variable-width rows right-padded to the widest
    widths: torch.Tensor  # int64 (N,)
    color: str

    def take(self, ids: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(images cut to the widest of them, their widths) of the samples ``ids``."""
        t = torch.from_numpy(np.asarray(ids, dtype=np.int64))
        w = self.widths[t]
        return self.images[t][:, :, : int(w.max()) if len(t) else 1].contiguous(), w.contiguous()


def load(
    samples: Sequence[Sample],
    geometry: Geometry,
    *,
    origin: str,
    max_pixels: int,
    problems: list[str],
    progress: Callable[[int, int], None] | None = None,
    empty_ok: bool = False,
) -> Images:
    """Decode ``samples`` with ``geometry``; unusable files are appended to ``problems``.

    Raises:
        ConfigError: not one file is usable (unless ``empty_ok``).
    """
    loaded = load_images(
        samples,
        height=geometry.height,
        width=geometry.width,
        color=geometry.color,
        resize=geometry.resize,
        max_pixels=max_pixels,
        progress=progress,
        max_width=geometry.max_width or MAX_WIDTH_FACTOR * geometry.height,
    )
    problems += [str(p) for p in loaded.problems]
    if not loaded.samples and not empty_ok:
        raise ConfigError("data.source", f"no usable image in {origin} ({len(problems)} unusable files)")
    n, full = len(loaded.samples), loaded.images.shape[2]
    widths = torch.from_numpy(loaded.widths) if loaded.widths is not None else torch.full((n,), full, dtype=torch.int64)
    return Images(list(loaded.samples), torch.from_numpy(loaded.images), widths, loaded.color)


def fit_preprocess(images: Images, geometry: Geometry, resize: str, train_idx: np.ndarray) -> Preprocess:
    """The input contract of a new run: geometry plus the training pixels' mean and std
    (padding excluded)."""
    mean, std = channel_stats(valid_pixels(images.images.numpy(), images.widths.numpy(), train_idx))
    variable = geometry.width is None
    return Preprocess(
        channels=int(images.images.shape[-1]),
        color=images.color,
        height=geometry.height,
        width=geometry.width,
        resize=resize,
        mean=mean,
        std=std,
        fit="keep_aspect" if variable else "stretch",
        max_width=geometry.max_width if variable else None,
    )
