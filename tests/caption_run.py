"""A tiny captioner trained in about a second (plus imports) with one probe snapshot per epoch:
for the tests of epoch replay with beam candidates (engine and UI)."""

from __future__ import annotations

from pathlib import Path

from explorer.engine import ProbeReport, RunConfig, Trainer
from tests.datasets import export_digit_strings

__all__ = ["train_tiny_captioner"]


def train_tiny_captioner(root: Path, epochs: int = 2) -> tuple[Path, list[ProbeReport]]:
    """Trains ``root/run`` on digit-word captions; returns it and the probe reports the trainer
    yielded (with a one-hour probe timer, exactly one per epoch end: the snapshots' content)."""
    train, _ = export_digit_strings(root / "data", n_train=16, n_test=2, captions=True)
    cfg = RunConfig(
        arch="captioner", params={"channels": "8,16", "hidden_size": 16, "embed_dim": 8, "attention_dim": 8}
    )
    cfg.data.source = str(train)
    cfg.train.epochs = epochs
    cfg.train.batch_size = 8
    cfg.train.probe_interval = 3600.0
    events = list(Trainer(cfg, root / "run").run())
    return root / "run", [e for e in events if isinstance(e, ProbeReport)]
