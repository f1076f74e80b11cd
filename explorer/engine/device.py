"""Device selection: ``auto`` = CUDA, else Apple MPS, else CPU."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .config import ConfigError

__all__ = [
    "available_devices",
    "resolve_device",
    "describe_device",
    "autocast_dtype",
    "memory_format",
    "pinned",
    "to_device",
    "fits_on_device",
]


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())


def available_devices() -> list[str]:
    """Devices that can run here, best first (always ends with ``cpu``)."""
    out = []
    if torch.cuda.is_available():
        out.append("cuda")
    if _mps_available():
        out.append("mps")
    out.append("cpu")
    return out


def resolve_device(name: str) -> torch.device:
    """Turn ``auto|cpu|cuda|mps`` into a usable device, or say why it is not available."""
    if name == "auto":
        return torch.device(available_devices()[0])
    if name == "cpu":
        return torch.device("cpu")
    if name not in ("cuda", "mps") and not name.startswith("cuda:"):
        raise ConfigError("train.device", f"{name!r} is not one of auto, cpu, cuda, mps")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            "train.device", "CUDA was requested but no CUDA GPU is available here; use --device auto or cpu"
        )
    if name == "mps" and not _mps_available():
        raise ConfigError("train.device", "MPS was requested but is not available here; use --device auto or cpu")
    return torch.device(name)


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return str(device)


# -- CUDA speed: mixed precision, memory format, host -> device copies ----------------------------


def autocast_dtype(device: torch.device, amp: bool) -> torch.dtype | None:
    """The mixed-precision dtype a run uses (None: full precision): bfloat16 where the GPU has
    it, else float16 (with a gradient scaler); only on CUDA. One rule for the engine and the bench."""
    if not amp or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def memory_format(model: nn.Module, device: torch.device) -> torch.memory_format:
    """``channels_last`` for a model that declares it runs faster so (``channels_last = True``, a
    conv-dominated family) on CUDA, where cuDNN's NHWC kernels pay off; else the default layout."""
    if device.type == "cuda" and getattr(model, "channels_last", False):
        return torch.channels_last
    return torch.contiguous_format


def pinned(t: torch.Tensor) -> torch.Tensor:
    """``t`` in page-locked host memory (so a copy to the GPU can overlap compute); ``t`` itself
    where that is impossible (no CUDA here, already pinned, not on the host)."""
    if t.device.type != "cpu" or not torch.cuda.is_available() or t.is_pinned():
        return t
    try:
        return t.pin_memory()
    except RuntimeError:  # no usable CUDA driver, or page-locked memory exhausted: plain copy
        return t


def to_device(batch: Any, device: torch.device) -> Any:
    """A batch (a tensor, or a dict / list / tuple of them) on ``device``; host tensors bound for
    CUDA go through pinned memory with ``non_blocking`` copies (PyTorch's caching host
    allocator keeps a pinned block alive until its copy has finished)."""
    if isinstance(batch, torch.Tensor):
        if batch.device == device:
            return batch
        if device.type == "cuda" and batch.device.type == "cpu":
            return pinned(batch).to(device, non_blocking=True)
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def fits_on_device(nbytes: int, device: torch.device, share: float = 0.25) -> bool:
    """Whether a data cache of ``nbytes`` may live on ``device`` (at most ``share`` of its free
    memory, leaving the rest to the model and activations); the CPU and MPS: always."""
    if device.type != "cuda":
        return True
    free, _total = torch.cuda.mem_get_info(device)
    return nbytes <= share * free
