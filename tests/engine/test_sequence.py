"""Task ``sequence``: variable-width data, the CTC length check, training, predict/evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from explorer.cli import main
from explorer.data import open_source
from explorer.engine import ConfigError, EpochReport, RunConfig, Trainer
from explorer.engine.tasks import get_task
from tests.datasets import export_digit_strings


@pytest.fixture(scope="module")
def strings(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return export_digit_strings(tmp_path_factory.mktemp("seq"), n_train=240, n_test=40)


def test_prepare_keeps_aspect_pads_per_batch_and_derives_the_charset(strings) -> None:
    train, _ = strings
    cfg = RunConfig().data
    data = get_task("sequence").prepare(open_source(train), cfg, seed=0)
    assert data.labels == list("0123456789")
    assert data.preprocess.width is None and data.preprocess.height == 32 and data.preprocess.fit == "keep_aspect"
    split = data.train
    widths = split.widths
    assert widths.min() < widths.max()  # lines really differ in width
    x, t = get_task("sequence").batch(split, widths.argsort()[:4])
    assert x.shape[2] == int(t["widths"].max()) < split.x.shape[2]  # cut to the batch's widest
    # edge padding: columns right of an image's width repeat its last column
    i = int(widths.argmin())
    w = int(widths[i])
    assert (split.x[i, :, w:] == split.x[i, :, w - 1 : w]).all()


def test_too_short_image_for_its_text_is_refused_before_training(tmp_path: Path) -> None:
    rows = ["path,text"]
    for i in range(6):
        img = np.full((32, 100 if i else 10), 255, np.uint8)
        cv2.imwrite(str(tmp_path / f"{i}.png"), img)
        rows.append(f"{i}.png,{'1234567' if i == 0 else '12'}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    cfg = RunConfig(arch="crnn")
    cfg.data.source = str(tmp_path)
    cfg.data.val_fraction = 0.0
    with pytest.raises(ConfigError) as e:
        list(Trainer(cfg).run())
    msg = str(e.value)
    assert "0.png" in msg and "1234567" in msg and "needs at least 7" in msg


def test_classifier_family_is_refused_for_sequences(strings) -> None:
    cfg = RunConfig(arch="cnn")
    cfg.data.source = str(strings[0])
    with pytest.raises(ConfigError, match="cannot read text"):
        list(Trainer(cfg).run())


def test_crnn_learns_and_predicts_text(strings, tmp_path: Path, capsys) -> None:
    train, test = strings
    cfg = RunConfig(arch="crnn", params={"channels": "16,32,64", "hidden_size": 64})
    cfg.data.source = str(train)
    cfg.train.epochs = 4
    cfg.train.lr = 3e-3
    events = list(Trainer(cfg, tmp_path / "run").run())
    epochs = [e for e in events if isinstance(e, EpochReport)]
    assert epochs[-1].train_loss < 0.7 * epochs[0].train_loss
    assert "cer" in epochs[-1].metrics
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert {"val_sequence_accuracy", "val_cer", "val_char_confusion"} <= metrics.keys()

    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "run"), str(test), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"sequence_accuracy", "cer", "char_confusion"} <= report.keys() and report["samples"] == 40
    image = str(test / "images" / "00000.png")
    assert main(["predict", str(tmp_path / "run"), image, "--json", "--beam", "3"]) == 0
    pred = json.loads(capsys.readouterr().out)[0]
    assert set(pred["text"]) <= set("0123456789") and 0 <= pred["confidence"] <= 1
    assert pred["candidates"][0]["text"] == pred["text"]
