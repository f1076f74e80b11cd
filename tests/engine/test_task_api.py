"""The Task object answers what differs by task: preview models, formatting, headline, loss name."""

from __future__ import annotations

import pytest
import torch

from explorer.engine.tasks import TASK_NAMES, get_task
from models import list_models

PREDICTIONS = {
    "classify": {"label": "cat", "confidence": 0.9, "probabilities": {"cat": 0.9, "dog": 0.1}},
    "sequence": {"text": "042", "confidence": 0.8},
    "caption": {"caption": "a red circle", "score": -1.25},
}


@pytest.mark.parametrize("task_name", TASK_NAMES)
def test_every_family_of_the_task_previews_without_data(task_name: str) -> None:
    task = get_task(task_name)
    for arch in list_models(task_name):
        size = (32, 128) if task_name == "sequence" else (32, 32)
        ex = task.example_forward(arch, {}, in_channels=1, image_size=size)
        with torch.no_grad():
            out = ex.model(*ex.inputs)
        out = out[0] if isinstance(out, tuple) else out
        assert out.shape[-1] == ex.num_outputs == task.output_count(ex.labels), arch
        assert sum(p.numel() for p in ex.model.parameters()) > 0


def test_crnn_preview_on_a_text_project_has_the_ctc_head_and_the_training_parameter_count() -> None:
    from models import build_model

    task = get_task("sequence")
    charset = task.labels_from_targets(["12 34", "567"])
    ex = task.example_forward("crnn", {}, in_channels=1, image_size=(32, 160), labels=charset)
    assert ex.params["head"] == "ctc"
    assert ex.num_outputs == len(charset) + 1  # + blank
    with torch.no_grad():
        out = ex.model(*ex.inputs)
    assert out.dim() == 3 and out.shape[-1] == len(charset) + 1  # per-frame scores
    trained = build_model("crnn", in_channels=1, num_outputs=len(charset) + 1, image_size=(32, 160), head="ctc")
    assert sum(p.numel() for p in ex.model.parameters()) == sum(p.numel() for p in trained.parameters())


def test_captioner_preview_before_any_caption_builds_a_vocabulary() -> None:
    # regression: the app previewed the captioner with 2 outputs ("caption vocabulary ... got 2 tokens")
    task = get_task("caption")
    ex = task.example_forward("captioner", {}, in_channels=3, image_size=(32, 32), labels=[])
    logits, alphas = ex.model(*ex.inputs)
    assert logits.shape[-1] == len(ex.labels) > 4
    vocab = task.labels_from_targets(["a cat", "a dog"])
    assert vocab[4] == "a" and task.example_forward("captioner", {}, in_channels=3, image_size=(32, 32), labels=vocab)


def test_a_family_that_cannot_learn_the_task_is_named() -> None:
    from explorer.engine import ConfigError

    with pytest.raises(ConfigError, match="cnn"):
        get_task("caption").example_forward("cnn", {}, in_channels=1, image_size=(32, 32))


@pytest.mark.parametrize("task_name", TASK_NAMES)
def test_predictions_format_as_one_line_and_table_cells(task_name: str) -> None:
    # regression: the runs screen read pred["label"] and failed on text and caption runs
    task = get_task(task_name)
    pred = PREDICTIONS[task_name]
    line = task.format_prediction(pred)
    assert "\n" not in line and line
    cells = task.prediction_cells(pred)
    assert len(cells) == len(task.prediction_columns())
    assert all(isinstance(c, str) for c in cells)


def test_multi_task_predictions_show_their_values() -> None:
    task = get_task("classify", {"regression": {"columns": ["size"], "mean": [0.0], "std": [1.0]}})
    pred = {**PREDICTIONS["classify"], "values": {"size": 12.5}}
    assert task.prediction_columns() == ("Prediction", "Confidence", "size")
    assert task.prediction_cells(pred) == ("cat", "90.0%", "12.5")
    assert task.format_prediction(pred) == "cat (0.900)  [dog 0.100]  size 12.5"
    assert task.loss_name == "cross-entropy + MSE"
    assert task.output_count(["a", "b"]) == 3


def test_headline_loss_name_and_output_count() -> None:
    metrics = {"val_accuracy": 0.5, "val_sequence_accuracy": 0.98, "val_bleu4": 45.25}
    assert get_task("classify").headline_text(metrics) == "accuracy 50.0 %"
    assert get_task("sequence").headline_text(metrics) == "sequence accuracy 98.0 %"
    assert get_task("caption").headline_text(metrics) == "BLEU-4 45.2"
    assert get_task("sequence").headline_text({}) == ""
    assert [get_task(t).loss_name for t in TASK_NAMES] == ["cross-entropy", "CTC", "cross-entropy per word"]
    assert len({get_task(t).accuracy_name for t in TASK_NAMES}) == 3
    assert [get_task(t).output_count(["a", "b", "c", "d", "e"]) for t in TASK_NAMES] == [5, 6, 5]
    assert [get_task(t).has_classes for t in TASK_NAMES] == [True, False, False]
    assert get_task("classify").check_targets({"a": 3, "b": 0})
    assert get_task("classify").check_targets({"a": 3, "b": 1}) is None
    assert get_task("classify").describe_dataset(120, 3) == "120 images · 3 classes"
