"""From a data source to in-memory uint8 tensors, split and described by a Preprocess.

Every file is decoded once here; epochs then index the uint8 cache, so data costs
~nothing after the first pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from explorer.data import LoadedImages, Source, infer_image_size, load_images, stratified_split

from .config import ConfigError, DataConfig
from .preprocess import Preprocess, channel_stats

__all__ = ["PreparedData", "prepare_classification", "load_for_preprocess"]


@dataclass
class PreparedData:
    task: str
    labels: list[str]
    preprocess: Preprocess
    train_x: torch.Tensor  # uint8 (N, H, W, C)
    train_y: torch.Tensor  # int64 (N,)
    val_x: torch.Tensor
    val_y: torch.Tensor
    train_paths: list[str]
    val_paths: list[str]
    problems: list[str]
    seconds: float


def detect_task(source: Source, requested: str) -> str:
    if requested != "auto":
        return requested
    return source.task or "classify"


def prepare_classification(
    source: Source,
    cfg: DataConfig,
    *,
    seed: int,
    labels: Sequence[str] | None = None,
    preprocess: Preprocess | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PreparedData:
    """Decode, resize, split and describe a classification source.

    Args:
        source: scanned samples and scan-time problems.
        cfg: data settings (size/colour overrides, validation fraction).
        seed: split seed.
        labels: fixed class list (resuming); default = the source's classes.
        preprocess: fixed input contract (resuming); default = derived from the data.
        progress: ``progress(done, total)`` while decoding.

    Raises:
        ConfigError: no usable image, fewer than two classes, or unknown classes.
    """
    t0 = time.perf_counter()
    if preprocess is not None:
        height, width, color = preprocess.height, preprocess.width, preprocess.color
    else:
        height, width = cfg.height, cfg.width
        if height is None or width is None:
            h, w = infer_image_size(source.samples)
            height, width = height or h, width or w
        color = cfg.color
    assert width is not None
    loaded: LoadedImages = load_images(
        source.samples,
        height=height,
        width=width,
        color=color,
        resize=preprocess.resize if preprocess else cfg.resize,
        max_pixels=cfg.max_pixels,
        progress=progress,
    )
    problems = [str(p) for p in list(source.problems) + list(loaded.problems)]
    if not loaded.samples:
        raise ConfigError("data.source", f"no usable image in {source.origin} ({len(problems)} unusable files)")
    present = sorted({s.target for s in loaded.samples})
    labels = list(labels) if labels is not None else present
    unknown = sorted(set(present) - set(labels))
    if unknown:
        raise ConfigError("data.source", f"classes not known to this run: {', '.join(unknown)}")
    if len(labels) < 2:
        raise ConfigError(
            "data.source", f"classification needs at least two classes, found {labels} in {source.origin}"
        )
    index = {name: i for i, name in enumerate(labels)}
    targets = np.array([index[s.target] for s in loaded.samples], dtype=np.int64)
    train_idx, val_idx = stratified_split([s.target for s in loaded.samples], cfg.val_fraction, seed)
    if preprocess is None:
        mean, std = channel_stats(loaded.images[train_idx])
        channels = loaded.images.shape[-1]
        preprocess = Preprocess(
            channels=channels, color=loaded.color, height=height, width=width, resize=cfg.resize, mean=mean, std=std
        )
    images = torch.from_numpy(loaded.images)
    y = torch.from_numpy(targets)
    tr = torch.from_numpy(np.asarray(train_idx, dtype=np.int64))
    va = torch.from_numpy(np.asarray(val_idx, dtype=np.int64))
    paths = [str(s.path) for s in loaded.samples]
    return PreparedData(
        task="classify",
        labels=labels,
        preprocess=preprocess,
        train_x=images[tr].contiguous(),
        train_y=y[tr].contiguous(),
        val_x=images[va].contiguous(),
        val_y=y[va].contiguous(),
        train_paths=[paths[i] for i in train_idx],
        val_paths=[paths[i] for i in val_idx],
        problems=problems,
        seconds=time.perf_counter() - t0,
    )


def load_for_preprocess(
    source: Source, preprocess: Preprocess, labels: Sequence[str], max_pixels: int
) -> tuple[torch.Tensor, torch.Tensor, list[str], list[str]]:
    """Load a whole source (no split) with a run's fixed input contract, for evaluation.

    Returns (x uint8 (N,H,W,C), y int64, paths, problems). Images of classes the run
    does not know become problems, not errors.
    """
    index = {name: i for i, name in enumerate(labels)}
    known = [s for s in source.samples if s.target in index]
    problems = [str(p) for p in source.problems]
    problems += [
        f"{s.path}: class '{s.target}' is not one of the model's classes"
        for s in source.samples
        if s.target not in index
    ]
    assert preprocess.width is not None
    loaded = load_images(
        known,
        height=preprocess.height,
        width=preprocess.width,
        color=preprocess.color,
        resize=preprocess.resize,
        max_pixels=max_pixels,
    )
    problems += [str(p) for p in loaded.problems]
    y = torch.tensor([index[s.target] for s in loaded.samples], dtype=torch.int64)
    return torch.from_numpy(loaded.images), y, [str(s.path) for s in loaded.samples], problems
