"""Maps at the input image's resolution, and Grad-CAM, for the tasks' ``inspect``."""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import nn

__all__ = ["to_size", "normalise01", "sum_to_one", "cam_layer", "grad_cam"]


def to_size(m: np.ndarray, height: int, width: int) -> np.ndarray:
    """A 2-D map resized (bilinear) to (height, width), float32."""
    return cv2.resize(m.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)


def normalise01(m: np.ndarray) -> np.ndarray:
    """Scaled to [0, 1] by its own range (zeros when flat)."""
    lo, hi = float(m.min()), float(m.max())
    return ((m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)).astype(np.float32)


def sum_to_one(m: np.ndarray) -> np.ndarray:
    """Clipped at 0 and scaled to sum to 1 (uniform when empty)."""
    m = np.clip(m, 0, None)
    s = float(m.sum())
    return m / s if s > 0 else np.full_like(m, 1.0 / m.size)


def cam_layer(model: nn.Module, image_size: tuple[int, int], inter: dict[str, torch.Tensor]) -> str | None:
    """The layer Grad-CAM explains: the last declared feature map with a spatial extent
    (more than one cell), when the model's output is class scores; else None."""
    if model.output_info(image_size).kind != "logits":
        return None
    info = model.intermediate_info(image_size)
    spatial = [n for n, d in info.items() if d.kind == "feature_map" and n in inter and min(inter[n].shape[-2:]) > 1]
    return spatial[-1] if spatial else None


def grad_cam(
    model: nn.Module, x: torch.Tensor, classes: int, target: int | None = None
) -> tuple[np.ndarray, int, str] | None:
    """Grad-CAM (Selvaraju et al.) of one normalised image (1, C, H, W) for the layer
    :func:`cam_layer` picks: cam = ReLU(sum_c mean_hw(d score / d A_c) * A_c), scaled to [0, 1].

    Returns:
        (cam at the activation's resolution, class index used: ``target`` or the predicted one
        among the first ``classes`` outputs, layer name), or None when the model has no
        spatial feature map on the path to a class output (the tile mosaics that
        patch_rnn and conv_rnn declare are assembled for viewing, after the fact).
    """
    with torch.enable_grad():
        out, inter = model.forward_intermediates(x.detach())
        layer = cam_layer(model, (int(x.shape[-2]), int(x.shape[-1])), inter)
        if layer is None:
            return None
        act = inter[layer]
        cls = int(out[0, :classes].argmax()) if target is None else int(target)
        (grad,) = torch.autograd.grad(out[0, cls], act, allow_unused=True)
    if grad is None:  # a rendering of the activations (a tile mosaic), not on the output's path
        return None
    weights = grad[0].mean(dim=(1, 2), keepdim=True)
    cam = torch.relu((weights * act[0]).sum(0)).detach().float().cpu().numpy()
    cam = cam / cam.max() if cam.max() > 0 else cam
    return cam.astype(np.float32), cls, layer
