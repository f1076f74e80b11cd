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
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from explorer.data import Source, stratified_split

from ..config import ConfigError, DataConfig
from ..gradcam import cam_layer, class_targets, grad_cam
from ..metrics import classification_report
from ..preprocess import Preprocess
from ._maps import normalise01, to_size
from ._prepare import Geometry, fit_preprocess, load
from .base import EVAL_BATCH, Evaluation, Headline, InspectRequest, PreparedData, Split, Task

__all__ = ["ClassifyTask", "evaluate_logits"]


class ClassifyTask(Task):
    name = "classify"
    title = "Classify: one label per image"
    has_classes = True
    headline = Headline("val_accuracy", "accuracy")
    inspects = ("gradcam",)

    # -- data ----------------------------------------------------------------------------
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
        geometry = Geometry.of(preprocess) if preprocess is not None else Geometry.fixed(source.samples, cfg)
        problems = [str(p) for p in source.problems]
        images = load(
            source.samples,
            geometry,
            origin=source.origin,
            max_pixels=cfg.max_pixels,
            problems=problems,
            progress=progress,
            data=cfg,
        )
        targets = [s.target for s in images.samples]
        labels = _checked_labels(targets, labels, source.origin)
        index = {name: i for i, name in enumerate(labels)}
        y = torch.tensor([index[t] for t in targets], dtype=torch.int64)
        train_idx, val_idx = stratified_split(targets, cfg.val_fraction, seed)
        settings = (extra or {}).get("regression") or {}
        columns = list(settings.get("columns", cfg.regression_columns))
        reg, regression = None, {}
        if columns:
            raw = _regression_values(images.samples, columns)
            stats = settings or _column_stats(raw[train_idx], columns)
            reg = _standardise(raw, stats)
            regression = {"columns": columns, "mean": list(stats["mean"]), "std": list(stats["std"])}
        preprocess = preprocess or fit_preprocess(images, geometry, cfg.resize, train_idx)

        def split(ids: np.ndarray) -> Split:
            x, _ = images.take(ids)
            t = torch.from_numpy(np.asarray(ids, dtype=np.int64))
            targets: Any = y[t].contiguous() if reg is None else {"y": y[t].contiguous(), "reg": reg[t].contiguous()}
            return Split(x, targets, [str(images.samples[i].path) for i in ids])

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
        problems = [str(p) for p in source.problems]
        problems += [
            f"{s.path}: class '{s.target}' is not one of the model's classes"
            for s in source.samples
            if s.target not in index
        ]
        known = [s for s in source.samples if s.target in index]
        images = load(
            known, Geometry.of(preprocess), origin="", max_pixels=max_pixels, problems=problems, empty_ok=True
        )
        self.configure(extra)
        y = torch.tensor([index[s.target] for s in images.samples], dtype=torch.int64)
        targets: Any = y
        reg = self.regression
        present = {name for s in images.samples for name, _ in s.extras}
        if reg and set(reg["columns"]) <= present:  # score the regression head too when the data has the columns
            targets = {"y": y, "reg": _standardise(_regression_values(images.samples, reg["columns"]), reg)}
        return Split(images.images, targets, [str(s.path) for s in images.samples]), problems

    def describe_dataset(self, images: int, classes: int) -> str:
        return f"{images:,} images · {classes} class{'es' if classes != 1 else ''}"

    def check_targets(self, counts: Mapping[str, int]) -> str | None:
        if sum(1 for n in counts.values() if n > 0) < 2:
            return "Classification needs at least two classes with images; add another class and drop images on it."
        return None

    # -- multi-task ----------------------------------------------------------------------
    @property
    def regression(self) -> dict[str, Any]:
        """columns, mean, std, weight of the regression targets; empty when single-task."""
        return self.extra.get("regression") or {}

    def output_count(self, labels: Sequence[str]) -> int:
        """Class logits, then one output per regression column."""
        return len(labels) + len(self.regression.get("columns", []))

    @property
    def loss_name(self) -> str:
        return "cross-entropy + MSE" if self.regression else "cross-entropy"

    def export_info(self, model: nn.Module, labels: list[str], input_shape: tuple[int, int, int | None]) -> dict:
        n = len(labels)
        line = f"(batch, {self.output_count(labels)}): scores; softmax over the first {n} gives the probability of labels[i]"
        reg = self.regression
        if not reg:
            return {"outputs": {"logits": line}}
        line += "; output n + j is regression column j standardised: value = output * std[j] + mean[j]"
        return {"outputs": {"logits": line}, "regression": {k: reg[k] for k in ("columns", "mean", "std")}}

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

    def format_prediction(self, pred: Mapping[str, Any], top: int = 3) -> str:
        """``label (0.987)  [other 0.010, ...]`` plus the regression values, if any."""
        ranked = sorted(pred["probabilities"].items(), key=lambda kv: -kv[1])[:top]
        others = ", ".join(f"{k} {v:.3f}" for k, v in ranked[1:])
        values = "  ".join(f"{c} {v:.4g}" for c, v in pred.get("values", {}).items())
        line = f"{pred['label']} ({pred['confidence']:.3f})" + (f"  [{others}]" if others else "")
        return line + (f"  {values}" if values else "")

    def prediction_columns(self) -> tuple[str, ...]:
        return ("Prediction", "Confidence", *self.regression.get("columns", []))

    def prediction_cells(self, pred: Mapping[str, Any]) -> tuple[str, ...]:
        values = pred.get("values", {})
        cols = self.regression.get("columns", [])
        return (pred["label"], f"{pred['confidence']:.1%}", *(f"{values.get(c, float('nan')):.4g}" for c in cols))

    def inspect(self, req: InspectRequest) -> dict[str, Any]:
        """The prediction, and Grad-CAM for the predicted class (or ``target``) where the
        model has a spatial feature map."""
        labels, target = req.labels, req.target
        if target is not None and target not in labels:
            raise ValueError(f"--target {target!r} is not one of the classes: {', '.join(labels)}")
        widths = torch.tensor([req.x.shape[-1]])
        result: dict[str, Any] = {"prediction": self.predict(req.model, req.x, widths, labels)[0]}
        hw = (int(req.x.shape[-2]), int(req.x.shape[-1]))
        layer = cam_layer(req.model, hw, {k: tuple(v.shape[1:]) for k, v in req.intermediates.items()})
        if layer is not None:  # the one Grad-CAM (explorer.engine.gradcam), also for tile mosaics
            cam = grad_cam(req.model, req.x, class_targets(req.out, labels, target, len(labels)), layer=layer)
            result["gradcam"] = {
                "cam": normalise01(to_size(cam.raw[0], *req.image_size)),
                "class": np.array(cam.maps[0].label),
                "layer": np.array(cam.layer),
            }
        return result


