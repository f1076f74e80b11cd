"""Memory checked up front: a run that cannot fit is refused before it allocates.

Two estimates, each compared with the memory the run's device has free now:

- the decoded image cache, before any image is decoded: images x height x width x channels
  bytes (uint8), plus the normalised float copy made of small training sets;
- one training step, before the model is placed on the device: the activations of one image
  (measured by a forward pass on the ``meta`` device, which allocates nothing) times the
  batch, kept for the backward pass, plus 16 bytes per parameter (weights, gradients and
  two optimizer moments).

Both are lower bounds (the allocator and temporaries add more), so a refusal is certain and
a pass is likely. Free memory is ``MemAvailable`` of ``/proc/meminfo`` (``os.sysconf``
elsewhere) on the CPU and ``torch.cuda.mem_get_info`` on CUDA.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from explorer.data import available_ram

from .config import ConfigError

__all__ = [
    "available_bytes",
    "check_cache_fits",
    "check_step_fits",
    "check_before_decoding",
    "step_bytes",
    "is_out_of_memory",
    "fmt_bytes",
]

PARAM_BYTES = 16  # weights + gradients + two optimizer moments, float32


def fmt_bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


def available_bytes(device: torch.device | str = "cpu") -> int | None:
    """Memory free for a run on ``device`` now; None when it cannot be told."""
    device = torch.device(device)
    if device.type == "cuda":
        try:
            return int(torch.cuda.mem_get_info(device)[0])
        except (RuntimeError, AssertionError):
            return None
    if device.type != "cpu":
        return None
    return available_ram()


def check_cache_fits(images: int, height: int, width: int, channels: int, float_copy_limit: int) -> None:
    """Refuses a data set whose decoded cache cannot fit in RAM (before decoding anything).

    Raises:
        ConfigError: ``data.height`` with the estimate and the memory available.
    """
    cache = images * height * width * channels
    need = cache + min(cache * 4, float_copy_limit)
    free = available_bytes("cpu")
    if free is not None and need > free:
        raise ConfigError(
            "data.height",
            f"{images} images at {height}x{width}x{channels} need about {fmt_bytes(need)} of memory once decoded "
            f"({fmt_bytes(height * width * channels)} each), more than the {fmt_bytes(free)} available; "
            "try a smaller --image-size",
        )


def _activation_bytes(build: Callable[[], nn.Module], example: tuple[int, int, int]) -> tuple[int, int] | None:
    """(bytes of the activations of one image, parameter count), measured on the meta device;
    None when a family cannot run there."""
    total = 0

    def count(_m: nn.Module, _i: Any, out: Any) -> None:
        nonlocal total
        for t in out if isinstance(out, tuple | list) else (out,):
            if torch.is_tensor(t):
                total += t.numel() * t.element_size()

    try:
        with torch.device("meta"):
            model = build()
            handles = [m.register_forward_hook(count) for m in model.modules() if not list(m.children())]
            model.train()
            x = torch.zeros((1, *example))
            try:
                model(x)
            except TypeError:  # a forward that needs more than images (the captioner's tokens):
                encoder = getattr(model, "encoder", None)  # its image encoder is what grows with size
                if encoder is None:
                    raise
                encoder(x)
        for h in handles:
            h.remove()
        return total, sum(p.numel() for p in model.parameters())
    except Exception:  # noqa: BLE001 - an estimate only; a family the meta device cannot run is not checked
        return None


def step_bytes(build: Callable[[], nn.Module], example: tuple[int, int, int], batch: int) -> tuple[int, int] | None:
    """(estimated bytes of one training step at ``batch``, bytes per image); None if unknown."""
    measured = _activation_bytes(build, example)
    if measured is None:
        return None
    per_image, params = measured
    per_image += 4 * example[0] * example[1] * example[2]  # the float input itself
    return per_image * batch + params * PARAM_BYTES, per_image


def check_step_fits(
    build: Callable[[], nn.Module], example: tuple[int, int, int], batch: int, device: torch.device
) -> None:
    """Refuses an image size and batch size whose training step cannot fit on ``device``.

    Raises:
        ConfigError: ``train.batch_size`` with the estimate and the memory available.
    """
    est = step_bytes(build, example, batch)
    free = available_bytes(device)
    if est is None or free is None:
        return
    need, per_image = est
    if need > free:
        c, h, w = example
        raise ConfigError(
            "train.batch_size",
            f"a training step of {batch} images at {h}x{w}x{c} needs about {fmt_bytes(need)} "
            f"({fmt_bytes(per_image)} of activations per image), more than the {fmt_bytes(free)} free on "
            f"{device.type}; try a smaller --batch-size or --image-size",
        )


def check_before_decoding(cfg: Any, task: Any, images: int, float_copy_limit: int) -> None:
    """With the input size given (``--image-size``): the cache and one training step at that
    size, checked before a single image is decoded (a model of two outputs stands in for the
    real one, whose outputs are known only after reading the data)."""
    from models import build_model, model_params

    from .device import resolve_device

    d = cfg.data
    if not (d.height and d.width) or images <= 0:
        return
    channels = 1 if d.color == "gray" else 3
    if not getattr(d, "cache", False):  # with the disk cache, images beyond the memory budget stay on disk
        check_cache_fits(images, d.height, d.width, channels, float_copy_limit)
    try:
        params = model_params(cfg.arch).from_dict(task.model_params(cfg.arch, dict(cfg.params))).to_dict()
        device = resolve_device(cfg.train.device)
    except Exception:  # noqa: BLE001 - reported with its own message when the model is built
        return

    def build() -> nn.Module:
        return build_model(cfg.arch, in_channels=channels, num_outputs=2, image_size=(d.height, d.width), **params)

    check_step_fits(build, (channels, d.height, d.width), min(cfg.train.batch_size, images), device)


def is_out_of_memory(e: BaseException) -> bool:
    """CPU ``MemoryError``, ``torch.OutOfMemoryError`` (CUDA) or a runtime error saying so."""
    if isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError":
        return True
    text = str(e).lower()
    return isinstance(e, RuntimeError) and (
        "out of memory" in text or "not enough memory" in text or "can't allocate memory" in text
    )
