"""What a task is to the trainer: how to prepare data, batch it, score it.

The training loop is the same for every task; a :class:`Task` supplies the parts
that differ: turning a source into tensors (:meth:`Task.prepare`), cutting a batch
(:meth:`Task.batch`), the loss and its running statistic (:meth:`Task.loss`), and
the validation figures (:meth:`Task.evaluate`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from explorer.data import Source

from ..config import DataConfig
from ..preprocess import Preprocess

__all__ = ["Split", "PreparedData", "Evaluation", "Task"]


@dataclass
class Split:
    """One part (train or validation) of a prepared data set."""

    x: torch.Tensor  # uint8 (N, H, W, C); variable-width images are right-padded to the widest
    targets: Any  # task specific, indexable by a LongTensor of sample indices
    paths: list[str]
    widths: torch.Tensor | None = None  # int64 (N,) true widths of variable-width images
    size: int | None = None  # number of training items when it differs from the images (captions)

    def __len__(self) -> int:
        return int(self.x.shape[0]) if self.size is None else self.size

    def to(self, device: torch.device) -> Split:
        def move(v: Any) -> Any:
            if torch.is_tensor(v):
                return v.to(device)
            if isinstance(v, dict):
                return {k: move(t) for k, t in v.items()}
            return v

        return Split(move(self.x), move(self.targets), self.paths, move(self.widths), self.size)


@dataclass
class PreparedData:
    task: str
    labels: list[str]  # class names, charset or vocabulary
    preprocess: Preprocess
    train: Split
    val: Split
    problems: list[str]
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)  # task-specific, JSON-able (saved in config.json)


@dataclass
class Evaluation:
    loss: float
    accuracy: float  # the task's headline accuracy (sequence accuracy for text)
    metrics: dict[str, Any]  # everything else, under stable names (cer, bleu4, per_class, ...)
    predictions: Any = None


class Task:
    """One instance per run (see :func:`explorer.engine.tasks.get_task`); ``extra`` holds
    the run's task-specific settings that ``config.json`` keeps as ``task_extra``."""

    name: str = ""

    def __init__(self, extra: dict[str, Any] | None = None) -> None:
        self.extra: dict[str, Any] = {}
        self.configure(extra or {})

    def configure(self, extra: dict[str, Any]) -> dict[str, Any]:
        """Adopt a run's task settings (from preparation or a saved run); returns them."""
        self.extra = dict(extra)
        return self.extra

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
        raise NotImplementedError

    def prepare_eval(
        self, source: Source, preprocess: Preprocess, labels: list[str], extra: dict[str, Any], max_pixels: int
    ) -> tuple[Split, list[str]]:
        """The whole source as one split with a trained run's fixed input contract,
        plus problem lines (unusable files, unknown classes or characters)."""
        raise NotImplementedError

    def num_outputs(self, data: PreparedData) -> int:
        return len(data.labels)

    def model_params(self, arch: str, params: dict[str, Any]) -> dict[str, Any]:
        """Family parameters this task needs set (e.g. a CTC head)."""
        return params

    def check_model(self, model: nn.Module, data: PreparedData) -> None:
        """Refuse a model/data combination that cannot train (raise ConfigError)."""

    def batch(self, split: Split, idx: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """(uint8 images (B, H, W, C), targets) of the samples ``idx``."""
        return split.x[idx], split.targets[idx]

    def loss(self, model: nn.Module, x: torch.Tensor, targets: Any) -> tuple[torch.Tensor, torch.Tensor, int]:
        """(mean loss, number of correct samples as a tensor (may be fractional), batch size)."""
        raise NotImplementedError

    def evaluate(
        self, model: nn.Module, split: Split, pre: Preprocess, device: torch.device, autocast: Any, labels: list[str]
    ) -> Evaluation:
        raise NotImplementedError

    def final_metrics(self, ev: Evaluation, labels: list[str]) -> dict[str, Any]:
        """The stable ``metrics.json`` keys for this task's validation figures."""
        raise NotImplementedError

    def report(self, ev: Evaluation, labels: list[str]) -> dict[str, Any]:
        """What ``evaluate --json`` prints for this task (stable keys)."""
        raise NotImplementedError

    def probe_output(self, out: torch.Tensor, labels: list[str]) -> tuple[np.ndarray, str | None]:
        """(probabilities, text) of the first image of a ``forward_intermediates`` output."""
        return torch.softmax(out.float(), dim=-1)[0].cpu().numpy().copy(), None

    def predict(
        self, model: nn.Module, x: torch.Tensor, widths: torch.Tensor, labels: list[str], beam: int = 0
    ) -> list[dict[str, Any]]:
        """One result dict per normalised image of the batch ``x`` (B, C, H, W)."""
        raise NotImplementedError
