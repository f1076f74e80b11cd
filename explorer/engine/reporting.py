"""Reporting: running figures of an epoch, turned into step and epoch reports.

Sums stay on the device and are read only when a report is due, so reporting costs no
synchronisation per step on a GPU.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import torch

from .events import EpochReport, StepReport
from .step import NonFinite

if TYPE_CHECKING:
    from .session import Session

__all__ = ["EpochMeter", "epoch_report"]


class EpochMeter:
    """Running loss / accuracy sums of one epoch: since the last step report and since the start."""

    def __init__(self, device: torch.device, steps: int) -> None:
        def zero() -> torch.Tensor:
            return torch.zeros((), device=device, dtype=torch.float32)

        self.steps = steps
        self.run_loss, self.run_correct, self.run_n = zero(), zero(), 0
        self.ep_loss, self.ep_correct, self.ep_n = zero(), zero(), 0
        self.t0 = self.last_report = time.perf_counter()

    def add(self, lw: torch.Tensor, correct: Any, bs: int) -> None:
        self.run_loss += lw
        self.run_correct += correct
        self.run_n += bs
        self.ep_loss += lw
        self.ep_correct += correct
        self.ep_n += bs

    def paused_for(self, seconds: float) -> None:
        """Time held by a pause is not training time."""
        self.t0 += seconds

    def due(self, step: int, interval: float) -> bool:
        return time.perf_counter() - self.last_report >= interval or step == self.steps

    def step_report(self, s: Session, epoch: int, step: int, lr: float) -> StepReport:
        """The report of the steps since the last one (raises :class:`NonFinite`)."""
        mean_loss = float(self.run_loss) / self.run_n
        if not math.isfinite(mean_loss):
            raise NonFinite(epoch, step, mean_loss, lr)
        state = s.state
        elapsed = state.train_seconds + (time.perf_counter() - self.t0)
        sps = state.samples_seen / elapsed if elapsed > 0 else 0.0
        left = s.total_steps - state.global_step
        report = StepReport(
            epoch=epoch,
            epochs=s.tc.epochs,
            step=step,
            steps=self.steps,
            global_step=state.global_step,
            loss=mean_loss,
            accuracy=float(self.run_correct) / self.run_n,
            lr=lr,
            samples_per_second=sps,
            elapsed=elapsed,
            eta=left * s.tc.batch_size * s.dist.world_size / sps if sps > 0 else math.inf,
        )
        self.run_loss.zero_()
        self.run_correct.zero_()
        self.run_n = 0
        return report

    def reported(self) -> None:
        """The consumer has taken a report; the next one is due an interval from now."""
        self.last_report = time.perf_counter()

    def close(self, s: Session, epoch: int) -> tuple[float, float, float]:
        """Ends the training part of the epoch: (train loss, train accuracy, seconds);
        the seconds count toward the run's training time."""
        seconds = time.perf_counter() - self.t0
        s.state.train_seconds += seconds
        train_loss = float(self.ep_loss) / max(self.ep_n, 1)
        if not math.isfinite(train_loss):
            raise NonFinite(epoch, self.steps, train_loss, s.lr)
        return train_loss, float(self.ep_correct) / max(self.ep_n, 1), seconds


def epoch_report(
    s: Session, epoch: int, meter: EpochMeter, figures: tuple[float, float, float], val: Any, best: bool
) -> EpochReport:
    """The epoch's report from its training figures and its validation (None without one)."""
    train_loss, train_acc, seconds = figures
    metrics = {k: float(v) for k, v in val.metrics.items() if isinstance(v, (int, float))} if val is not None else {}
    return EpochReport(
        epoch=epoch,
        epochs=s.tc.epochs,
        train_loss=train_loss,
        train_accuracy=train_acc,
        val_loss=val.loss if val is not None else None,
        val_accuracy=val.accuracy if val is not None else None,
        lr=s.lr,
        seconds=seconds,
        samples_per_second=meter.ep_n / seconds if seconds > 0 else 0.0,
        best=best,
        metrics=metrics,
    )
