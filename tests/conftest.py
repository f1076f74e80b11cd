"""Shared fixtures. Tests never touch the network; generated data lives in tmp dirs."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Built-in samples are generated into a per-session cache, never the user's."""
    monkeypatch.setenv("MODEL_EXPLORER_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(autouse=True)
def _few_threads() -> None:
    # CI has 2 cores; oversubscription makes the suite slower, not faster.
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))
