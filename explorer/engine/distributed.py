"""Training on several processes with PyTorch's own engine: torchrun + DistributedDataParallel.

A run started by ``torchrun`` (or ``model-explorer train --nproc-per-node N``, which starts
torchrun) finds ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` in its environment;
:func:`from_env` turns them into a :class:`Distributed`, whose :meth:`~Distributed.start`
joins the process group: gloo for CPU tensors and, where CUDA is available, NCCL for CUDA
tensors (``"cpu:gloo,cuda:nccl"``), so a CUDA run's gradients travel over NCCL, each rank
on ``cuda:LOCAL_RANK``, and a CPU run's over gloo. The few figures the ranks exchange per
step are read on the host anyway and go over gloo. Without those variables the run is one
process and every method here is a no-op, so the single-process loop is unchanged.

What the loop asks of it:

- :meth:`~Distributed.batches`: the rank's batches of one epoch. Every rank prepares the same
  data and draws the same seeded permutation per epoch (all ranks agree, reshuffled every
  epoch: ``DistributedSampler`` with ``set_epoch``); the permutation is padded by wrapping
  to a multiple of the world size and rank ``r`` takes every world-size-th sample from
  ``r``, so every rank runs the same number of steps and none waits forever.
- :meth:`~Distributed.reduce_step`: one all-reduce per step of (loss sum, correct, samples,
  stop requested): every rank reports the same figures and stops at the same step.
- :meth:`~Distributed.share`: rank 0's figures (its validation, whether its save
  succeeded) sent to every rank, so that best-epoch, early-stopping and failure decisions
  agree.
- :meth:`~Distributed.wrap`: the model in :class:`DistributedDataParallel` (gradients are
  averaged over the ranks); the wrapper hands attribute reads it does not know to the model,
  so task code that asks the model for its parameters still reaches it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .config import ConfigError

__all__ = ["Distributed", "from_env", "shard_indices", "SINGLE"]

_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


def shard_indices(perm: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """Rank ``rank``'s samples of the epoch permutation ``perm`` (``DistributedSampler``
    semantics, ``drop_last=False``): padded by wrapping to a multiple of ``world_size``, then
    every ``world_size``-th sample from ``rank``. Every rank gets ``ceil(N / world_size)``."""
    if world_size <= 1:
        return perm
    n = perm.numel()
    per_rank = -(-n // world_size)
    pad = per_rank * world_size - n
    if pad:
        reps = -(-pad // n)
        perm = torch.cat([perm, perm.repeat(reps)[:pad]])
    return perm[rank::world_size]


class _ModelDDP(DistributedDataParallel):
    """DDP whose unknown attributes are the wrapped model's (``model.params``, a sequence
    model's frame rule): tasks compute their loss with the wrapper as if it were the model."""

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "module":
                raise
            return getattr(self.module, name)


@dataclass
class Distributed:
    """This process's place in a distributed run (``world_size`` 1: a normal run)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    started: bool = field(default=False, compare=False)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes the run folder and prints."""
        return self.rank == 0

    # -- the process group -------------------------------------------------------------------
    def device_for(self, device: torch.device) -> torch.device:
        """The rank's device (made current): ``cuda:LOCAL_RANK`` for a CUDA run, else ``device``.

        Raises:
            ConfigError: a device distributed training cannot use, or fewer GPUs than processes.
        """
        if not self.enabled:
            return device
        if device.type == "cuda":
            if self.local_rank >= torch.cuda.device_count():
                raise ConfigError(
                    "LOCAL_RANK",
                    f"rank {self.rank} wants cuda:{self.local_rank} but this machine has "
                    f"{torch.cuda.device_count()} GPU(s); start at most that many processes per node",
                )
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)
            return device
        if device.type != "cpu":
            raise ConfigError("train.device", f"distributed training runs on cuda or cpu, not {device.type}")
        return device

    def start(self) -> None:
        """Joins the process group (a no-op for one process, or when joined already)."""
        if not self.enabled or self.started:
            return
        nccl = torch.cuda.is_available() and dist.is_nccl_available()
        backend = "cpu:gloo,cuda:nccl" if nccl else "gloo"
        dist.init_process_group(backend=backend, rank=self.rank, world_size=self.world_size)
        self.started = True

    def stop(self) -> None:
        """Leaves the process group (call in ``finally``)."""
        if self.started and dist.is_initialized():
            dist.destroy_process_group()
        self.started = False

    def barrier(self) -> None:
        """Waits until every rank has come here (an all-reduce over gloo)."""
        if self.started:
            dist.all_reduce(torch.zeros(1))

    # -- what the loop asks -------------------------------------------------------------------
    def wrap(self, model: nn.Module) -> nn.Module:
        """The module that trains: ``model`` (on its device) in DDP when distributed, else ``model``."""
        if not self.started:
            return model
        # The CPU path feeds channels-last batches, so convolution weight gradients come
        # channels-last and DDP copies them into its (contiguous) buckets: a copy the size of
        # the weights, nothing next to the convolutions; its one-time warning says no more.
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
        device = next(model.parameters()).device
        return _ModelDDP(model, device_ids=[device.index] if device.type == "cuda" else None)

    def batches(self, perm: torch.Tensor) -> torch.Tensor:
        """This rank's part of the epoch's permutation (see :func:`shard_indices`)."""
        return shard_indices(perm, self.rank, self.world_size)

    def reduce_step(
        self, loss_sum: torch.Tensor, correct: Any, samples: int, stop: bool
    ) -> tuple[torch.Tensor, torch.Tensor, int, bool]:
        """Sums a step's figures over the ranks; ``stop`` is true when any rank asked to stop."""
        if not self.started:
            return loss_sum, correct, samples, stop
        t = torch.tensor([float(loss_sum), float(correct), float(samples), 1.0 if stop else 0.0], dtype=torch.float64)
        dist.all_reduce(t)
        return t[0].float(), t[1].float(), int(t[2]), bool(t[3] > 0)

    def share(self, values: Sequence[float]) -> list[float]:
        """Rank 0's ``values`` on every rank (float64, exact)."""
        if not self.started:
            return list(values)
        t = torch.tensor(list(values), dtype=torch.float64)
        dist.broadcast(t, src=0)
        return [float(v) for v in t]

    def check_same(self, key: str, what: str, value: float) -> None:
        """Raises ConfigError (on every rank) unless every rank has the same ``value``: e.g.
        machines that read different data would otherwise train on a mix of both."""
        if not self.started:
            return
        t = torch.tensor([value, -value], dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        high, low = float(t[0]), -float(t[1])
        if high != low:
            raise ConfigError(
                key,
                f"the {self.world_size} processes disagree on {what} (from {low:g} to {high:g}; "
                f"rank {self.rank} has {value:g}): every process must read the same data",
            )


SINGLE = Distributed()


def from_env(environ: Mapping[str, str] | None = None) -> Distributed:
    """The process's place from torchrun's variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``);
    a normal run without them. A malformed value is a ConfigError naming the variable."""
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" not in env:
        return Distributed()
    values: dict[str, int] = {}
    for name in _ENV:
        raw = env.get(name, "0")
        try:
            values[name] = int(raw)
        except ValueError:
            raise ConfigError(name, f"expected a whole number from torchrun, got {raw!r}") from None
    world, rank = values["WORLD_SIZE"], values["RANK"]
    if world < 1 or not 0 <= rank < world:
        raise ConfigError("RANK", f"rank {rank} does not fit world size {world}")
    return Distributed(rank=rank, world_size=world, local_rank=values["LOCAL_RANK"])
