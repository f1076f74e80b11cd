"""load_run rebuilds the model through the registry and predicts what evaluation saw."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from explorer import load_run
from explorer.engine import RunConfig, RunFolderError, Trainer
from explorer.engine.preprocess import channel_stats
from tests.datasets import write_two_class_folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Trainer]:
    root = tmp_path_factory.mktemp("api")
    data = write_two_class_folder(root / "data", n=20, size=20, rgb=True)
    cfg = RunConfig(arch="cnn", params={"channels": "8,16"})
    cfg.data.source = str(data)
    cfg.train.epochs = 3
    cfg.train.batch_size = 8
    cfg.train.lr = 3e-3
    t = Trainer(cfg, root / "run")
    list(t.run())
    return root / "run", data, t


def test_preprocess_matches_what_training_fed_the_model(trained) -> None:
    run_dir, data, trainer = trained
    run = load_run(run_dir)
    assert run.input_shape == (3, 20, 20)
    assert run.labels == ["bottom", "top"]
    paths = trainer.data.val.paths[:4]
    x = run.preprocess(paths)
    expected = trainer.data.preprocess.to_tensor(trainer.data.val.x[:4])
    assert torch.allclose(x, expected)


def test_predict_agrees_with_the_trained_model(trained) -> None:
    run_dir, data, trainer = trained
    run = load_run(run_dir)
    paths = trainer.data.val.paths
    preds = run.predict(paths)
    trainer.model.eval()
    with torch.no_grad():
        logits = trainer.model(trainer.data.preprocess.to_tensor(trainer.data.val.x))
    expected = [run.labels[i] for i in logits.argmax(1).tolist()]
    assert [p["label"] for p in preds] == expected
    for p in preds:
        assert sum(p["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert p["confidence"] == max(p["probabilities"].values())


def test_predict_reports_unusable_files_without_failing_the_rest(trained, tmp_path: Path) -> None:
    run_dir, data, trainer = trained
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    good = trainer.data.val.paths[0]
    out = load_run(run_dir).predict([str(bad), good])
    assert "error" in out[0] and out[0]["path"] == str(bad)
    assert "label" in out[1]


def test_damaged_weights_are_named(trained, tmp_path: Path) -> None:
    import shutil

    run_dir, _, _ = trained
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    (copy / "weights.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(RunFolderError, match="weights.safetensors"):
        load_run(copy)


def test_channel_stats_guard_flat_channels() -> None:
    import numpy as np

    imgs = np.full((4, 3, 3, 1), 100, dtype=np.uint8)
    mean, std = channel_stats(imgs)
    assert mean[0] == pytest.approx(100 / 255) and std == [1.0]
