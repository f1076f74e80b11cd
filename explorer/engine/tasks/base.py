"""What a task is: everything about a run that depends on its task, in one place.

The training loop, the CLI, the app, ``inspect`` and export are the same for every task;
a :class:`Task` answers each question whose answer differs, so no code outside
``explorer/engine/tasks/`` compares task names (``tests/test_task_ownership.py``):

- data: :meth:`Task.prepare` / :meth:`Task.prepare_eval` (source -> tensors),
  :meth:`Task.labels_from_targets`, :meth:`Task.input_size`, :meth:`Task.batch`;
- model: :meth:`Task.output_count`, :meth:`Task.model_params` (e.g. the CTC head),
  :meth:`Task.check_model`, :meth:`Task.example_forward` (the architecture preview);
- training: :meth:`Task.loss`, :attr:`Task.loss_name` / :attr:`Task.accuracy_name` (axes), :meth:`Task.evaluate`,
  :meth:`Task.final_metrics`, :attr:`Task.headline` (the one figure a run is judged by);
- use: :meth:`Task.predict`, :meth:`Task.format_prediction` (CLI line),
  :meth:`Task.prediction_columns` / :meth:`Task.prediction_cells` (the app's table),
  :meth:`Task.inspect` (what ``inspect`` adds for the task);
- export: :meth:`Task.export_graphs` (what is traced), :meth:`Task.export_info` (how to read the outputs);
- the app's data screens: :attr:`Task.title`, :attr:`Task.has_classes`,
  :meth:`Task.describe_dataset`, :meth:`Task.check_targets`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from explorer.data import Sample, Source
from models import Intermediate, build_model

from ..config import DataConfig
from ..preprocess import Preprocess
from ._export import ExportGraph, image_graph
from ._prepare import Geometry

__all__ = [
    "EVAL_BATCH",
    "Split",
    "PreparedData",
    "Evaluation",
    "Example",
    "ExportGraph",
    "Headline",
    "InspectRequest",
    "Task",
]

#: Images per forward pass when a task validates, evaluates or predicts a whole split. Small enough
#: that one pass of a recurrent model (an LSTM over a batch is one call a stop cannot cut) stays
#: well under the 1 s a Stop may take on a loaded CPU, and that validation's activations stay small
#: beside the data's memory budget; large enough to keep a GPU busy on these image sizes.
EVAL_BATCH = 64


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


@dataclass
class Example:
    """A model built for a preview and an input it runs on: ``model(*inputs)``."""

    model: nn.Module  # in eval mode
    inputs: tuple[torch.Tensor, ...]  # batch of one: the image (1, C, H, W), then what else forward takes
    labels: list[str]  # the labels it was built for (placeholders when the data has none yet)
    params: dict[str, Any]  # the family parameters, with those the task implies (e.g. head="ctc")
    num_outputs: int


@dataclass
class InspectRequest:
    """One image to inspect: the model's forward pass with what the model declares each part
    to be (``output_info`` / ``intermediate_info``), and what the user asked for."""

    model: nn.Module  # the run's model, eval mode
    x: torch.Tensor  # the normalised image (1, C, H, W)
    out: torch.Tensor  # first element of forward_intermediates: class scores, CTC frames, token scores...
    intermediates: dict[str, torch.Tensor]  # name -> (1, ...) tensor
    output_info: Intermediate
    info: dict[str, Intermediate]  # same keys as intermediates
    labels: list[str]  # the run's labels
    image_size: tuple[int, int]  # (H, W) of the original file: maps are returned at this size
    target: str | None = None  # a class to explain instead of the predicted one
    beam: int = 1  # beam width for tasks that decode

    def of_kind(self, *kinds: str) -> dict[str, torch.Tensor]:
        """The intermediates declared as one of ``kinds``, in declaration order."""
        return {n: self.intermediates[n] for n, d in self.info.items() if d.kind in kinds and n in self.intermediates}

    def refuse_target(self, task: str) -> None:
        """Raise ValueError when a target class was asked of a task without classes."""
        if self.target is not None:
            raise ValueError(f"--target applies to tasks with classes; this run's task is {task}")


@dataclass(frozen=True)
class Headline:
    """The one figure a run of the task is judged by.

    Attributes:
        key: its ``metrics.json`` key (``val_accuracy``, ``val_sequence_accuracy``, ``val_bleu4``).
        name: human name ("accuracy", "sequence accuracy", "BLEU-4").
        percent: the value is a fraction shown as a percentage (else shown as is, 0-100 scales).
    """

    key: str
    name: str
    percent: bool = True

    def value(self, metrics: Mapping[str, Any]) -> float | None:
        v = metrics.get(self.key)
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    def cell(self, metrics: Mapping[str, Any]) -> str:
        """The value alone ("98.0 %", "45.2"); empty when the run has none yet."""
        v = self.value(metrics)
        if v is None:
            return ""
        return f"{100 * v:.1f} %" if self.percent else f"{v:.1f}"

    def text(self, metrics: Mapping[str, Any]) -> str:
        """Name and value ("sequence accuracy 98.0 %"); empty when the run has none yet."""
        cell = self.cell(metrics)
        return f"{self.name} {cell}" if cell else ""


class Task:
    """One instance per run (see :func:`explorer.engine.tasks.get_task`); ``extra`` holds
    the run's task-specific settings that ``config.json`` keeps as ``task_extra``.

    Subclasses set the class attributes and implement the data, training and prediction
    methods; the defaults below fit a task whose model maps an image to one score per label.
    """

    #: registry name, saved in ``config.json`` as ``task``
    name: str = ""
    #: one line for the app's task picker
    title: str = ""
    #: labels are classes that group the images (class folders, "move to class", loose images
    #: dropped onto a class); False when each image carries its own text
    has_classes: bool = False
    labels_noun: str = "classes"  # what the labels are, in the plural ("characters", "words")
    #: the figure a run is judged by (metrics.json key and human text)
    headline: Headline = Headline("val_accuracy", "accuracy")
    #: what ``inspect`` writes for this task beyond the model's own intermediates
    inspects: tuple[str, ...] = ()

    def __init__(self, extra: dict[str, Any] | None = None) -> None:
        self.extra: dict[str, Any] = {}
        self.configure(extra or {})

    def configure(self, extra: dict[str, Any]) -> dict[str, Any]:
        """Adopt a run's task settings (from preparation or a saved run); returns them."""
        self.extra = dict(extra)
        return self.extra

    # -- data --------------------------------------------------------------------------------
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
        """Decode a source once into train and validation splits.

        ``labels``, ``preprocess`` and ``extra`` are a saved run's (resuming): they are kept
        as they are instead of being derived from the data.

        Raises:
            ConfigError: the data cannot train this task (no usable image, too few classes...).
        """
        raise NotImplementedError

    def prepare_eval(
        self, source: Source, preprocess: Preprocess, labels: list[str], extra: dict[str, Any], max_pixels: int
    ) -> tuple[Split, list[str]]:
        """The whole source as one split with a trained run's fixed input contract,
        plus problem lines (unusable files, unknown classes or characters)."""
        cfg = DataConfig(val_fraction=0.0, max_pixels=max_pixels)
        data = self.prepare(source, cfg, seed=0, labels=labels, preprocess=preprocess, extra=extra)
        return data.train, data.problems

    def input_size(self, samples: Sequence[Sample], cfg: DataConfig) -> tuple[int, int | None]:
        """The model's input (height, width; None = each image keeps its aspect ratio) that
        :meth:`prepare` chooses for these samples, from the files' headers (the app's preview)."""
        g = Geometry.fixed(samples, cfg)
        return g.height, g.width

    def labels_from_targets(self, targets: Sequence[str]) -> list[str]:
        """The labels (class names, charset or vocabulary) a run on these targets gets."""
        return sorted(set(targets))

    def describe_dataset(self, images: int, classes: int) -> str:
        """One line for the app's status bar: "120 images · 3 classes"."""
        return f"{images:,} images · task {self.name}"

    def check_targets(self, counts: Mapping[str, int]) -> str | None:
        """Why images with these targets (target -> number of images) cannot train yet, or None."""
        return None

    # -- model -------------------------------------------------------------------------------
    def output_count(self, labels: Sequence[str]) -> int:
        """The model's ``num_outputs`` for these labels."""
        return len(labels)

    def num_outputs(self, data: PreparedData) -> int:
        """:meth:`output_count` of a prepared data set's labels."""
        return self.output_count(data.labels)

    def model_params(self, arch: str, params: dict[str, Any]) -> dict[str, Any]:
        """The family parameters with those this task implies set (e.g. a CTC head).

        Raises:
            ConfigError: the family cannot learn this task.
        """
        return params

    def check_model(self, model: nn.Module, data: PreparedData) -> None:
        """Refuse a model/data combination that cannot train (raise ConfigError)."""

    def preview_labels(self, labels: Sequence[str] | None = None) -> list[str]:
        """``labels`` when a model can be built for them, else plausible placeholders
        (an architecture preview before the data is complete)."""
        return list(labels) if labels and len(labels) >= 2 else ["class 1", "class 2"]

    def example_input(self, in_channels: int, image_size: tuple[int, int | None], labels: Sequence[str]) -> tuple:
        """What ``model(*inputs)`` takes for one image of ``image_size`` (zeros)."""
        h, w = image_size
        return (torch.zeros(1, in_channels, h, w if w is not None else 4 * h),)

    def example_forward(
        self,
        arch: str,
        params: Mapping[str, Any],
        *,
        in_channels: int,
        image_size: tuple[int, int | None],
        labels: Sequence[str] | None = None,
    ) -> Example:
        """Build ``arch`` for this task as training would and give an input it runs on, so
        the app can count parameters and list each layer's output shape.

        Raises:
            ConfigError: the family cannot learn this task.
            ParamError: the parameters are invalid for this input.
        """
        labels = self.preview_labels(labels)
        full = self.model_params(arch, dict(params))
        n = self.output_count(labels)
        model = build_model(arch, in_channels=in_channels, num_outputs=n, image_size=image_size, **full)
        return Example(model.eval(), self.example_input(in_channels, image_size, labels), labels, full, n)

    # -- training ----------------------------------------------------------------------------
    @property
    def loss_name(self) -> str:
        """What the loss axis measures ("cross-entropy", "CTC")."""
        return "cross-entropy"

    @property
    def accuracy_name(self) -> str:
        """What the training/validation accuracy axis measures (the ``correct`` of :meth:`loss`)."""
        return "fraction correct"

    def batch(self, split: Split, idx: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """(uint8 images (B, H, W, C), targets) of the samples ``idx``."""
        return split.x[idx], split.targets[idx]

    def loss(self, model: nn.Module, x: torch.Tensor, targets: Any) -> tuple[torch.Tensor, torch.Tensor, int]:
        """(mean loss, number of correct samples as a tensor (may be fractional), batch size)."""
        raise NotImplementedError

    def evaluate(
        self, model: nn.Module, split: Split, pre: Preprocess, device: torch.device, autocast: Any, labels: list[str]
    ) -> Evaluation:
        """Loss, headline accuracy and the task's other figures on a whole split."""
        raise NotImplementedError

    def final_metrics(self, ev: Evaluation, labels: list[str]) -> dict[str, Any]:
        """The stable ``metrics.json`` keys for this task's validation figures."""
        raise NotImplementedError

    def report(self, ev: Evaluation, labels: list[str]) -> dict[str, Any]:
        """What ``evaluate --json`` prints for this task (stable keys)."""
        raise NotImplementedError

    def headline_text(self, metrics: Mapping[str, Any]) -> str:
        """The headline figure of a run's metrics as text ("sequence accuracy 98.0 %")."""
        return self.headline.text(metrics)

    def forward_intermediates(self, model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The model's ``forward_intermediates(x)`` run the way this task decodes (what probes,
        the inspector and ``inspect`` show must be what ``predict`` computes); ``(model(x), {})``
        for a model that declares no intermediates."""
        fi = getattr(model, "forward_intermediates", None)
        return fi(x) if fi is not None else (model(x), {})

    def probe_output(self, out: torch.Tensor, labels: list[str]) -> tuple[np.ndarray, str | None]:
        """(probabilities, text) of the first image of a ``forward_intermediates`` output."""
        return torch.softmax(out.float(), dim=-1)[0].cpu().numpy().copy(), None

    def probe_candidates(self, model: nn.Module, x: torch.Tensor, labels: list[str]) -> list[dict[str, Any]] | None:
        """Alternatives to the probe's output for the first image of ``x`` (a captioner's beam
        candidates, best first); None when the task has none."""
        return None

    # -- use ---------------------------------------------------------------------------------
    def predict(
        self, model: nn.Module, x: torch.Tensor, widths: torch.Tensor, labels: list[str], beam: int = 0
    ) -> list[dict[str, Any]]:
        """One result dict per normalised image of the batch ``x`` (B, C, H, W)."""
        raise NotImplementedError

    def format_prediction(self, pred: Mapping[str, Any], top: int = 3) -> str:
        """One line of human text for a :meth:`predict` result (without its path)."""
        raise NotImplementedError

    def format_candidates(self, pred: Mapping[str, Any]) -> list[str]:
        """Further lines for a result's alternatives (beam search), indented; may be empty."""
        return []

    def prediction_columns(self) -> tuple[str, ...]:
        """Headers of the app's prediction table after the image name."""
        return ("Prediction", "Confidence")

    def prediction_cells(self, pred: Mapping[str, Any]) -> tuple[str, ...]:
        """The cells under :meth:`prediction_columns` for one :meth:`predict` result."""
        raise NotImplementedError

    def inspect(self, req: InspectRequest) -> dict[str, Any]:
        """What ``inspect`` adds for this task (named in :attr:`inspects`) for one image.

        Returns:
            ``{"prediction": predict()'s dict, <product>: {name: array}, ...}``.

        Raises:
            ValueError: ``req.target`` is not one of the labels, or the task has no classes.
        """
        req.refuse_target(self.name)
        widths = torch.tensor([req.x.shape[-1]], device=req.x.device)
        return {"prediction": self.predict(req.model, req.x, widths, req.labels, beam=req.beam)[0]}

    # -- export ------------------------------------------------------------------------------
    def export_graphs(self, model: nn.Module, input_shape: tuple[int, int, int | None]) -> list[ExportGraph]:
        """The graphs (ONNX, ``torch.export``) this task's model exports as: by default one,
        ``image`` (B, C, H, W) -> ``logits`` (B, outputs), batch free (and width, for
        variable-width inputs)."""
        return [image_graph(model, input_shape, ("batch", "outputs"))]

    def export_info(self, model: nn.Module, labels: list[str], input_shape: tuple[int, int, int | None]) -> dict:
        """What the JSON beside an export adds so a client can read the outputs
        (``outputs``: one line per output name; task-specific keys such as ``blank``)."""
        return {}
