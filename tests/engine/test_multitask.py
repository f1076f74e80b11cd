"""Multi-task heads: extra numeric manifest columns are predicted next to the class."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from explorer import load_run
from explorer.cli import main
from explorer.engine import ConfigError, EpochReport, RunConfig, Trainer
from explorer.engine.tasks import get_task


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


class _Fixed(torch.nn.Module):
    """A model whose outputs are given: (B, classes + columns)."""

    def __init__(self, outputs: torch.Tensor) -> None:
        super().__init__()
        self.outputs = outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outputs[: len(x)]


def test_predict_values_come_from_the_regression_outputs_not_the_class_logits() -> None:
    # regression test: ``values`` were read from ``outs[j, argmax:]``, i.e. class logits when
    # the predicted class is not the last one
    task = get_task("classify", {"regression": {"columns": ["a", "b"], "mean": [10.0, 0.0], "std": [2.0, 5.0]}})
    outs = torch.tensor([[3.0, -1.0, 0.5, -2.0], [-4.0, 4.0, 1.0, 1.0]])
    preds = task.predict(_Fixed(outs), torch.zeros(2, 1, 4, 4), torch.tensor([4, 4]), ["x", "y"])
    assert [p["label"] for p in preds] == ["x", "y"]
    assert preds[0]["values"] == pytest.approx({"a": 11.0, "b": -10.0})
    assert preds[1]["values"] == pytest.approx({"a": 12.0, "b": 5.0})


def _write_bright(root: Path, n: int, seed: int) -> list[tuple[str, str, float]]:
    """Images with a block in the top or bottom half (the class); the regression column is
    the image's mean brightness, a real function of the pixels."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        label = "top" if rng.random() < 0.5 else "bottom"
        img = rng.integers(0, 30, (24, 24)).astype(np.uint8)
        level = int(rng.integers(60, 256))
        h = int(rng.integers(4, 12))
        y0 = int(rng.integers(0, 12 - h + 1)) + (0 if label == "top" else 12)
        x0, w = int(rng.integers(0, 12)), int(rng.integers(6, 13))
        img[y0 : y0 + h, x0 : x0 + w] = level
        name = f"{i:04d}.png"
        cv2.imwrite(str(root / name), img)
        rows.append((name, label, float(img.mean())))
    return rows


def test_predicted_values_follow_a_pixel_function_on_held_out_images(tmp_path: Path, capsys) -> None:
    """Acceptance: ``predict --json`` values on held-out images correlate with the truth."""
    rows = _write_bright(tmp_path / "train", 320, seed=1)
    lines = ["path,label,brightness"] + [f"{p},{lab},{v:.4f}" for p, lab, v in rows]
    (tmp_path / "train" / "labels.csv").write_text("\n".join(lines) + "\n")
    held_out = _write_bright(tmp_path / "test", 60, seed=2)
    argv = ["train", str(tmp_path / "train"), "--set", "channels=8,16", "--epochs", "8", "--batch-size", "16"]
    assert main([*argv, "--lr", "3e-3", "--regress", "brightness", "--out", str(tmp_path / "run"), "--quiet"]) == 0
    capsys.readouterr()
    images = [str(tmp_path / "test" / p) for p, _, _ in held_out]
    assert main(["predict", str(tmp_path / "run"), *images, "--json"]) == 0
    preds = json.loads(capsys.readouterr().out)
    got = np.array([p["values"]["brightness"] for p in preds])
    truth = np.array([v for _, _, v in held_out])
    r = float(np.corrcoef(got, truth)[0, 1])
    print(f"held-out correlation of predicted brightness: {r:.3f}")
    assert r >= 0.9
