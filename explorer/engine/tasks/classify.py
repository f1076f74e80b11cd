"""Task ``classify``: one label per image, cross-entropy, accuracy and confusion.

Multi-task option: numeric manifest columns named in ``data.regression_columns``
become regression targets predicted next to the class. The model gets
``classes + columns`` outputs: the first ``classes`` are class logits, the rest are
the standardised column values (one shared trunk, a linear head per task). The loss is
``cross-entropy + regression_weight * MSE`` on standardised values; empty cells are
masked out; validation reports the mean absolute error in the columns' own units.
"""

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
        columns = list((extra or {}).get("regression", {}).get("columns", cfg.regression_columns))
        reg, regression = None, {}
        if columns:
            raw = _regression_values(loaded.samples, columns)
            stats = (extra or {}).get("regression") or _column_stats(raw[train_idx], columns)
            mean, std = np.asarray(stats["mean"]), np.asarray(stats["std"])
            reg = torch.from_numpy(((raw - mean) / std).astype(np.float32))
            regression = {"columns": columns, "mean": list(stats["mean"]), "std": list(stats["std"])}
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
            targets: Any = y[t].contiguous() if reg is None else {"y": y[t].contiguous(), "reg": reg[t].contiguous()}
            return Split(images[t].contiguous(), targets, [paths[i] for i in ids])

        return PreparedData(
            task=self.name,
            labels=labels,
            preprocess=preprocess,
            train=split(train_idx),
            val=split(val_idx),
            problems=problems,
            seconds=time.perf_counter() - t0,
            extra=self.configure({"regression": {**regression, "weight": cfg.regression_weight}} if regression else {}),
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
        self.configure(extra)
        y = torch.tensor([index[s.target] for s in loaded.samples], dtype=torch.int64)
        targets: Any = y
        reg = self.regression
        present = {name for s in loaded.samples for name, _ in s.extras}
        if reg and set(reg["columns"]) <= present:  # score the regression head too when the data has the columns
            raw = _regression_values(loaded.samples, reg["columns"])
            values = (raw - np.asarray(reg["mean"])) / np.asarray(reg["std"])
            targets = {"y": y, "reg": torch.from_numpy(values.astype(np.float32))}
        return Split(torch.from_numpy(loaded.images), targets, [str(s.path) for s in loaded.samples]), problems

    # -- multi-task ----------------------------------------------------------------------
    @property
    def regression(self) -> dict[str, Any]:
        """columns, mean, std, weight of the regression targets; empty when single-task."""
        return self.extra.get("regression") or {}

    def num_outputs(self, data: PreparedData) -> int:
        return len(data.labels) + len(self.regression.get("columns", []))

    def batch(self, split: Split, idx: torch.Tensor) -> tuple[torch.Tensor, Any]:
        t = split.targets
        return split.x[idx], ({k: v[idx] for k, v in t.items()} if isinstance(t, dict) else t[idx])

    # -- training -------------------------------------------------------------------------
    def loss(self, model: nn.Module, x: torch.Tensor, targets: Any) -> tuple[torch.Tensor, torch.Tensor, int]:
        out = model(x).float()
        if isinstance(targets, dict):
            y, reg = targets["y"], targets["reg"]
            k = out.shape[1] - reg.shape[1]
            logits = out[:, :k]
            loss = F.cross_entropy(logits, y) + self.regression["weight"] * _masked_mse(out[:, k:], reg)
        else:
            y, logits = targets, out
            loss = F.cross_entropy(logits, y)
        with torch.no_grad():
            correct = (logits.argmax(1) == y).sum()
        return loss, correct, len(y)

    def evaluate(
        self, model: nn.Module, split: Split, pre: Preprocess, device: torch.device, autocast: Any, labels: list[str]
    ) -> Evaluation:
        if not isinstance(split.targets, dict):
            loss, acc, preds = evaluate_logits(
                model, pre, split.x, split.targets, device, autocast, classes=len(labels)
            )
            rep = classification_report(split.targets.cpu().numpy(), preds, labels, loss=loss)
            return Evaluation(loss=loss, accuracy=acc, metrics={"per_class": rep.per_class}, predictions=(preds, rep))
        y, reg = split.targets["y"], split.targets["reg"]
        k = len(labels)
        outs = _all_outputs(model, pre, split.x, device, autocast)
        class_loss = float(F.cross_entropy(outs[:, :k], y.to(outs.device)))
        reg_loss = float(_masked_mse(outs[:, k:], reg.to(outs.device)))
        preds = outs[:, :k].argmax(1).cpu().numpy()
        rep = classification_report(
            y.cpu().numpy(), preds, labels, loss=class_loss + self.regression["weight"] * reg_loss
        )
        metrics: dict[str, Any] = {"per_class": rep.per_class, "class_loss": class_loss, "regression_loss": reg_loss}
        mae = _mae(outs[:, k:].cpu(), reg.cpu(), self.regression)
        metrics["mae"] = float(np.nanmean(list(mae.values()))) if mae else float("nan")
        metrics["mae_per_column"] = mae
        return Evaluation(loss=rep.loss, accuracy=rep.accuracy, metrics=metrics, predictions=(preds, rep))

    def final_metrics(self, ev: Evaluation, labels: list[str]) -> dict[str, Any]:
        _, rep = ev.predictions
        out = {
            "val_accuracy": rep.accuracy,
            "val_loss": ev.loss,
            "val_per_class": rep.per_class,
            "val_confusion": rep.confusion.tolist(),
        }
        if "mae" in ev.metrics:
            out.update({"val_mae": ev.metrics["mae"], "val_mae_per_column": ev.metrics["mae_per_column"]})
        return out

    def report(self, ev: Evaluation, labels: list[str]) -> dict[str, Any]:
        _, rep = ev.predictions
        out = rep.to_dict()
        if "mae" in ev.metrics:
            out.update({"mae": ev.metrics["mae"], "mae_per_column": ev.metrics["mae_per_column"]})
        return out

    @torch.no_grad()
    def predict(
        self, model: nn.Module, x: torch.Tensor, widths: torch.Tensor, labels: list[str], beam: int = 0
    ) -> list[dict[str, Any]]:
        outs = model(x).float().cpu()
        classes = len(labels)
        probs = torch.softmax(outs[:, :classes], dim=1)
        reg = self.regression
        out = []
        for j, pr in enumerate(probs):
            best = int(pr.argmax())
            out.append(
                {
                    "label": labels[best],
                    "confidence": float(pr[best]),
                    "probabilities": {lab: float(v) for lab, v in zip(labels, pr.tolist())},
                }
            )
            if reg:  # the outputs after the class logits are the standardised column values
                values = outs[j, classes:].numpy() * np.asarray(reg["std"]) + np.asarray(reg["mean"])
                out[-1]["values"] = {c: float(v) for c, v in zip(reg["columns"], values)}
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
    classes: int | None = None,
) -> tuple[float, float, np.ndarray]:
    """Mean loss, accuracy and predicted classes of a uint8 image tensor (only the first
    ``classes`` outputs are class logits when the model has regression outputs too)."""
    was_training = model.training
    model.eval()
    total, correct = 0.0, 0
    preds = []
    for i in range(0, len(y), batch_size):
        xb = pre.to_tensor(x[i : i + batch_size].to(device))
        yb = y[i : i + batch_size].to(device)
        with autocast():
            logits = model(xb).float()[:, :classes]
        total += float(F.cross_entropy(logits, yb, reduction="sum"))
        p = logits.argmax(1)
        correct += int((p == yb).sum())
        preds.append(p.cpu())
    model.train(was_training)
    n = max(len(y), 1)
    return total / n, correct / n, torch.cat(preds).numpy() if preds else np.zeros(0, dtype=np.int64)


