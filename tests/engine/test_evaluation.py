"""Evaluation details: confusion cells with their images, the most confidently wrong images,
per-class precision/recall/F1, character confusion; hand-computed examples, then real runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from explorer.engine import RunConfig, Trainer, load_run
from explorer.engine.api import evaluate_run
from explorer.engine.evaluation import (
    ClassDetails,
    char_details,
    class_details,
    evaluate_details,
    validation_details,
)
from explorer.engine.metrics import precision_recall_f1
from tests.datasets import export_digit_strings, write_two_class_folder


def test_class_details_by_hand() -> None:
    labels = ["cat", "dog", "fox"]
    paths = [f"{i}.png" for i in range(6)]
    y_true = np.array([0, 0, 1, 1, 2, 0])
    y_pred = np.array([0, 1, 1, 0, 1, 1])
    conf = np.array([0.9, 0.6, 0.8, 0.95, 0.7, 0.6])
    d = class_details(paths, y_true, y_pred, conf, labels)
    # rows = truth: cat -> cat 1 (0), cat -> dog 2 (1, 5); dog -> dog 1 (2), dog -> cat 1 (3); fox -> dog 1 (4)
    assert d.confusion.counts.tolist() == [[1, 2, 0], [1, 1, 0], [0, 1, 0]]
    assert d.confusion.cells == {(0, 0): [0], (0, 1): [1, 5], (1, 1): [2], (1, 0): [3], (2, 1): [4]}
    assert d.confusion.samples(0, 1) == ["1.png", "5.png"] and d.confusion.samples(2, 2) == []
    # wrong: 3 (0.95), 4 (0.7), 1 (0.6), 5 (0.6): ties keep sample order
    assert [(w["path"], w["true"], w["predicted"], w["confidence"]) for w in d.wrong] == [
        ("3.png", "dog", "cat", 0.95),
        ("4.png", "fox", "dog", 0.7),
        ("1.png", "cat", "dog", 0.6),
        ("5.png", "cat", "dog", 0.6),
    ]
    assert [w["path"] for w in class_details(paths, y_true, y_pred, conf, labels, top=2).wrong] == ["3.png", "4.png"]
    # cat: predicted as cat 2 (0 and 3), right 1 -> P 1/2; 3 cats, 1 found -> R 1/3; F1 = 2PR/(P+R) = 0.4
    # dog: predicted 4 times (1, 2, 4, 5), right once -> P 1/4; R 1/2; F1 = 1/3
    # fox: never predicted -> P None; R 0; F1 None
    pc = d.per_class
    assert pc["cat"] == pytest.approx({"precision": 0.5, "recall": 1 / 3, "f1": 0.4, "support": 3})
    assert pc["dog"] == pytest.approx({"precision": 0.25, "recall": 0.5, "f1": 1 / 3, "support": 2})
    assert pc["fox"] == {"precision": None, "recall": 0.0, "f1": None, "support": 1}
    assert d.to_dict()["confusion"]["cells"][0] == {"row": 0, "column": 0, "samples": [0]}


def test_precision_recall_f1_zero_when_a_class_is_predicted_but_never_right() -> None:
    pc = precision_recall_f1(np.array([[0, 2], [0, 3]]), ["a", "b"])
    assert pc["a"] == {"precision": None, "recall": 0.0, "f1": None, "support": 2}
    assert pc["b"] == pytest.approx({"precision": 0.6, "recall": 1.0, "f1": 0.75, "support": 3})
    pc = precision_recall_f1(np.array([[1, 1], [1, 0]]), ["a", "b"])
    assert pc["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}


def test_char_details_by_hand() -> None:
    charset = ["1", "2", "3"]
    refs = ["12", "123", "33", "1"]
    hyps = ["12", "13", "323", "2"]
    d = char_details([f"{i}.png" for i in range(4)], refs, hyps, charset, confidence=[0.9, 0.5, 0.8, 0.1])
    assert d.confusion.rows == ["1", "2", "3", ""] and d.confusion.columns == ["1", "2", "3", ""]
    # "12"->"12": 1/1, 2/2 | "123"->"13": 1/1, 2/"" (deletion), 3/3 | "33"->"323": 3/3, ""/2 (insertion), 3/3
    # "1"->"2": 1/2
    c = d.confusion.counts
    assert c.tolist() == [[2, 1, 0, 0], [0, 1, 0, 1], [0, 0, 3, 0], [0, 1, 0, 0]]
    assert d.confusion.cells[(1, 3)] == [1] and d.confusion.cells[(3, 1)] == [2] and d.confusion.cells[(0, 1)] == [3]
    assert d.confusion.cells[(2, 2)] == [1, 2, 2] and d.confusion.samples(2, 2) == ["1.png", "2.png"]
    assert [(w["path"], w["true"], w["predicted"]) for w in d.wrong] == [
        ("2.png", "33", "323"),
        ("1.png", "123", "13"),
        ("3.png", "1", "2"),
    ]


@pytest.fixture(scope="module")
def two_class_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("cls")
    data = write_two_class_folder(root / "data", n=24, size=16)
    cfg = RunConfig(arch="cnn", params={"channels": "8"})
    cfg.data.source = str(data)
    cfg.train.epochs = 1
    cfg.train.batch_size = 8
    list(Trainer(cfg, root / "run").run())
    return data, root / "run"


def test_details_of_a_classify_run_agree_with_evaluate(two_class_run: tuple[Path, Path]) -> None:
    data, run_dir = two_class_run
    run = load_run(run_dir)
    result = evaluate_details(run, data)
    d = result["details"]
    assert isinstance(d, ClassDetails)
    report = evaluate_run(run, data)
    assert d.confusion.counts.tolist() == report["confusion"] == result["report"]["confusion"]
    preds = run.predict(result["paths"])
    for (i, j), members in d.confusion.cells.items():
        for k in members:
            path = result["paths"][k]
            assert Path(path).parent.name == run.labels[i]  # folder = true class
            assert preds[k]["label"] == run.labels[j]
    confidences = [w["confidence"] for w in d.wrong]
    assert confidences == sorted(confidences, reverse=True)
    for w in d.wrong:
        assert w["confidence"] == pytest.approx(preds[w["index"]]["confidence"], abs=1e-5)
    recall = {k: v["recall"] for k, v in d.per_class.items()}
    assert recall == pytest.approx(report["per_class"])


def test_character_confusion_of_a_ctc_run(tmp_path: Path) -> None:
    train, test = export_digit_strings(tmp_path / "seq", n_train=48, n_test=12)
    cfg = RunConfig(arch="crnn", params={"channels": "8,16", "hidden_size": 16})
    cfg.data.source = str(train)
    cfg.train.epochs = 1
    list(Trainer(cfg, tmp_path / "run").run())
    run = load_run(tmp_path / "run")
    result = evaluate_details(run, test)
    d = result["details"]
    preds = {p["path"]: p["text"] for p in run.predict(result["paths"])}
    texts = {p: t for p, t in (line.split(",") for line in (test / "labels.csv").read_text().splitlines()[1:])}
    refs = [texts[str(Path(p).relative_to(test))] for p in result["paths"]]
    hyps = [preds[p] for p in result["paths"]]
    expected = char_details(result["paths"], refs, hyps, run.labels)
    np.testing.assert_array_equal(d.confusion.counts, expected.confusion.counts)
    assert d.confusion.cells == expected.confusion.cells
    # the reference characters' row sums are the test texts' characters
    assert int(d.confusion.counts[:-1].sum()) == sum(len(r) for r in refs)
    assert result["report"]["samples"] == len(refs)
    assert sum(r == h for r, h in zip(refs, hyps)) / len(refs) == pytest.approx(result["report"]["sequence_accuracy"])


def test_a_caption_run_gets_its_report_and_no_confusion(tmp_path: Path) -> None:
    train, test = export_digit_strings(tmp_path / "cap", n_train=16, n_test=4, captions=True)
    cfg = RunConfig(
        arch="captioner", params={"channels": "8,16", "hidden_size": 16, "embed_dim": 8, "attention_dim": 8}
    )
    cfg.data.source = str(train)
    cfg.train.epochs = 1
    cfg.train.batch_size = 8
    list(Trainer(cfg, tmp_path / "run").run())
    run = load_run(tmp_path / "run")
    result = evaluate_details(run, test)
    assert result["details"] is None
    assert result["report"] == {k: v for k, v in evaluate_run(run, test).items() if k != "problems"}


def test_validation_details_use_the_run_s_own_validation_images(two_class_run: tuple[Path, Path]) -> None:
    data, run_dir = two_class_run
    run = load_run(run_dir)
    result = validation_details(run)
    history_val = sum(len(v) for v in result["details"].confusion.cells.values())
    metrics = run.metrics
    assert history_val == metrics["val_samples"] == len(result["paths"])
    assert result["details"].confusion.counts.tolist() == metrics["val_confusion"]
    assert result["report"]["accuracy"] == pytest.approx(metrics["val_accuracy"])
