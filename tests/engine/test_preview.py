"""The engine's model dry run (what the architecture screen shows): no Qt, plain Python back."""

from __future__ import annotations

from explorer.engine.preview import ModelPreview, preview_model
from explorer.engine.tasks import get_task
from models import build_model


def test_preview_counts_parameters_and_walks_the_layers() -> None:
    p = preview_model(get_task("classify"), "cnn", {"channels": [8, 16]}, 1, (16, 16), ["a", "b", "c"])
    assert isinstance(p, ModelPreview) and p.error is None
    model = build_model("cnn", in_channels=1, num_outputs=3, image_size=(16, 16), channels=[8, 16])
    assert p.total == p.trainable == sum(t.numel() for t in model.parameters())
    assert p.input_shape == (1, 16, 16) and p.num_outputs == 3
    assert sum(r.params for r in p.rows) == p.total
    assert p.rows[-1].output_shape == "(3)"  # the head comes last in forward order


def test_a_bad_parameter_is_named() -> None:
    p = preview_model(get_task("classify"), "cnn", {"channels": [8], "kernel_size": 4}, 3, (32, 32))
    assert p.error and p.error_param == "kernel_size" and p.rows == []


def test_a_model_that_cannot_run_on_the_input_says_so() -> None:
    p = preview_model(get_task("classify"), "cnn", {"channels": [8] * 8, "head": "flatten"}, 3, (8, 8))
    assert p.error


def test_a_text_task_previews_the_ctc_head_and_a_caption_task_its_decoder() -> None:
    seq = get_task("sequence")
    p = preview_model(seq, "crnn", {}, 1, (32, None), list("0123"))
    assert p.error is None and p.num_outputs == 5 and p.input_shape == (1, 32, None) and p.example_width == 128
    model = build_model("crnn", in_channels=1, num_outputs=5, image_size=(32, None), **seq.model_params("crnn", {}))
    assert p.total == sum(t.numel() for t in model.parameters())
    cap = preview_model(get_task("caption"), "captioner", {}, 3, (32, 32))
    assert cap.error is None and cap.total > 0 and cap.rows


def test_a_family_that_cannot_learn_the_task_says_so() -> None:
    p = preview_model(get_task("caption"), "cnn", {}, 3, (32, 32))
    assert p.error and "cannot write captions" in p.error and p.rows == []
