"""The engine's model dry run (what the architecture screen shows): no Qt, plain Python back."""

from __future__ import annotations

from explorer.engine.preview import ModelPreview, preview_model
from models import build_model


def test_preview_counts_parameters_and_walks_the_layers() -> None:
    p = preview_model("cnn", {"channels": [8, 16]}, 1, (16, 16), 3)
    assert isinstance(p, ModelPreview) and p.error is None
    model = build_model("cnn", in_channels=1, num_outputs=3, image_size=(16, 16), channels=[8, 16])
    assert p.total == p.trainable == sum(t.numel() for t in model.parameters())
    assert p.input_shape == (1, 16, 16) and p.num_outputs == 3
    assert sum(r.params for r in p.rows) == p.total
    assert p.rows[-1].output_shape == "(3)"  # the head comes last in forward order


def test_a_bad_parameter_is_named() -> None:
    p = preview_model("cnn", {"channels": [8], "kernel_size": 4}, 3, (32, 32), 2)
    assert p.error and p.error_param == "kernel_size" and p.rows == []


def test_a_model_that_cannot_run_on_the_input_says_so() -> None:
    p = preview_model("cnn", {"channels": [8] * 8, "head": "flatten"}, 3, (8, 8), 2)
    assert p.error
