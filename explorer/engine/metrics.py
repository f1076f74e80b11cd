"""Classification metrics on plain numpy arrays (the UI and JSON output take these as-is)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ClassificationReport", "classification_report", "confusion_matrix", "precision_recall_f1"]


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) counts; rows are true classes, columns predictions."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} differ in shape")
    idx = y_true * num_classes + y_pred
    return np.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


@dataclass
class ClassificationReport:
    labels: list[str]
    confusion: np.ndarray  # (K, K) rows = true class
    loss: float | None = None

    @property
    def samples(self) -> int:
        return int(self.confusion.sum())

    @property
    def accuracy(self) -> float:
        n = self.samples
        return float(np.trace(self.confusion) / n) if n else float("nan")

    @property
    def per_class(self) -> dict[str, float | None]:
        """Recall per class (accuracy on that class's images); None for an absent class."""
        support = self.confusion.sum(axis=1)
        return {
            label: (float(self.confusion[i, i] / support[i]) if support[i] else None)
            for i, label in enumerate(self.labels)
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "loss": self.loss,
            "samples": self.samples,
            "per_class": self.per_class,
            "support": {label: int(n) for label, n in zip(self.labels, self.confusion.sum(axis=1))},
            "labels": list(self.labels),
            "confusion": self.confusion.tolist(),
        }


def classification_report(
    y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str], loss: float | None = None
) -> ClassificationReport:
    return ClassificationReport(list(labels), confusion_matrix(y_true, y_pred, len(labels)), loss)


def precision_recall_f1(confusion: np.ndarray, labels: Sequence[str]) -> dict[str, dict[str, float | int | None]]:
    """Per class of a (K, K) confusion (rows = true class): ``precision`` (of the images predicted
    as the class, the share that are), ``recall`` (of the class's images, the share found), their
    harmonic mean ``f1`` and ``support`` (images of the class). A ratio with nothing to divide by
    (a class never predicted, or absent) is None; F1 is None when either part is, 0 when both are 0."""
    c = np.asarray(confusion, dtype=np.int64)
    tp = np.diag(c)
    predicted, support = c.sum(axis=0), c.sum(axis=1)
    out: dict[str, dict[str, float | int | None]] = {}
    for i, label in enumerate(labels):
        p = float(tp[i] / predicted[i]) if predicted[i] else None
        r = float(tp[i] / support[i]) if support[i] else None
        f1 = None if p is None or r is None else (2 * p * r / (p + r) if p + r > 0 else 0.0)
        out[label] = {"precision": p, "recall": r, "f1": f1, "support": int(support[i])}
    return out
