"""Validation: the task's evaluation of the current weights, stoppable between its batches.

A task's ``evaluate`` runs its whole validation loop and enters the ``autocast`` context
it is given once per batch. The loop hands it a wrapper that checks the run's stop flag
first, so a stop requested during a long validation (seconds on the captioner) ends it at
the next batch instead of after the whole pass; the partly validated epoch is not
recorded, and a resumed run redoes it from the checkpoint of the epoch before.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from .control import RunControl, StopGuard
from .step import NonFinite
from .tasks import Evaluation

if TYPE_CHECKING:
    from .session import Session

__all__ = ["ValidationStopped", "stop_checking", "validate", "keep_evaluation", "final_evaluation"]


class ValidationStopped(Exception):
    """A stop was requested while validating."""


def stop_checking(
    autocast: Callable[[], AbstractContextManager[Any]], control: RunControl
) -> Callable[[], AbstractContextManager[Any]]:
    """``autocast`` that raises :class:`ValidationStopped` when a stop has been requested."""

    def enter() -> AbstractContextManager[Any]:
        if control.stop_requested:
            raise ValidationStopped
        return autocast()

    return enter


def validate(
    s: Session, control: RunControl, epoch: int, steps: int, guard: StopGuard | None = None
) -> Evaluation | None:
    """The epoch's validation (None without a validation set); raises :class:`ValidationStopped`
    on a stop request (between batches, and between layers with a ``guard`` attached to the
    model) and :class:`NonFinite` when the validation loss is not finite."""
    if not len(s.val):
        return None
    control.update(validating=True)
    if guard is not None:
        guard.raising = ValidationStopped
    try:
        ev = s.evaluate(stop_checking(s.autocast, control))
    finally:
        control.update(validating=False)
        if guard is not None:
            guard.raising = None
    if not math.isfinite(ev.loss):
        raise NonFinite(epoch, steps, ev.loss, s.lr)
    return ev


def keep_evaluation(s: Session, epoch: int, ev: Evaluation | None) -> None:
    """Remember the validation of the best and the last epoch: a stopped run reports the
    figures of the weights it keeps without a second pass over the validation set."""
    if ev is None:
        return
    s.evaluations[epoch] = ev
    keep = {s.state.best_epoch, epoch}
    for old in [e for e in s.evaluations if e not in keep]:
        del s.evaluations[old]


def final_evaluation(s: Session, status: str, restored_best: bool) -> Evaluation | None:
    """The validation of the weights a run ends with. A run stopped by request reuses the
    evaluation made when those weights were current (same weights, same figures); every
    other run measures them again, as a run always has."""
    if not len(s.val):
        return None
    if status == "stopped":
        return s.evaluations.get(s.state.best_epoch if restored_best else s.state.epoch)
    return s.evaluate()
