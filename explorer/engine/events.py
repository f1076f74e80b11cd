"""What the trainer reports. Plain Python and numpy only: these cross into the UI.

The trainer is a generator of these events; the CLI prints them, the UI's worker
turns them into Qt signals. Nothing here holds a tensor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Status", "DataReady", "ModelReady", "StepReport", "EpochReport", "ProbeReport", "Finished", "Event"]


@dataclass(frozen=True)
class Status:
    message: str


@dataclass(frozen=True)
class DataReady:
    task: str
    labels: list[str]
    train_samples: int
    val_samples: int
    input_shape: tuple[int, int, int | None]  # (C, H, W)
    problems: list[str]  # "path: reason", one per unusable file
    seconds: float


@dataclass(frozen=True)
class ModelReady:
    arch: str
    params: dict[str, Any]
    num_parameters: int
    device: str
    start_epoch: int  # 0 for a new run, > 0 when resuming


@dataclass(frozen=True)
class StepReport:
    epoch: int  # 1-based
    epochs: int
    step: int  # 1-based within the epoch
    steps: int  # steps per epoch
    global_step: int
    loss: float  # mean over the steps since the previous report
    accuracy: float  # idem
    lr: float
    samples_per_second: float
    elapsed: float  # training seconds so far
    eta: float  # seconds left (estimate)


@dataclass(frozen=True)
class EpochReport:
    epoch: int
    epochs: int
    train_loss: float
    train_accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    lr: float
    seconds: float
    samples_per_second: float
    best: bool  # this epoch is the best so far (by validation loss)
    metrics: dict[str, float] = field(default_factory=dict)  # further validation figures (e.g. cer)

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["metrics"] = dict(self.metrics)
        return out


@dataclass(frozen=True)
class ProbeReport:
    epoch: int
    global_step: int
    path: str  # the probe image
    image: np.ndarray  # uint8 (H, W, C) as the model saw it (before normalisation)
    probabilities: np.ndarray  # (num_outputs,), or (T, num_outputs) for per-frame (CTC) heads
    intermediates: dict[str, np.ndarray] = field(default_factory=dict)  # name -> activation of the probe image
    text: str | None = None  # sequence / caption tasks: what the model reads or says
    info: dict[str, dict] = field(default_factory=dict)  # name -> Intermediate.to_dict(): what each entry is
    output_info: dict | None = None  # Intermediate.to_dict() of the model's output (kind logits / ctc_frames / ...)
    tokens: list[str] | None = None  # caption tasks: the emitted words, one per attention map
    candidates: list[dict] | None = None  # caption tasks: beam candidates (Task.probe_candidates), best first


@dataclass(frozen=True)
class Finished:
    status: str  # "completed" | "early_stopped" | "stopped" | "failed"
    message: str
    metrics: dict[str, Any]
    run_dir: str | None


Event = Status | DataReady | ModelReady | StepReport | EpochReport | ProbeReport | Finished
