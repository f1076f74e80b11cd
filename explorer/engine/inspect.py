"""Look inside a trained model for one image: what ``model-explorer inspect`` writes.

:func:`inspect_image` returns plain numpy arrays (the app draws the same data). What an
intermediate is comes from the model's declaration (``intermediate_info``), never from its
name or rank; what the task adds comes from the run's :class:`~explorer.engine.tasks.Task`:

- ``feature_maps`` (kind feature_map): layer name -> (C, H, W), the exact activations;
- ``hidden_states`` (kinds recurrent_state, gate, cell_state): name -> (T, H) per recurrent
  layer and direction, gates and LSTM cell states included;
- ``spatial_states`` (kind spatial_state): name -> (T, C, h, w) of ConvRNN/ConvGRU/ConvLSTM cells;
- the task's products (:attr:`Task.inspects`): ``gradcam`` (classify, where the model has a
  spatial feature map): ``cam`` (H, W) in [0, 1] at the image's own resolution; ``ctc``
  (sequence): ``probs`` (T, classes), ``charset``, ``best_path``; ``attention`` (caption):
  ``tokens`` and ``maps`` (n_tokens, H, W) at the image's resolution, each summing to 1;
- ``prediction`` (the task's dict) and ``prediction_text`` (one line).

:func:`write_inspection` saves them as ``.npz`` plus a PNG rendering of each.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from explorer.data import read_image

from .api import Run
from .atomic import atomic_write
from .tasks import InspectRequest
from .tasks._maps import normalise01

__all__ = ["inspect_image", "write_inspection", "STATE_KINDS", "inspect_request"]

#: the kinds written to hidden_states.npz
STATE_KINDS = ("recurrent_state", "gate", "cell_state")


def _first(t: torch.Tensor) -> np.ndarray:
    return t[0].detach().float().cpu().numpy()


def inspect_request(
    run: Run, x: torch.Tensor, image_size: tuple[int, int], target: str | None = None, beam: int = 1
) -> InspectRequest:
    """``forward_intermediates(x)`` as the run's task decodes, with the model's declarations of its parts."""
    out, inter = run.task_object.forward_intermediates(run.model, x)
    size = (int(x.shape[-2]), int(x.shape[-1]))
    info = run.model.intermediate_info(size)
    return InspectRequest(
        run.model, x, out, inter, run.model.output_info(size), info, run.labels, image_size, target, beam
    )


@torch.no_grad()
def inspect_image(run: Run, path: str | os.PathLike[str], target: str | None = None, beam: int = 1) -> dict[str, Any]:
    """Everything the model computes for one image file (numpy arrays, see module doc).

    Raises:
        DecodeError: the file cannot be used.
        ValueError: ``target`` is not one of the run's classes (or the task has none).
    """
    original = read_image(path)
    x = run.preprocess([path]).to(run.device)
    req = inspect_request(run, x, (int(original.shape[0]), int(original.shape[1])), target, beam)
    task = run.task_object
    result: dict[str, Any] = {
        "image": original,
        "task": run.task,
        "feature_maps": {n: _first(t) for n, t in req.of_kind("feature_map").items()},
        "hidden_states": {n: _first(t) for n, t in req.of_kind(*STATE_KINDS).items()},
        "spatial_states": {n: _first(t) for n, t in req.of_kind("spatial_state").items()},
    }
    result.update(task.inspect(req))
    result["prediction_text"] = task.format_prediction(result["prediction"])
    return result


# -- writing ----------------------------------------------------------------------------------


def _safe(name: str) -> str:
    """A layer name as a file name part (``rnn.0:fwd`` -> ``rnn_0_fwd``)."""
    return name.replace(".", "_").replace(":", "_")


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)

    atomic_write(path, write)


def _save_png(path: Path, bgr: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", bgr)
    if not ok:  # pragma: no cover
        raise OSError(f"cannot encode {path}")
    atomic_write(path, lambda tmp: tmp.write_bytes(buf.tobytes()))


def _heat(m: np.ndarray) -> np.ndarray:
    """A float map -> BGR heatmap (viridis), scaled to its own range."""
    return cv2.applyColorMap((normalise01(m) * 255).astype(np.uint8), cv2.COLORMAP_VIRIDIS)


def _bgr(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)


def _overlay(image: np.ndarray, m: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    return cv2.addWeighted(_bgr(image), 1 - alpha, _heat(m), alpha, 0)


def _grid(maps: np.ndarray, cols: int = 8, cell: int = 64, limit: int = 32) -> np.ndarray:
    """The first ``limit`` channels of (C, H, W) tiled as heatmaps."""
    maps = maps[:limit]
    rows = (len(maps) + cols - 1) // cols
    h, w = maps.shape[1:]
    scale = cell / max(h, w)
    ch, cw = max(1, round(h * scale)), max(1, round(w * scale))
    canvas = np.zeros((rows * (ch + 2), cols * (cw + 2), 3), np.uint8)
    for i, m in enumerate(maps):
        r, c = divmod(i, cols)
        tile = cv2.resize(_heat(m), (cw, ch), interpolation=cv2.INTER_NEAREST)
        canvas[r * (ch + 2) : r * (ch + 2) + ch, c * (cw + 2) : c * (cw + 2) + cw] = tile
    return canvas


def _upscale(img: np.ndarray, min_side: int = 160) -> np.ndarray:
    h, w = img.shape[:2]
    f = max(1, int(np.ceil(min_side / max(min(h, w), 1))))
    return cv2.resize(img, (w * f, h * f), interpolation=cv2.INTER_NEAREST) if f > 1 else img


def write_inspection(result: dict[str, Any], folder: str | os.PathLike[str]) -> list[Path]:
    """Write the ``.npz`` files and PNG renderings of :func:`inspect_image` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def npz(name: str, arrays: dict[str, np.ndarray]) -> None:
        _save_npz(folder / name, arrays)
        written.append(folder / name)

    def png(name: str, bgr: np.ndarray) -> None:
        _save_png(folder / name, bgr)
        written.append(folder / name)

    image = result["image"]
    if result["feature_maps"]:
        npz("feature_maps.npz", result["feature_maps"])
        for name, maps in result["feature_maps"].items():
            png(f"feature_maps_{_safe(name)}.png", _grid(maps))
    if result.get("spatial_states"):
        npz("spatial_states.npz", result["spatial_states"])
        for name, states in result["spatial_states"].items():  # the last step's channels
            png(f"spatial_{_safe(name)}.png", _grid(states[-1]))
    if result["hidden_states"]:
        npz("hidden_states.npz", result["hidden_states"])
        for name, states in result["hidden_states"].items():
            png(f"hidden_{_safe(name)}.png", _upscale(_heat(states.T), 120))
    if "gradcam" in result:
        g = result["gradcam"]
        npz("gradcam.npz", g)
        png("gradcam.png", _upscale(_overlay(image, g["cam"])))
    if "ctc" in result:
        c = result["ctc"]
        npz("ctc.npz", c)
        png("ctc.png", _upscale(_heat(c["probs"].T), 120))
    if "attention" in result:
        a = result["attention"]
        npz("attention.npz", a)
        for i, (word, m) in enumerate(zip(a["tokens"], a["maps"])):
            png(f"attention_{i:02d}_{word}.png", _upscale(_overlay(image, m)))
    return written
