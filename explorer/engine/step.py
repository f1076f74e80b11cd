"""The training step: one batch forward, backward and optimizer step.

Kept free of reporting and control so that it does exactly one thing; the loop in
:mod:`explorer.engine.trainer` calls it between its stop/pause checks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from explorer.data import augment_batch

from .device import to_device
from .schedule import lr_factor

if TYPE_CHECKING:
    from .session import Session

__all__ = ["NonFinite", "train_step", "batch_inputs"]


class NonFinite(Exception):
    """The loss became NaN or infinite; the run ends with the last good weights."""

    def __init__(self, epoch: int, step: int, value: float, lr: float) -> None:
        super().__init__(f"loss {value} at epoch {epoch}, step {step}")
        self.epoch, self.step, self.value, self.lr = epoch, step, value, lr

    def message(self, last_epoch: int) -> str:
        return (
            f"training stopped: the loss became {self.value} at epoch {self.epoch}, step {self.step} "
            f"(learning rate {self.lr:.3g}). The last good weights (epoch {last_epoch}) are kept. "
            "Try a lower --lr or --grad-clip 1.0."
        )


def _set_learning_rate(s: Session) -> None:
    tc = s.tc
    factor = lr_factor(
        tc.schedule, s.state.global_step, s.total_steps, s.steps_per_epoch, tc.step_epochs, tc.step_gamma
    )
    for g, base in zip(s.optimizer.param_groups, s.base_lrs):
        g["lr"] = base * factor


def batch_inputs(s: Session, idx: torch.Tensor) -> tuple[torch.Tensor, Any]:
    """The normalised (B, C, H, W) batch ``idx`` of the training split and its targets.

    The split lives on the device (gathered there) or, when it does not fit, on the host:
    then the batch is gathered on the host and copied through pinned memory, non-blocking."""
    on_host = s.train.x.device.type == "cpu"
    if not on_host:
        idx = idx.to(s.device, non_blocking=True)
    xb, yb = s.task.batch(s.train, idx)
    if on_host and s.device.type != "cpu":
        xb, yb = to_device((xb, yb), s.device)
    pre = s.data.preprocess
    if s.prenormalized:
        # A channels-last view, as the uint8 path gives: CPU convolutions run faster on it.
        xb = xb.permute(0, 3, 1, 2)
    else:
        xb = pre.to_unit(xb)
        if s.cfg.data.augment.enabled:
            xb = augment_batch(xb, s.cfg.data.augment, s.aug_gen)
        xb = pre.normalize(xb)
    if s.memory_format is torch.channels_last:  # as the model's weights (CUDA, conv families)
        xb = xb.contiguous(memory_format=torch.channels_last)
    return xb, yb


def train_step(s: Session, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """One optimizer step on the batch ``idx``; returns (loss x batch size, correct, batch size),
    the first two as device tensors (no synchronisation). The caller counts the samples
    (``state.samples_seen``): in a distributed run, those of every rank.

    The forward pass runs through ``s.net`` (the model in DistributedDataParallel when
    distributed, which averages the gradients over the ranks in ``backward``)."""
    _set_learning_rate(s)
    xb, yb = batch_inputs(s, idx)
    model, opt = s.model, s.optimizer
    with s.autocast():
        loss, correct, bs = s.task.loss(s.net, xb, yb)
    opt.zero_grad(set_to_none=True)
    s.scaler.scale(loss).backward()
    if s.tc.grad_clip > 0:
        s.scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), s.tc.grad_clip)
    s.scaler.step(opt)
    s.scaler.update()
    s.state.global_step += 1
    return loss.detach() * bs, correct, bs
