"""Atomic file writes (:mod:`explorer.data.atomic`, re-exported here for the engine's modules)
and the safetensors files, written the same way."""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
from safetensors.torch import load_file, save_file

from explorer.data.atomic import atomic_write, read_json, write_bytes, write_json, write_text

__all__ = [
    "atomic_write",
    "write_bytes",
    "write_json",
    "write_text",
    "write_safetensors",
    "read_json",
    "read_safetensors",
]


def write_safetensors(
    path: str | os.PathLike[str], tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None
) -> None:
    # safetensors refuses shared / non-contiguous storage; store plain CPU copies.
    plain = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    atomic_write(path, lambda p: save_file(plain, str(p), metadata=dict(metadata or {})))


def read_safetensors(path: str | os.PathLike[str], device: str = "cpu") -> dict[str, torch.Tensor]:
    return load_file(str(path), device=device)
