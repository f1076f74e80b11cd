"""The sequence-reading families share one recurrent parameter block, one check and one head."""

from __future__ import annotations

import pytest
from torch import nn

from models import ParamError, build_model, list_models, model_params
from models._seqhead import RecurrentParams

RECURRENT = ("rnn", "crnn", "patch_rnn")
BLOCK = ("cell", "hidden_size", "num_layers", "bidirectional", "dropout", "pool")
SIZES = {"rnn": (12, 10), "crnn": (16, 24), "patch_rnn": (16, 16)}


def test_field_order_is_what_users_know() -> None:
    """The block sits where each family always listed it (archs --json and the form keep their order)."""
    names = {f: [i.name for i in model_params(f).describe()] for f in RECURRENT}
    assert names["rnn"] == [*BLOCK, "proj", "activation", "head_dropout", "init"]
    assert names["crnn"] == ["channels", "width_pools", "activation", *BLOCK, "head", "head_dropout", "init"]
    assert names["patch_rnn"] == ["tile", "stride", "tile_input", "channels", "activation", *BLOCK, "head_dropout", "init"]  # fmt: skip


@pytest.mark.parametrize("family", RECURRENT)
def test_one_declaration(family: str) -> None:
    params = model_params(family)
    assert issubclass(params, RecurrentParams)
    shared = {i.name: i for i in RecurrentParams.describe()}
    for info in params.describe():
        assert "{" not in info.help and "}" not in info.help, info  # every template filled
        if info.name in ("hidden_size", "num_layers", "dropout"):
            assert info == shared[info.name]
    steps = params.reading.steps
    helps = {i.name: i.help for i in params.describe()}
    assert steps in helps["bidirectional"] and steps in helps["pool"]


def test_no_template_left_in_any_family() -> None:
    for family in list_models():
        assert all("{" not in i.help for i in model_params(family).describe()), family


@pytest.mark.parametrize("family", RECURRENT)
def test_one_check(family: str) -> None:
    with pytest.raises(ParamError) as e:
        build_model(family, in_channels=1, num_outputs=3, image_size=SIZES[family], dropout=0.2)
    assert e.value.param == "dropout"
    build_model(family, in_channels=1, num_outputs=3, image_size=SIZES[family], dropout=0.2, num_layers=2)


@pytest.mark.parametrize("family", [*RECURRENT, "conv_rnn"])
@pytest.mark.parametrize("head_dropout", [0.0, 0.3])
def test_one_head(family: str, head_dropout: float) -> None:
    size = SIZES.get(family, (12, 12))
    net = build_model(family, in_channels=1, num_outputs=3, image_size=size, head_dropout=head_dropout)
    layers = list(net.head)
    assert isinstance(layers[-1], nn.Linear) and layers[-1].out_features == 3
    dropouts = [m for m in layers if isinstance(m, nn.Dropout)]
    assert [m.p for m in dropouts] == ([head_dropout] if head_dropout else [])
    if head_dropout:
        assert layers[-2] is dropouts[0]  # right before the output layer
