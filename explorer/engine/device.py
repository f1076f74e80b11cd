"""Device selection: ``auto`` = CUDA, else Apple MPS, else CPU."""

from __future__ import annotations

import torch

from .config import ConfigError

__all__ = ["available_devices", "resolve_device", "describe_device"]


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
