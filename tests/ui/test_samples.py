"""The one-click samples learn with the settings the welcome screen gives them.

Each test builds the project exactly as the welcome screen's button does (through the session's
``load_sample``), takes the resulting :class:`RunConfig` (``Project.run_config``, what the app's
worker is given) and trains it headless through the engine on the CPU. Figures are printed and
recorded in the README ("Measured figures").
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from explorer.engine import Finished, Trainer
from explorer.ui.session import SAMPLE_PRESETS, ProjectSession

pytestmark = pytest.mark.slow


def _train_sample(name: str, out: Path) -> dict[str, Any]:
    session = ProjectSession(autosave=False)
    session.load_sample(name)
    project = session.project
    cfg = project.run_config()
    assert cfg.arch == SAMPLE_PRESETS[name]["arch"]
    assert cfg.train.epochs == SAMPLE_PRESETS[name]["epochs"] <= 20
    cfg.train.device = "cpu"  # "auto" is the CPU here anyway; pinned so a GPU machine measures the same
    cfg.train.probe_interval = 0.0  # probes only feed the live view
    t0 = time.perf_counter()
    finished = [ev for ev in Trainer(cfg, out, source=project.to_source()).run() if isinstance(ev, Finished)]
    assert finished and finished[-1].status in ("completed", "early_stopped"), finished
    m = dict(finished[-1].metrics)
    m["wall_seconds"] = time.perf_counter() - t0
    print(
        f"\nsample:{name}: {cfg.arch}, {m['epochs']} epochs, {m['wall_seconds']:.0f} s: "
        + ", ".join(
            f"{k} {m[k]:.4f}"
            for k in ("val_accuracy", "val_sequence_accuracy", "val_cer", "val_bleu4")
            if isinstance(m.get(k), (int, float))
        )
    )
    return m


def test_shapes_sample_reaches_90_percent(qapp, tmp_path: Path) -> None:  # noqa: ANN001
    m = _train_sample("shapes", tmp_path / "run")
    assert m["val_accuracy"] >= 0.90


def test_digit_strings_sample_reads_90_percent_of_lines_within_10_epochs(qapp, tmp_path: Path) -> None:  # noqa: ANN001
    m = _train_sample("digit-strings", tmp_path / "run")
    assert m["epochs"] <= 10
    assert m["val_sequence_accuracy"] >= 0.90


def test_shape_scenes_sample_learns_captions(qapp, tmp_path: Path) -> None:  # noqa: ANN001
    m = _train_sample("shape-scenes", tmp_path / "run")
    assert m["val_bleu4"] >= 40.0  # 0-100; a caption-less model scores near 0
