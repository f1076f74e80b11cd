"""Look inside a trained model for one image: what ``model-explorer inspect`` writes.

:func:`inspect_image` returns plain numpy arrays (the UI draws the same data):

- ``feature_maps``: conv layer name -> (C, H, W), the exact activations of the forward pass;
- ``hidden_states``: recurrent layer:direction[:gate] -> (T, H);
- ``attention`` (caption runs): ``tokens`` and ``maps`` (n_tokens, H, W) at the image's own
  resolution, each map summing to 1;
- ``ctc`` (sequence runs): ``probs`` (T, classes), ``charset``, ``best_path``;
- ``gradcam`` (classify runs): ``cam`` (H, W) in [0, 1] at the image's own resolution, for
  the predicted class or ``target``.

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
from .ctc import greedy_decode
from .tasks import get_task

__all__ = ["inspect_image", "write_inspection", "grad_cam"]


def _split_intermediates(inter: dict[str, torch.Tensor]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    feats, states = {}, {}
    for name, t in inter.items():
        a = t.detach().float().cpu().numpy()
        if ":" in name and a.ndim == 3:  # (B, T, H) per layer and direction, gates included
            states[name] = a[0]
        elif a.ndim == 4 and ":" not in name:  # (B, C, H, W) conv activations
            feats[name] = a[0]
    return feats, states


def grad_cam(
    run: Run, x: torch.Tensor, target: int | None = None, layer: str | None = None
) -> tuple[np.ndarray, int, str]:
    """Grad-CAM (Selvaraju et al.) of a classification model for one normalised image.

    Uses the last spatial conv activation of ``forward_intermediates`` (or ``layer``):
    cam = ReLU(sum_c mean_hw(d score / d A_c) * A_c), scaled to [0, 1].

    Returns:
        (cam at the activation's resolution, class index used, layer name).
    """
    model = run.model
    with torch.enable_grad():
        x = x.detach().requires_grad_(False)
        out, inter = model.forward_intermediates(x)
        spatial = [n for n, t in inter.items() if t.dim() == 4 and ":" not in n and min(t.shape[-2:]) > 1]
        if layer is None:
            if not spatial:
                raise ValueError("this model has no spatial conv activation to explain")
            layer = spatial[-1]
        act = inter[layer]
        k = len(run.labels)
        cls = int(out[0, :k].argmax()) if target is None else int(target)
        (grad,) = torch.autograd.grad(out[0, cls], act)
    weights = grad[0].mean(dim=(1, 2), keepdim=True)
    cam = torch.relu((weights * act[0]).sum(0)).detach().cpu().numpy()
    cam = cam / cam.max() if cam.max() > 0 else cam
    return cam.astype(np.float32), cls, layer


def _to_size(m: np.ndarray, height: int, width: int) -> np.ndarray:
    return cv2.resize(m.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)


@torch.no_grad()
def inspect_image(run: Run, path: str | os.PathLike[str], target: str | None = None, beam: int = 1) -> dict[str, Any]:
    """Everything the model computes for one image file (numpy arrays, see module doc).

    Raises:
        DecodeError: the file cannot be used.
        ValueError: ``target`` is not one of the run's classes.
    """
    original = read_image(path)
    oh, ow = original.shape[:2]
    x = run.preprocess([path]).to(run.device)
    task = get_task(run.task, run.config.get("task_extra"))
    result: dict[str, Any] = {"image": original, "task": run.task}
    fi = getattr(run.model, "forward_intermediates", None)
    out, inter = fi(x) if fi is not None else (run.model(x), {})
    result["feature_maps"], result["hidden_states"] = _split_intermediates(inter)

    if run.task == "classify":
        if target is not None and target not in run.labels:
            raise ValueError(f"--target {target!r} is not one of the classes: {', '.join(run.labels)}")
        cam, cls, layer = grad_cam(run, x, None if target is None else run.labels.index(target))
        result["gradcam"] = {"cam": _normalise01(_to_size(cam, oh, ow)), "class": run.labels[cls], "layer": layer}
        result["prediction"] = task.predict(run.model, x, torch.tensor([x.shape[-1]]), run.labels)[0]
    elif run.task == "sequence":
        lp = out.float().log_softmax(-1)[0]
        frames = (
            run.model.output_lengths(torch.tensor([x.shape[-1]], device=x.device))[0]
            if hasattr(run.model, "output_lengths")
            else lp.shape[0]
        )
        lp = lp[: int(frames)].cpu().numpy()
        text, conf = greedy_decode(lp, run.labels)
        result["ctc"] = {"probs": np.exp(lp), "charset": np.array(run.labels), "best_path": lp.argmax(1)}
        result["prediction"] = {"text": text, "confidence": conf}
    elif run.task == "caption":
        att = task.attention(run.model, x, run.labels, beam=beam)[0]
        maps = (
            np.stack([_sum_to_one(_to_size(g, oh, ow)) for g in att["grids"]])
            if att["words"]
            else np.zeros((0, oh, ow))
        )
        result["attention"] = {"tokens": np.array(att["words"]), "maps": maps.astype(np.float32)}
        result["prediction"] = {"caption": " ".join(att["words"])}
    return result


def _normalise01(m: np.ndarray) -> np.ndarray:
    lo, hi = float(m.min()), float(m.max())
    return ((m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)).astype(np.float32)


def _sum_to_one(m: np.ndarray) -> np.ndarray:
    m = np.clip(m, 0, None)
    s = float(m.sum())
    return m / s if s > 0 else np.full_like(m, 1.0 / m.size)


# -- writing ----------------------------------------------------------------------------------


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
    return cv2.applyColorMap((_normalise01(m) * 255).astype(np.uint8), cv2.COLORMAP_VIRIDIS)


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
            png(f"feature_maps_{name.replace('.', '_')}.png", _grid(maps))
    if result["hidden_states"]:
        npz("hidden_states.npz", result["hidden_states"])
        for name, states in result["hidden_states"].items():
            png(f"hidden_{name.replace('.', '_').replace(':', '_')}.png", _upscale(_heat(states.T), 120))
    if "gradcam" in result:
        g = result["gradcam"]
        npz("gradcam.npz", {"cam": g["cam"], "class": np.array(g["class"]), "layer": np.array(g["layer"])})
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
