"""Learning-rate schedules as pure functions of the step counter.

Pure functions (rather than torch scheduler objects) make a resumed run exact: the
only state is the global step, which the checkpoint holds.
"""

from __future__ import annotations

import math

__all__ = ["lr_factor"]

ONECYCLE_WARMUP = 0.3  # fraction of steps spent rising, as torch's OneCycleLR
ONECYCLE_START_DIV = 25.0  # start at peak / 25
ONECYCLE_FINAL_DIV = 1e4  # end at peak / (25 * 1e4)


def lr_factor(
    schedule: str, step: int, total_steps: int, steps_per_epoch: int, step_epochs: int = 10, step_gamma: float = 0.1
) -> float:
    """Multiplier of the peak LR for the optimizer step number ``step`` (0-based)."""
    total_steps = max(total_steps, 1)
    t = min(step, total_steps - 1) / max(total_steps - 1, 1)
    if schedule == "none":
        return 1.0
    if schedule == "step":
        return step_gamma ** (step // (max(steps_per_epoch, 1) * step_epochs))
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t))
    if schedule == "onecycle":
        lo = 1.0 / ONECYCLE_START_DIV
        end = lo / ONECYCLE_FINAL_DIV
        if t < ONECYCLE_WARMUP:
            u = t / ONECYCLE_WARMUP
            return lo + (1.0 - lo) * 0.5 * (1.0 - math.cos(math.pi * u))
        u = (t - ONECYCLE_WARMUP) / (1.0 - ONECYCLE_WARMUP)
        return end + (1.0 - end) * 0.5 * (1.0 + math.cos(math.pi * u))
    raise ValueError(f"unknown schedule {schedule!r}")
