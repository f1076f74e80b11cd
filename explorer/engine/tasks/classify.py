"""Task ``classify``: one label per image, cross-entropy, accuracy and confusion."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from explorer.data import Source, infer_image_size, load_images, stratified_split

from ..config import ConfigError, DataConfig
from ..metrics import classification_report
from ..preprocess import Preprocess, channel_stats
from .base import Evaluation, PreparedData, Split, Task

__all__ = ["ClassifyTask", "evaluate_logits"]


class ClassifyTask(Task):
    name = "classify"

    def prepare(
        self,
        source: Source,
        cfg: DataConfig,
        *,
        seed: int,
        labels: list[str] | None = None,
        preprocess: Preprocess | None = None,
        extra: dict[str, Any] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> PreparedData:
        t0 = time.perf_counter()
        if preprocess is not None:
            height, width, color, resize = preprocess.height, preprocess.width, preprocess.color, preprocess.resize
        else:
            height, width = cfg.height, cfg.width
            if height is None or width is None:
                h, w = infer_image_size(source.samples)
                height, width = height or h, width or w
            color, resize = cfg.color, cfg.resize
        assert width is not None
        loaded = load_images(
            source.samples,
            height=height,
            width=width,
            color=color,
            resize=resize,
            max_pixels=cfg.max_pixels,
            progress=progress,
        )
        problems = [str(p) for p in list(source.problems) + list(loaded.problems)]
        if not loaded.samples:
            raise ConfigError("data.source", f"no usable image in {source.origin} ({len(problems)} unusable files)")
        present = sorted({s.target for s in loaded.samples})
        labels = list(labels) if labels is not None else present
        unknown = sorted(set(present) - set(labels))
        if unknown:
            raise ConfigError("data.source", f"classes not known to this run: {', '.join(unknown)}")
        if len(labels) < 2:
            raise ConfigError(
                "data.source", f"classification needs at least two classes, found {labels} in {source.origin}"
            )
        index = {name: i for i, name in enumerate(labels)}
        y = torch.tensor([index[s.target] for s in loaded.samples], dtype=torch.int64)
        train_idx, val_idx = stratified_split([s.target for s in loaded.samples], cfg.val_fraction, seed)
        if preprocess is None:
            mean, std = channel_stats(loaded.images[train_idx])
            preprocess = Preprocess(
                channels=loaded.images.shape[-1],
                color=loaded.color,
                height=height,
                width=width,
                resize=cfg.resize,
                mean=mean,
                std=std,
            )
        images = torch.from_numpy(loaded.images)
        paths = [str(s.path) for s in loaded.samples]

        def split(ids: np.ndarray) -> Split:
            t = torch.from_numpy(np.asarray(ids, dtype=np.int64))
            return Split(images[t].contiguous(), y[t].contiguous(), [paths[i] for i in ids])

        return PreparedData(
            task=self.name,
            labels=labels,
            preprocess=preprocess,
            train=split(train_idx),
            val=split(val_idx),
            problems=problems,
            seconds=time.perf_counter() - t0,
        )

    def prepare_eval(
        self, source: Source, preprocess: Preprocess, labels: list[str], extra: dict[str, Any], max_pixels: int
    ) -> tuple[Split, list[str]]:
        index = {name: i for i, name in enumerate(labels)}
        known = [s for s in source.samples if s.target in index]
        problems = [str(p) for p in source.problems]
        problems += [
            f"{s.path}: class '{s.target}' is not one of the model's classes"
            for s in source.samples
            if s.target not in index
        ]
        assert preprocess.width is not None
        loaded = load_images(
            known,
            height=preprocess.height,
            width=preprocess.width,
            color=preprocess.color,
            resize=preprocess.resize,
            max_pixels=max_pixels,
        )
        problems += [str(p) for p in loaded.problems]
        y = torch.tensor([index[s.target] for s in loaded.samples], dtype=torch.int64)
        return Split(torch.from_numpy(loaded.images), y, [str(s.path) for s in loaded.samples]), problems

    def loss(self, model: nn.Module, x: torch.Tensor, targets: Any) -> tuple[torch.Tensor, torch.Tensor, int]:
        logits = model(x)
        loss = F.cross_entropy(logits.float(), targets)
        with torch.no_grad():
            correct = (logits.argmax(1) == targets).sum()
        return loss, correct, len(targets)

    def evaluate(
        self, model: nn.Module, split: Split, pre: Preprocess, device: torch.device, autocast: Any, labels: list[str]
    ) -> Evaluation:
        loss, acc, preds = evaluate_logits(model, pre, split.x, split.targets, device, autocast)
        rep = classification_report(split.targets.cpu().numpy(), preds, labels, loss=loss)
        return Evaluation(loss=loss, accuracy=acc, metrics={"per_class": rep.per_class}, predictions=(preds, rep))

    def final_metrics(self, ev: Evaluation, labels: list[str]) -> dict[str, Any]:
        _, rep = ev.predictions
        return {
            "val_accuracy": rep.accuracy,
            "val_loss": ev.loss,
            "val_per_class": rep.per_class,
            "val_confusion": rep.confusion.tolist(),
        }

    def report(self, ev: Evaluation, labels: list[str]) -> dict[str, Any]:
        _, rep = ev.predictions
        return rep.to_dict()

    @torch.no_grad()
    def predict(
        self, model: nn.Module, x: torch.Tensor, widths: torch.Tensor, labels: list[str], beam: int = 0
    ) -> list[dict[str, Any]]:
        probs = torch.softmax(model(x).float(), dim=1).cpu()
        out = []
        for pr in probs:
            k = int(pr.argmax())
            out.append(
                {
                    "label": labels[k],
                    "confidence": float(pr[k]),
                    "probabilities": {lab: float(v) for lab, v in zip(labels, pr.tolist())},
                }
            )
        return out


@torch.no_grad()
def evaluate_logits(
    model: nn.Module,
    pre: Preprocess,
    x: torch.Tensor,
    y: torch.Tensor,
    device: torch.device,
    autocast: Any = nullcontext,
    batch_size: int = 256,
) -> tuple[float, float, np.ndarray]:
    """Mean loss, accuracy and predicted classes of a uint8 image tensor."""
    was_training = model.training
    model.eval()
    total, correct = 0.0, 0
    preds = []
    for i in range(0, len(y), batch_size):
        xb = pre.to_tensor(x[i : i + batch_size].to(device))
        yb = y[i : i + batch_size].to(device)
        with autocast():
            logits = model(xb).float()
        total += float(F.cross_entropy(logits, yb, reduction="sum"))
        p = logits.argmax(1)
        correct += int((p == yb).sum())
        preds.append(p.cpu())
    model.train(was_training)
    n = max(len(y), 1)
    return total / n, correct / n, torch.cat(preds).numpy() if preds else np.zeros(0, dtype=np.int64)
