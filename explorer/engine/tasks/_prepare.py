"""What the three tasks' data preparation shares: input geometry, loading, statistics.

A task's ``prepare`` decides which samples it keeps and what their targets become; the
steps around that are the same for every task and live here:

1. :class:`Geometry`: the input height/width/colour the run uses, from a trained run's
   :class:`~explorer.engine.preprocess.Preprocess` or derived from the images
   (:func:`fixed_geometry` for one size, :func:`line_geometry` for text lines that keep
   their aspect ratio at a fixed height);
2. :func:`load`: decode every file once (unusable files become problem lines), true widths;
   through the decoded-image cache (:mod:`explorer.data.cache`) unless ``data.cache`` is off;
3. :func:`fit_preprocess`: the normalisation statistics of the training images.

Memory: the images a load returns may be a memory map of the cache. :meth:`Images.take` copies
a split into RAM only while the splits taken so far fit the decoded images' share of the run's
memory budget (``data.memory_budget``, see :func:`explorer.data.memory.data_budget`); a split beyond it is
gathered a few MiB at a time into an anonymous file-backed map (:func:`~explorer.data.cache.spill_array`),
so training reads its batches from disk pages the kernel may drop, never from one big copy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from explorer.data import DecodedCache, Sample, data_budget, infer_image_size, load_images, spill_array

from ..config import ConfigError, DataConfig
from ..preprocess import Preprocess, channel_stats, valid_pixels

__all__ = ["MIN_HEIGHT", "MAX_HEIGHT", "MAX_WIDTH_FACTOR", "Geometry", "Images", "fit_preprocess", "load"]

log = logging.getLogger(__name__)
_GATHER_BYTES = 16 << 20  # rows gathered per step into a spilled split
# What the data phase holds per file besides its pixels (samples, file identities, the cache index
# while it is read): measured 2.9 KiB a file on 20,000 files (tests/bench/cache_bench.py), with margin.
# It is taken off the memory budget before any split is copied into RAM.
BOOKKEEPING_BYTES_PER_FILE = 4096

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
    """Decoded images of the usable samples (input order) with their true widths.

    ``images`` may be backed by the cache's memory map (``mapped``); ``budget`` is the RAM the
    splits taken from it may still use in all (bytes), ``spill_dir`` where larger ones go.
    """

    samples: list[Sample]
    images: torch.Tensor  # uint8 (N, H, W, C), variable-width rows right-padded to the widest
    widths: torch.Tensor  # int64 (N,)
    color: str
    mapped: bool = False
    budget: int = 1 << 62
    spill_dir: Path | None = None
    note: str | None = None
    sums: np.ndarray | None = None  # per image: int64 (2, C) sum and sum of squares of its real pixels
    spilled: list[int] = field(default_factory=list)  # sizes (bytes) of the splits kept on disk

    def take(self, ids: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(images cut to the widest of them, their widths) of the samples ``ids``.

        In memory while it fits what is left of the budget; otherwise (mapped images only)
        gathered into a file-backed map, see the module docstring.
        """
        t = torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int64))
        w = self.widths[t]
        width = int(w.max()) if len(t) else 1
        shape = (len(t), *self.images.shape[1:2], min(width, int(self.images.shape[2])), *self.images.shape[3:])
        nbytes = int(np.prod(shape))
        if not self.mapped or self.spill_dir is None or nbytes <= self.budget:
            self.budget -= nbytes
            return self.images[t][:, :, :width].contiguous(), w.contiguous()
        out = torch.from_numpy(spill_array(shape, self.spill_dir))
        step = max(1, _GATHER_BYTES // max(1, nbytes // max(1, len(t))))
        # one gather buffer for all chunks (a new 16 MiB temporary per chunk left the C heap
        # holding 50-130 MiB of them); full-width rows are gathered straight into the map
        buf = (
            None if shape[2] == self.images.shape[2] else torch.empty((step, *self.images.shape[1:]), dtype=torch.uint8)
        )
        for i in range(0, len(t), step):
            idx = t[i : i + step]
            if buf is None:
                torch.index_select(self.images, 0, idx, out=out[i : i + len(idx)])
            else:
                out[i : i + len(idx)] = torch.index_select(self.images, 0, idx, out=buf[: len(idx)])[:, :, :width]
        self.spilled.append(nbytes)
        return out, w.contiguous()


def load(
    samples: Sequence[Sample],
    geometry: Geometry,
    *,
    origin: str,
    max_pixels: int,
    problems: list[str],
    progress: Callable[[int, int], None] | None = None,
    empty_ok: bool = False,
    data: DataConfig | None = None,
) -> Images:
    """Decode ``samples`` with ``geometry``; unusable files are appended to ``problems``.

    ``data`` gives the cache settings (``cache``, ``cache_dir``, ``memory_budget``); without it
    the default cache folder and budget are used.

    Raises:
        ConfigError: not one file is usable (unless ``empty_ok``).
    """
    use_cache = data.cache if data is not None else True
    cache = DecodedCache(data.cache_dir if data is not None and data.cache_dir else None) if use_cache else None
    loaded = load_images(
        samples,
        height=geometry.height,
        width=geometry.width,
        color=geometry.color,
        resize=geometry.resize,
        max_pixels=max_pixels,
        progress=progress,
        max_width=geometry.max_width or MAX_WIDTH_FACTOR * geometry.height,
        cache=cache,
    )
    if loaded.note:
        log.warning("%s", loaded.note)
    problems += [str(p) for p in loaded.problems]
    if not loaded.samples and not empty_ok:
        raise ConfigError("data.source", f"no usable image in {origin} ({len(problems)} unusable files)")
    n, full = len(loaded.samples), loaded.images.shape[2]
    widths = torch.from_numpy(loaded.widths) if loaded.widths is not None else torch.full((n,), full, dtype=torch.int64)
    return Images(
        list(loaded.samples),
        torch.from_numpy(loaded.images),
        widths,
        loaded.color,
        mapped=loaded.mapped,
        budget=data_budget(data.memory_budget if data is not None else 0) - BOOKKEEPING_BYTES_PER_FILE * len(samples),
        spill_dir=cache.root if cache is not None else None,
        note=loaded.note,
        sums=loaded.sums,
    )


def fit_preprocess(images: Images, geometry: Geometry, resize: str, train_idx: np.ndarray) -> Preprocess:
    """The input contract of a new run: geometry plus the training pixels' mean and std
    (padding excluded; a few MiB at a time when the training images exceed the budget)."""
    arr, widths = images.images.numpy(), images.widths.numpy()
    if images.sums is not None and len(train_idx):  # the cache's exact per-image sums: no pixel is read
        sums = images.sums[np.asarray(train_idx)].sum(0).astype(np.float64)
        mean, std = _finish_stats(sums[0], sums[1], int(widths[train_idx].sum()) * arr.shape[1])
    elif int(widths[train_idx].sum()) * arr.shape[1] * arr.shape[3] <= images.budget // 4:
        mean, std = channel_stats(valid_pixels(arr, widths, train_idx))
    else:
        mean, std = _chunked_stats(arr, widths, np.asarray(train_idx))
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


def _chunked_stats(
    arr: np.ndarray, widths: np.ndarray, idx: np.ndarray, scale: float = 1.0 / 255.0
) -> tuple[list[float], list[float]]:
    """:func:`~explorer.engine.preprocess.channel_stats` of the valid pixels of ``idx``, reading
    a few MiB of rows at a time (same formula; sums in another order, so equal to ~1e-12)."""
    c = arr.shape[-1]
    total, total_sq, n = np.zeros(c), np.zeros(c), 0
    step = max(1, _GATHER_BYTES // max(1, int(np.prod(arr.shape[1:]))))
    for i in range(0, len(idx), step):
        px = valid_pixels(arr, widths, idx[i : i + step]).reshape(-1, c).astype(np.float64)
        total += px.sum(0)
        total_sq += np.square(px).sum(0)
        n += px.shape[0]
    if n == 0:
        return channel_stats(arr[:0])
    return _finish_stats(total, total_sq, n, scale)


def _finish_stats(
    total: np.ndarray, total_sq: np.ndarray, n: int, scale: float = 1.0 / 255.0
) -> tuple[list[float], list[float]]:
    """Mean and std from float64 sums over ``n`` pixels, exactly as ``channel_stats`` finishes."""
    mean = total / n
    std = np.sqrt(np.maximum(total_sq / n - mean**2, 0.0))
    std = np.where(std * scale < 1e-3, 1.0 / scale, std)
    return [float(m * scale) for m in mean], [float(s * scale) for s in std]
