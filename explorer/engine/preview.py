"""Dry run of a model before training: layer table and parameter count. No Qt.

The app's architecture screen asks this module (off its UI thread) what a family with the
current parameters looks like on the data's input: :func:`preview_model` builds the model
through the registry and runs one example through it, recording every leaf module's output
shape. Plain Python comes back, so the UI never touches a tensor.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from explorer.data import DecodeError, Sample, infer_image_size, is_gray, read_image

__all__ = ["LayerRow", "ModelPreview", "estimate_input_shape", "preview_model"]


@dataclass(frozen=True)
class LayerRow:
    name: str
    type: str
    output_shape: str  # "(C, H, W)" without the batch dimension
    params: int


@dataclass
class ModelPreview:
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
    if samples and (height is None or width is None):
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


def preview_model(
    arch: str,
    params: Mapping[str, Any],
    channels: int,
    image_size: tuple[int, int],
    num_outputs: int,
    *,
    example: Callable[[int, int, int], Any] | None = None,
) -> ModelPreview:
    """Builds ``arch`` and runs one example image through it, recording each leaf module's output.

    Args:
        arch, params: the family and its parameters (as the form holds them).
        channels, image_size: the model's input, ``(H, W)``.
        num_outputs: the output count the task gives the head.
        example: ``(channels, height, width) -> model input`` for the forward pass; default one
            zero image. (Where a task needs another example, e.g. labels for a decoder, it passes one.)
    """
    from models import ParamError, build_model

    h, w = image_size
    out = ModelPreview(input_shape=(channels, h, w), num_outputs=num_outputs)
    try:
        model = build_model(arch, in_channels=channels, num_outputs=num_outputs, image_size=(h, w), **dict(params))
    except ParamError as e:
        out.error, out.error_param = e.message, e.param
        return out
    except (ValueError, TypeError, RuntimeError) as e:
        out.error = str(e)
        return out
    model.eval()
    leaves = {n: m for n, m in model.named_modules() if n and not any(True for _ in m.children())}
    shapes, order = _walk_shapes(model, leaves, (example or _zeros)(channels, h, w), out)
    seen = set(order)
    for n in order + [n for n in leaves if n not in seen]:  # then the modules the forward pass skipped
        m = leaves[n]
        out.rows.append(
            LayerRow(n, type(m).__name__, shapes.get(n, "–"), sum(p.numel() for p in m.parameters(recurse=False)))
        )
    out.total = sum(p.numel() for p in model.parameters())
    out.trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return out


def _zeros(c: int, h: int, w: int) -> Any:
    import torch

    return torch.zeros(1, c, h, w)


def _walk_shapes(model: Any, leaves: Mapping[str, Any], x: Any, out: ModelPreview) -> tuple[dict[str, str], list[str]]:
    """One forward pass with hooks: ``{leaf name: "(shape without batch)"}`` in the order they ran."""
    import torch

    shapes: dict[str, str] = {}
    order: list[str] = []

    def hook(name: str) -> Callable[..., None]:
        def fn(_m: Any, _inp: Any, output: Any) -> None:
            t = output[0] if isinstance(output, (tuple, list)) else output
            if hasattr(t, "shape"):
                if name not in shapes:
                    order.append(name)
                shapes[name] = "(" + ", ".join(str(d) for d in tuple(t.shape)[1:]) + ")"

        return fn

    hooks = [m.register_forward_hook(hook(n)) for n, m in leaves.items()]
    try:
        with torch.no_grad():
            model(x)
    except RuntimeError as e:
        c, h, w = out.input_shape
        out.error = f"the model does not run on a {c}x{h}x{w} input: {str(e).splitlines()[0]}"
    finally:
        for hk in hooks:
            hk.remove()
    return shapes, order