def _regression_values(samples: list[Any], columns: list[str]) -> np.ndarray:
    """(N, R) float64 of the named numeric manifest columns; NaN for empty cells."""
    available = sorted({name for s in samples for name, _ in s.extras})
    missing = [c for c in columns if c not in available]
    if missing:
        raise ConfigError(
            "data.regression_columns",
            f"column(s) {', '.join(missing)} not found among the manifest's numeric columns "
            f"({', '.join(available) or 'none'})",
        )
    out = np.full((len(samples), len(columns)), np.nan)
    pos = {c: i for i, c in enumerate(columns)}
    for r, s in enumerate(samples):
        for name, value in s.extras:
            if name in pos:
                out[r, pos[name]] = value
    return out


def _column_stats(values: np.ndarray, columns: list[str]) -> dict[str, Any]:
    mean = np.nanmean(values, axis=0) if len(values) else np.zeros(len(columns))
    std = np.nanstd(values, axis=0) if len(values) else np.ones(len(columns))
    mean = np.where(np.isfinite(mean), mean, 0.0)
    std = np.where(np.isfinite(std) & (std > 1e-12), std, 1.0)
    return {"mean": mean.tolist(), "std": std.tolist()}


def _masked_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE over the cells that hold a value (empty manifest cells are NaN)."""
    mask = torch.isfinite(target)
    if not bool(mask.any()):
        return pred.sum() * 0.0
    return F.mse_loss(pred[mask], target[mask])


def _mae(pred: torch.Tensor, target: torch.Tensor, reg: dict[str, Any]) -> dict[str, float]:
    """Mean absolute error per column, in the column's own units."""
    std = torch.tensor(reg["std"], dtype=torch.float32)
    out = {}
    for i, col in enumerate(reg["columns"]):
        m = torch.isfinite(target[:, i])
        err = (pred[m, i] - target[m, i]).abs() * std[i]
        out[col] = float(err.mean()) if bool(m.any()) else float("nan")
    return out


@torch.no_grad()
def _all_outputs(
    model: nn.Module, pre: Preprocess, x: torch.Tensor, device: torch.device, autocast: Any, batch_size: int = 256
) -> torch.Tensor:
    was_training = model.training
    model.eval()
    outs = []
    for i in range(0, len(x), batch_size):
        with autocast():
            outs.append(model(pre.to_tensor(x[i : i + batch_size].to(device))).float())
    model.train(was_training)
    return torch.cat(outs)
