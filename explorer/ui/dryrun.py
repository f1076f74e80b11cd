"""Dry run of a model on the data's input shape: layer table and parameter count. No Qt.

NOTE for the engine: this is engine work (it builds a model and runs a tensor through it) kept
here only until ``explorer.engine`` offers it; it is Qt-free and returns plain Python, so it can
move there unchanged (the UI imports it from one place, :mod:`explorer.ui.arch_panel`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from explorer.data import DecodeError, Sample, infer_image_size, is_gray, read_image

__all__ = ["LayerRow", "ModelSummary", "estimate_input_shape", "summarize"]


@dataclass(frozen=True)
class LayerRow:
    name: str
    type: str
    output_shape: str  # "(C, H, W)" without the batch dimension
    params: int


@dataclass
class ModelSummary:
    input_shape: tuple[int, int, int]
    num_outputs: int
    rows: list[LayerRow] = field(default_factory=list)
    total: int = 0
    trainable: int = 0
    error: str | None = None  # why the model cannot be built or run
    error_param: str | None = None  # the parameter the error is about, when known


def estimate_input_shape(
    samples: Sequence[Sample], *, height: int | None = None, width: int | None = None, color: str = "auto"
) -> tuple[int, int, int]:
    """(C, H, W) the engine would choose for these samples (reads a few file headers and images)."""
    if samples:
        if height is None or width is None:
            h, w = infer_image_size(samples)
            height, width = height or h, width or w
    height, width = height or 32, width or 32
    if color == "gray":
        return 1, height, width
    if color == "rgb" or not samples:
        return 3, height, width
    step = max(1, len(samples) // 8)
    for s in list(samples)[::step][:8]:
        try:
            if not is_gray(read_image(s.path)):
                return 3, height, width
        except DecodeError:
            continue
    return 1, height, width


def summarize(
    arch: str, params: Mapping[str, Any], input_shape: tuple[int, int, int], num_outputs: int
) -> ModelSummary:
    """Builds the model and runs one zero image through it, recording each leaf module's output."""
    import torch

    from models import ParamError, build_model

    c, h, w = input_shape
    out = ModelSummary(input_shape=input_shape, num_outputs=num_outputs)
    try:
        model = build_model(arch, in_channels=c, num_outputs=num_outputs, image_size=(h, w), **dict(params))
    except ParamError as e:
        out.error, out.error_param = e.message, e.param
        return out
    except (ValueError, TypeError, RuntimeError) as e:
        out.error = str(e)
        return out
    model.eval()
    shapes: dict[str, str] = {}
    order: list[str] = []
    hooks = []

    def hook(name: str):  # noqa: ANN202
        def fn(_m: Any, _inp: Any, output: Any) -> None:
            t = output[0] if isinstance(output, (tuple, list)) else output
            if hasattr(t, "shape"):
                if name not in shapes:
                    order.append(name)
                shapes[name] = "(" + ", ".join(str(d) for d in tuple(t.shape)[1:]) + ")"

        return fn

    leaves = {n: m for n, m in model.named_modules() if n and not any(True for _ in m.children())}
    for n, m in leaves.items():
        hooks.append(m.register_forward_hook(hook(n)))
    try:
        with torch.no_grad():
            model(torch.zeros(1, c, h, w))
    except RuntimeError as e:
        out.error = f"the model does not run on a {c}x{h}x{w} input: {str(e).splitlines()[0]}"
    finally:
        for hk in hooks:
            hk.remove()
    seen = set(order)
    names = order + [n for n in leaves if n not in seen]  # modules the forward pass skipped
    for n in names:
        m = leaves[n]
        out.rows.append(
            LayerRow(n, type(m).__name__, shapes.get(n, "–"), sum(p.numel() for p in m.parameters(recurse=False)))
        )
    out.total = sum(p.numel() for p in model.parameters())
    out.trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return out
