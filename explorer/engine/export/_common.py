"""What every export module shares: the formats, their suffixes, the errors, progress."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["EXPORT_FORMATS", "SUFFIX", "TOLERANCE", "ExportError", "ExportTargetError", "Progress"]

EXPORT_FORMATS = ("safetensors", "onnx", "pt2")
SUFFIX = {"safetensors": ".safetensors", "onnx": ".onnx", "pt2": ".pt2"}
#: largest difference between the exported graph and PyTorch that passes the check
TOLERANCE = 1e-4

#: ``progress(step, steps, what)``: called before each step of an export ("exporting encoder"...)
Progress = Callable[[int, int, str], None]


class ExportError(RuntimeError):
    """The export failed (the exporter, or the check against PyTorch); the message says why."""


class ExportTargetError(ExportError):
    """The destination is refused (a run's own file, a missing folder, a device...): nothing was written."""
