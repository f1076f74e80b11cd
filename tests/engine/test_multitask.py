"""Multi-task heads: extra numeric manifest columns are predicted next to the class."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from explorer import load_run
from explorer.cli import main
from explorer.engine import ConfigError, EpochReport, RunConfig, Trainer


def _write(root: Path, n: int = 40) -> Path:
    rng = np.random.default_rng(0)
    rows = ["path,label,brightness,size"]
    for i in range(n):
        label = "top" if i % 2 else "bottom"
        level = int(rng.integers(80, 250))
        img = rng.integers(0, 40, (16, 16), dtype=np.uint8)
        half = slice(0, 8) if label == "top" else slice(8, 16)
        img[half] = level
        cv2.imwrite(str(root / f"{i:03d}.png"), img)
        size = "" if i == 5 else f"{rng.uniform(1, 2):.3f}"  # one empty cell: masked, not fatal
        rows.append(f"{i:03d}.png,{label},{level},{size}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write(tmp_path_factory.mktemp("mt"))


def test_training_lowers_both_losses_and_reports_mae(data: Path, tmp_path: Path) -> None:
    cfg = RunConfig(arch="cnn", params={"channels": "8,16"})
    cfg.data.source = str(data)
    cfg.data.regression_columns = ["brightness"]
    cfg.data.regression_weight = 0.5
    cfg.train.epochs = 12
    cfg.train.batch_size = 8
    cfg.train.lr = 5e-3
    events = list(Trainer(cfg, tmp_path / "run").run())
    epochs = [e for e in events if isinstance(e, EpochReport)]
    first, last = epochs[0].metrics, epochs[-1].metrics
    assert last["class_loss"] < first["class_loss"] * 0.8
    assert last["regression_loss"] < first["regression_loss"] * 0.8
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["val_mae"] < 45  # brightness spans 80..250; a constant guess is off by ~43
    assert set(metrics["val_mae_per_column"]) == {"brightness"}

    run = load_run(tmp_path / "run")
    pred = run.predict([str(data / "001.png")])[0]
    assert pred["label"] in ("top", "bottom")
    assert set(pred["values"]) == {"brightness"}
    assert set(pred["probabilities"]) == {"top", "bottom"}  # regression outputs are not classes


def test_unknown_column_is_named(data: Path) -> None:
    cfg = RunConfig(arch="cnn", params={"channels": "8"})
    cfg.data.source = str(data)
    cfg.data.regression_columns = ["weight"]
    with pytest.raises(ConfigError, match="weight.*brightness, size"):
        list(Trainer(cfg).run())


def test_cli_regress_and_evaluate(data: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "r"
    assert (
        main(
            [
                "train",
                str(data),
                "--set",
                "channels=8",
                "--epochs",
                "2",
                "--batch-size",
                "8",
                "--regress",
                "brightness",
                "--regress",
                "size",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["evaluate", str(out), str(data), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["mae_per_column"]) == {"brightness", "size"}
    assert 0 <= doc["accuracy"] <= 1
