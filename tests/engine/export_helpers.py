"""Helpers of the export tests: untrained run folders of any family, and a client that
rebuilds the input from the exported JSON alone (cv2 + numpy, none of the app's code)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from explorer.engine import runfolder
from explorer.engine.tasks import get_task


def make_run(
    folder: Path,
    arch: str,
    task: str,
    *,
    params: dict[str, Any] | None = None,
    channels: int = 1,
    size: tuple[int, int | None] = (32, 32),
    labels: list[str] | None = None,
    extra: dict[str, Any] | None = None,
    seed: int = 0,
) -> Path:
    """A run folder with random weights (no training): enough to export and reload."""
    import torch

    torch.manual_seed(seed)
    t = get_task(task, extra)
    ex = t.example_forward(arch, params or {}, in_channels=channels, image_size=size, labels=labels)
    h, w = size
    pre = {
        "channels": channels,
        "color": "gray" if channels == 1 else "rgb",
        "height": h,
        "width": w,
        "resize": "auto",
        "scale": 1 / 255,
        "mean": [0.5] * channels,
        "std": [0.25] * channels,
        "fit": "stretch" if w is not None else "keep_aspect",
        "max_width": None if w is not None else 8 * h,
        "pad": "edge",
    }
    model = {"in_channels": channels, "num_outputs": ex.num_outputs, "image_size": [h, w]}
    folder.mkdir(parents=True)
    cfg = {"arch": arch, "params": ex.params, "task": task, "labels": ex.labels, "preprocess": pre, "model": model}
    runfolder.write_config(folder, {**cfg, "task_extra": t.extra})
    runfolder.write_weights(folder, ex.model.state_dict(), {"arch": arch})
    return folder


def client_input(path: str | Path, pre: dict[str, Any]) -> np.ndarray:
    """float32 (1, C, H, W) from an image file and the export's ``preprocess`` only."""
    bgr = cv2.imdecode(np.fromfile(str(path), np.uint8), cv2.IMREAD_COLOR)
    img = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if pre["channels"] == 1:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[:, :, None]
    src_h, src_w = img.shape[:2]
    height, width = pre["height"], pre["width"]
    if width is None:
        width = max(1, round(src_w * height / src_h))
        if pre["max_width"] is not None:
            width = min(width, pre["max_width"])
    if (src_h, src_w) != (height, width):
        grows = height > src_h or width > src_w
        mode = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR}.get(pre["resize"])
        mode = mode if mode is not None else (cv2.INTER_LINEAR if grows else cv2.INTER_AREA)
        img = cv2.resize(img, (width, height), interpolation=mode).reshape(height, width, -1)
    x = img.astype(np.float32) * np.float32(pre["scale"])
    x = (x - np.float32(pre["mean"])) / np.float32(pre["std"])
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def ctc_greedy(logits: np.ndarray, labels: list[str], blank: int) -> str:
    """argmax per frame, merge repeats, drop blanks; class i >= 1 is labels[i - 1]."""
    best = logits.argmax(-1)
    out, prev = [], blank
    for k in best:
        if k != prev and k != blank:
            out.append(labels[k - 1])
        prev = k
    return "".join(out)


def greedy_caption(encoder: Any, decoder: Any, image: np.ndarray, side: dict[str, Any]) -> str:
    """The README's greedy loop over the two ONNX graphs."""
    features, h, c = encoder.run(None, {"image": image})
    token = np.array([side["start"]], dtype=np.int64)
    words = []
    for _ in range(side["max_length"]):
        logits, h, c, _alpha = decoder.run(None, {"token": token, "h": h, "c": c, "features": features})
        token = logits.argmax(-1).astype(np.int64)
        if int(token[0]) == side["end"]:
            break
        words.append(side["vocabulary"][int(token[0])])
    return " ".join(words)
