"""Task ``caption`` end to end on a tiny set: grouping, vocabulary, training, BLEU,
beam predictions and attention maps from ``inspect``."""

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
def lines(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return export_digit_strings(tmp_path_factory.mktemp("cap"), n_train=160, n_test=12, captions=True)


def test_prepare_groups_captions_and_builds_the_vocabulary(lines) -> None:
    train, _ = lines
    task = get_task("caption")
    data = task.prepare(open_source(train), RunConfig().data, seed=0)
    assert data.labels[:4] == ["<pad>", "<start>", "<end>", "<unk>"]
    assert set(data.labels[4:]) <= {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}
    assert data.preprocess.width is None  # digit lines keep their aspect ratio
    assert len(data.train) + len(data.val) == 160  # one caption per line here
    assert task.extra["max_len"] == 5
    x, t = task.batch(data.train, data.train.targets["image"][:4].argsort())
    assert t["tokens"][:, 0].eq(1).all()  # <start>


def test_scenes_have_two_references_each_and_a_fixed_size() -> None:
    task = get_task("caption")
    data = task.prepare(open_source("sample:shape-scenes"), RunConfig().data, seed=0)
    assert data.preprocess.width == 64 and data.preprocess.height == 64
    assert len(data.train) == 2 * data.train.x.shape[0]  # two captions per image
    assert all(len(r) == 2 for r in data.val.targets["refs"])


def test_classifier_family_is_refused_for_captions(lines) -> None:
    cfg = RunConfig(arch="cnn")
    cfg.data.source = str(lines[0])
    with pytest.raises(ConfigError, match="cannot write captions"):
        list(Trainer(cfg).run())


def test_captioner_trains_predicts_and_shows_attention(lines, tmp_path: Path, capsys) -> None:
    train, test = lines
    run = tmp_path / "run"
    cfg = RunConfig(arch="captioner", params={"hidden_size": 64, "embed_dim": 32, "attention_dim": 32})
    cfg.data.source = str(train)
    cfg.train.epochs = 3
    cfg.train.lr = 3e-3
    events = list(Trainer(cfg, run).run())
    epochs = [e for e in events if isinstance(e, EpochReport)]
    assert epochs[-1].train_loss < epochs[0].train_loss
    assert {"bleu1", "bleu4", "exact"} <= epochs[-1].metrics.keys()
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 <= metrics["val_bleu4"] <= 100

    capsys.readouterr()
    assert main(["evaluate", str(run), str(test), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"bleu1", "bleu2", "bleu3", "bleu4"} <= report.keys() and report["samples"] == 12
    image = test / "images" / "00000.png"
    assert main(["predict", str(run), str(image), "--json", "--beam", "3"]) == 0
    pred = json.loads(capsys.readouterr().out)[0]
    assert isinstance(pred["caption"], str) and pred["candidates"][0]["caption"] == pred["caption"]
    scores = [c["score"] for c in pred["candidates"]]
    assert scores == sorted(scores, reverse=True)

    assert main(["inspect", str(run), str(image), "--out", str(tmp_path / "insp")]) == 0
    att = np.load(tmp_path / "insp" / "00000" / "attention.npz")
    h, w = cv2.imread(str(image), cv2.IMREAD_GRAYSCALE).shape
    assert att["maps"].shape == (len(att["tokens"]), h, w)
    np.testing.assert_allclose(att["maps"].sum(axis=(1, 2)), 1.0, atol=1e-5)
    capsys.readouterr()
    assert main(["predict", str(run), str(image), "--json"]) == 0
    greedy = json.loads(capsys.readouterr().out)[0]
    assert " ".join(att["tokens"]) == greedy["caption"]  # inspect shows the words predict says


def test_probes_and_inspect_decode_as_long_as_predict(lines, tmp_path: Path) -> None:
    """An untrained captioner never says END: every view must still stop where predict stops
    (the run's max_len + 1 steps), not at the model's own longer default."""
    from explorer.engine import load_run
    from explorer.engine.probe_run import probe_run

    train, test = lines
    cfg = RunConfig(arch="captioner", params={"hidden_size": 32, "embed_dim": 16, "attention_dim": 16})
    cfg.data.source = str(train)
    cfg.train.epochs, cfg.train.lr = 1, 1e-8  # as good as untrained
    list(Trainer(cfg, tmp_path / "run").run())
    run = load_run(tmp_path / "run")
    steps = run.task_object.decode_steps
    assert steps == 6 < 30  # max_len 5 on these lines; the model's default is 30
    image = test / "images" / "00000.png"
    caption = run.predict([image])[0]["caption"]
    report = probe_run(run, image, with_gradcam=False)
    words = [w for w in report.tokens if w != "<pad>"]
    assert len(words) <= steps and " ".join(words) == caption
