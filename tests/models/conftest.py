"""Shared helpers for the model family tests (exposed as fixtures, not imports)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import torch
from torch import Tensor, nn
from torch.nn import functional as F


@pytest.fixture(autouse=True)
def _seed_and_one_thread() -> Iterator[None]:
    """Deterministic weights; one intra-op thread (tiny tensors, shared 2-core CI machines)."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# What may follow a module name in an intermediate's key: a direction, then a gate / state.
_DIRECTIONS = ("fwd", "bwd")
_GATES = ("gate_i", "gate_f", "gate_g", "gate_o", "cell", "gate_r", "gate_z", "gate_n", "preact")


def _check_intermediates(model: nn.Module, x: Tensor, atol: float = 1e-5) -> dict[str, Tensor]:
    """forward == forward_intermediates, and every name is a module name plus known suffixes.

    Suffixes: ``rnn.0:fwd``, ``rnn.0:bwd:gate_z`` (recurrent layers), ``cells.0:gate_z`` (conv cells).
    """
    model.eval()
    with torch.no_grad():
        y = model(x)
        y2, feats = model.forward_intermediates(x)
    assert torch.allclose(y, y2, atol=atol), (y - y2).abs().max()
    names = dict(model.named_modules())
    for key, t in feats.items():
        module, *suffix = key.split(":")
        assert module in names, f"{key} is not a module name"
        assert t.shape[0] == x.shape[0], key
        if suffix and suffix[0] in _DIRECTIONS:
            suffix = suffix[1:]
        assert len(suffix) <= 1 and all(s in _GATES for s in suffix), key
    return feats


@pytest.fixture
def check_intermediates() -> Callable[..., dict[str, Tensor]]:
    return _check_intermediates


def _two_class_images(n: int = 64, channels: int = 1, size: int = 32) -> tuple[Tensor, Tensor]:
    """Class 0: bright top half; class 1: bright bottom half; plus noise, roughly standardised."""
    y = torch.arange(n) % 2
    x = torch.randn(n, channels, size, size) * 0.3
    half = size // 2
    x[y == 0, :, :half] += 1.0
    x[y == 1, :, half:] += 1.0
    return x - 0.5, y


def _train_losses(model: nn.Module, x: Tensor, y: Tensor, steps: int = 30, lr: float = 1e-3) -> list[float]:
    """Full-batch Adam steps; returns the loss before every step."""
    model.train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.fixture
def two_class_images() -> Callable[..., tuple[Tensor, Tensor]]:
    return _two_class_images


@pytest.fixture
def train_losses() -> Callable[..., list[float]]:
    return _train_losses
