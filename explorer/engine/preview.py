"""Dry run of a model before training: layer table and parameter count. No Qt.

The app's architecture screen asks this module (off its UI thread) what a family with the
current parameters looks like on the data's input: :func:`preview_model` has the project's
task build the model as training would (:meth:`~explorer.engine.tasks.Task.example_forward`)
and runs the task's example through it, recording every leaf module's output shape. Plain
Python comes back, so the UI never touches a tensor.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from explorer.data import DecodeError, Sample, is_gray, read_image

from .config import ConfigError, DataConfig
from .tasks import Task

__all__ = ["LayerRow", "ModelPreview", "estimate_input_shape", "preview_model"]


@dataclass(frozen=True)
class LayerRow:
    name: str
    type: str
    output_shape: str  # "(C, H, W)" without the batch dimension
    params: int


@dataclass
class ModelPreview:
    input_shape: tuple[int, int, int | None]  # (C, H, W); W None: each image keeps its aspect ratio
    num_outputs: int
    rows: list[LayerRow] = field(default_factory=list)
    total: int = 0
    trainable: int = 0
    error: str | None = None  # why the model cannot be built or run
    error_param: str | None = None  # the parameter the error is about, when known
    example_width: int | None = None  # the width of the example image when W is None


def estimate_input_shape(task: Task, samples: Sequence[Sample], data: DataConfig) -> tuple[int, int, int | None]:
    """(C, H, W or None) a run of ``task`` on these samples gets (reads file headers and a few images).

    Without samples: the configured size, else a 32x32 RGB example."""
    if samples:
        height, width = task.input_size(samples, data)
    else:
        height, width = data.height or 32, data.width or 32
    return _channels(samples, data.color), height, width


def _channels(samples: Sequence[Sample], color: str) -> int:
    if color == "gray":
        return 1
    if color == "rgb" or not samples:
        return 3
    step = max(1, len(samples) // 8)
    for s in list(samples)[::step][:8]:
        try:
            if not is_gray(read_image(s.path)):
                return 3
        except DecodeError:
            continue
    return 1


def preview_model(
    task: Task,
    arch: str,
    params: Mapping[str, Any],
    channels: int,
    image_size: tuple[int, int | None],
    labels: Sequence[str] | None = None,
) -> ModelPreview:
    """Builds ``arch`` as training would for ``task`` (:meth:`Task.example_forward`: the
    parameters and output count the task implies, e.g. a CTC head, a vocabulary) and runs the
    task's example input through it, recording each leaf module's output.

    Args:
        task: the project's task.
        arch, params: the family and its parameters (as the form holds them).
        channels, image_size: the model's input, ``(H, W)``; W None for variable-width images.
        labels: the data's labels (class names, charset, vocabulary); placeholders when too few.
    """
    from models import ParamError

    h, w = image_size
    out = ModelPreview(input_shape=(channels, h, w), num_outputs=task.output_count(task.preview_labels(labels)))
    try:
        ex = task.example_forward(arch, params, in_channels=channels, image_size=image_size, labels=labels)
    except ParamError as e:
        out.error, out.error_param = e.message, e.param
        return out
    except ConfigError as e:
        out.error = str(e).split(": ", 1)[-1]
        return out
    except (ValueError, TypeError, RuntimeError) as e:
        out.error = str(e)
        return out
    model = ex.model
    out.num_outputs = ex.num_outputs
    if w is None:
        out.example_width = int(ex.inputs[0].shape[-1])
    leaves = {n: m for n, m in model.named_modules() if n and not any(True for _ in m.children())}
    shapes, order = _walk_shapes(model, leaves, ex.inputs, out)
    seen = set(order)
    for n in order + [n for n in leaves if n not in seen]:  # then the modules the forward pass skipped
        m = leaves[n]
        out.rows.append(
            LayerRow(n, type(m).__name__, shapes.get(n, "–"), sum(p.numel() for p in m.parameters(recurse=False)))
        )
    out.total = sum(p.numel() for p in model.parameters())
    out.trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return out


def _walk_shapes(
    model: Any, leaves: Mapping[str, Any], inputs: tuple[Any, ...], out: ModelPreview
) -> tuple[dict[str, str], list[str]]:
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
            model(*inputs)
    except RuntimeError as e:
        c, h, w = out.input_shape
        out.error = f"the model does not run on a {c}x{h}x{w or out.example_width} input: {str(e).splitlines()[0]}"
    finally:
        for hk in hooks:
            hk.remove()
    return shapes, order