@torch.no_grad()
def evaluate_logits(
    model: nn.Module,
    pre: Preprocess,
    x: torch.Tensor,
    y: torch.Tensor,
    device: torch.device,
    autocast: Any = nullcontext,
    batch_size: int = EVAL_BATCH,
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


def _checked_labels(targets: list[str], labels: list[str] | None, origin: str) -> list[str]:
    """The run's class names: the given ones (resuming) or those present.

    Raises:
        ConfigError: a class unknown to the run, or fewer than two classes.
    """
    present = sorted(set(targets))
    labels = list(labels) if labels is not None else present
    unknown = sorted(set(present) - set(labels))
    if unknown:
        raise ConfigError("data.source", f"classes not known to this run: {', '.join(unknown)}")
    if len(labels) < 2:
        raise ConfigError("data.source", f"classification needs at least two classes, found {labels} in {origin}")
    return labels


def _standardise(raw: np.ndarray, stats: Mapping[str, Any]) -> torch.Tensor:
    return torch.from_numpy(((raw - np.asarray(stats["mean"])) / np.asarray(stats["std"])).astype(np.float32))


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
    model: nn.Module,
    pre: Preprocess,
    x: torch.Tensor,
    device: torch.device,
    autocast: Any,
    batch_size: int = EVAL_BATCH,
) -> torch.Tensor:
    was_training = model.training
    model.eval()
    outs = []
    for i in range(0, len(x), batch_size):
        with autocast():
            outs.append(model(pre.to_tensor(x[i : i + batch_size].to(device))).float())
    model.train(was_training)
    return torch.cat(outs)
