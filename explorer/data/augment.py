"""Batch augmentation on the training device.

Augmentation runs on whole batches of float tensors, after the uint8 cache has been turned into
``(B, C, H, W)`` values in ``[0, 1]``, so it costs one pass over the batch on the GPU instead of
per-image Python work in a data loader. Every sample gets its own random parameters; all the
geometric ones (rotation, shift, random resized crop) are folded into one affine matrix per sample
and applied with a single ``affine_grid`` + ``grid_sample``.

This is the only module of :mod:`explorer.data` that imports torch.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["AugmentConfig", "augment_batch"]


def _knob(default: float, low: float, high: float, help: str) -> Any:
    return field(default=default, metadata={"min": low, "max": high, "help": help})


def _switch(help: str) -> Any:
    return field(default=False, metadata={"help": help})


@dataclass
class AugmentConfig:
    """Which random changes each training image gets. Everything is off by default.

    Attributes:
        hflip: Mirror left-right with probability 1/2.
        vflip: Mirror top-bottom with probability 1/2.
        rotate: Maximum rotation in degrees (uniform in ``[-rotate, rotate]``).
        shift: Maximum translation as a fraction of width / height.
        crop: Random resized crop: keep a window of ``1 - crop .. 1`` of the area (same aspect
            ratio, random position) and stretch it back to full size.
        noise: Standard deviation of added Gaussian noise on the ``[0, 1]`` scale.
        brightness: Maximum additive brightness change (uniform in ``[-brightness, brightness]``).
        contrast: Maximum relative contrast change (factor uniform in ``[1 - contrast, 1 + contrast]``).
    """

    hflip: bool = _switch("Mirror left-right with probability 1/2.")
    vflip: bool = _switch("Mirror top-bottom with probability 1/2.")
    rotate: float = _knob(0.0, 0.0, 180.0, "Maximum rotation in degrees.")
    shift: float = _knob(0.0, 0.0, 0.5, "Maximum shift as a fraction of the image size.")
    crop: float = _knob(0.0, 0.0, 0.9, "Random resized crop: maximum fraction of the area cut away.")
    noise: float = _knob(0.0, 0.0, 1.0, "Gaussian noise standard deviation (image scale 0..1).")
    brightness: float = _knob(0.0, 0.0, 1.0, "Maximum brightness change (+-, image scale 0..1).")
    contrast: float = _knob(0.0, 0.0, 1.0, "Maximum relative contrast change (+-).")

    @property
    def enabled(self) -> bool:
        """True when at least one augmentation is switched on."""
        return any(bool(getattr(self, f.name)) for f in dataclasses.fields(self))

    def validate(self) -> AugmentConfig:
        """Checks types and ranges.

        Returns:
            ``self``, for chaining.

        Raises:
            ValueError: Naming the first invalid field and its valid range.
        """
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if "min" not in f.metadata:
                if not isinstance(value, bool):
                    raise ValueError(f"augment.{f.name} must be true or false, got {value!r}")
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"augment.{f.name} must be a number, got {value!r}")
            low, high = f.metadata["min"], f.metadata["max"]
            if not low <= value <= high:  # also rejects NaN
                raise ValueError(f"augment.{f.name} must be in [{low}, {high}], got {value!r}")
        return self

    def to_dict(self) -> dict[str, bool | float]:
        """Plain JSON-ready values."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> AugmentConfig:
        """Builds and validates a config from a mapping (a run config, ``--set`` values).

        Missing keys keep their defaults. Strings are accepted for the CLI's sake: ``"true"``,
        ``"off"``, ``"0.2"`` and so on.

        Raises:
            ValueError: For an unknown key (named) or an invalid value.
        """
        known = {f.name: f for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            if key not in known:
                raise ValueError(f"unknown augmentation {key!r}; known: {', '.join(known)}")
            kwargs[key] = _coerce(key, value, is_switch="min" not in known[key].metadata)
        return cls(**kwargs).validate()


def _coerce(key: str, value: Any, *, is_switch: bool) -> Any:
    if is_switch:
        if isinstance(value, bool):  # words ("yes", "off") are read by the engine's settings
            return value
        raise ValueError(f"augment.{key} must be true or false, got {value!r}")
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise ValueError(f"augment.{key} must be a number, got {value!r}") from None
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _uniform(n: int, high: float, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """``n`` values uniform in ``[-high, high]`` (float32)."""
    return (torch.rand(n, generator=generator, device=device) * 2.0 - 1.0) * high


def augment_batch(x: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """Applies random augmentations to a batch, independently per sample.

    Order: flips, then one affine warp (rotation, shift, crop), then contrast, brightness and noise;
    the result is clamped to ``[0, 1]``. Areas the warp brings in from outside the image repeat the
    border pixels rather than turning black, so no artificial edges appear for the model to learn.

    Args:
        x: Float tensor ``(B, C, H, W)`` in ``[0, 1]``, on any device.
        cfg: What to apply.
        generator: Source of randomness for reproducible results. It may live on another device
            than ``x`` (a CPU generator with CUDA data is fine): all random numbers are drawn on
            the generator's device and moved.

    Returns:
        A new tensor of the same shape, dtype and device; ``x`` itself when ``cfg`` is not enabled.
    """
    if not cfg.enabled:
        return x
    if x.ndim != 4 or not x.is_floating_point():
        raise ValueError(f"expected a float (B, C, H, W) tensor, got {tuple(x.shape)} {x.dtype}")
    b = x.shape[0]
    device = x.device
    rand_device = generator.device if generator is not None else device
    # grid_sample and the statistics want float32 or float64; half precision is converted back at the end.
    out = x if x.dtype in (torch.float32, torch.float64) else x.float()

    def draw(high: float) -> torch.Tensor:
        return _uniform(b, high, generator, rand_device).to(device=device, dtype=out.dtype)

    def coin() -> torch.Tensor:
        return (torch.rand(b, generator=generator, device=rand_device) < 0.5).to(device)

    if cfg.hflip:
        out = torch.where(coin()[:, None, None, None], out.flip(-1), out)
    if cfg.vflip:
        out = torch.where(coin()[:, None, None, None], out.flip(-2), out)

    if cfg.rotate > 0 or cfg.shift > 0 or cfg.crop > 0:
        out = _affine(out, cfg, draw)

    if cfg.contrast > 0:
        factor = 1.0 + draw(cfg.contrast)
        mean = out.mean(dim=(1, 2, 3), keepdim=True)
        out = (out - mean) * factor[:, None, None, None] + mean
    if cfg.brightness > 0:
        out = out + draw(cfg.brightness)[:, None, None, None]
    if cfg.noise > 0:
        noise = torch.randn(out.shape, generator=generator, device=rand_device, dtype=torch.float32)
        out = out + noise.to(device=device, dtype=out.dtype) * cfg.noise
    return out.clamp(0.0, 1.0).to(x.dtype)


def _affine(x: torch.Tensor, cfg: AugmentConfig, draw: Callable[[float], torch.Tensor]) -> torch.Tensor:
    """One warp per sample combining rotation, shift and random resized crop.

    ``affine_grid`` works in normalised coordinates (-1..1 on both axes), where a plain rotation
    matrix would shear non-square images. Rotating in pixel units is ``S^-1 R S`` with
    ``S = diag(W, H)``, which gives the aspect terms below.
    """
    b, _, h, w = x.shape
    angle = draw(cfg.rotate) * (math.pi / 180.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # Crop: a window of ``side`` times the image size on each axis (area = side**2), anywhere inside.
    if cfg.crop > 0:
        area = 1.0 - (draw(1.0) + 1.0) * 0.5 * cfg.crop  # uniform in [1 - crop, 1]
        side = area.sqrt()
    else:
        side = torch.ones_like(angle)
    room = 1.0 - side  # how far the window centre may move, in normalised units
    tx = draw(1.0) * room + draw(cfg.shift) * 2.0  # shift fraction f of the size = 2f normalised
    ty = draw(1.0) * room + draw(cfg.shift) * 2.0

    theta = torch.zeros(b, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = side * cos
    theta[:, 0, 1] = -side * sin * (h / w)
    theta[:, 1, 0] = side * sin * (w / h)
    theta[:, 1, 1] = side * cos
    theta[:, 0, 2] = tx
    theta[:, 1, 2] = ty
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
