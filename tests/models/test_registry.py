"""Registry and parameter specs, across every family."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

import models
from models import ParamError, build_model, list_models, model_info, model_params, register_model
from models._base import INITS

FAMILIES = ("backbone", "cnn", "conv_rnn", "crnn", "patch_rnn", "rnn")


def _as_set_string(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


def test_list_models_lists_the_families() -> None:
    names = list_models()
    assert set(FAMILIES) <= set(names)
    assert names == sorted(names)
    assert set(FAMILIES) <= set(list_models("classify"))


def test_duplicate_registration_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_model("cnn", params=model_params("cnn"), description="again")(lambda p, **kw: None)
    assert model_info("cnn").builder.__module__ == "models.cnn"


def test_unknown_family_names_arch() -> None:
    with pytest.raises(ParamError) as e:
        build_model("nope", in_channels=1, num_outputs=2, image_size=(32, 32))
    assert e.value.param == "arch"


@pytest.mark.parametrize("family", FAMILIES)
def test_describe_round_trip(family: str) -> None:
    cls = model_params(family)
    infos = cls.describe()
    assert cls.family == family
    assert json.loads(json.dumps([i.to_dict() for i in infos]))  # JSON-friendly for `archs --json`
    names = [i.name for i in infos]
    assert "init" in names
    init = next(i for i in infos if i.name == "init")
    assert init.default == "default" and tuple(init.choices) == INITS
    for i in infos:
        assert len(i.help) > 15, f"{family}.{i.name} needs a help text"
    default = cls()
    # native defaults, their --set strings, and to_dict() all give the default instance back
    assert cls.from_dict({i.name: i.default for i in infos}) == default
    assert cls.from_dict({i.name: _as_set_string(i.default) for i in infos}) == default
    assert cls.from_dict(default.to_dict()) == default


@pytest.mark.parametrize("family", FAMILIES)
def test_unknown_parameter_is_named(family: str) -> None:
    with pytest.raises(ParamError) as e:
        build_model(family, in_channels=1, num_outputs=2, image_size=(32, 32), no_such_knob=3)
    assert e.value.param == "no_such_knob"
    assert "valid:" in str(e.value)


@pytest.mark.parametrize("family", FAMILIES)
def test_bad_init_is_named(family: str) -> None:
    with pytest.raises(ParamError) as e:
        build_model(family, in_channels=1, num_outputs=2, image_size=(32, 32), init="orthogonal")
    assert e.value.param == "init"


def test_set_strings_are_parsed() -> None:
    cls = model_params("cnn")
    p = cls.from_dict({"channels": "16, 32", "batch_norm": "false", "dropout": "0.1", "kernel_size": "5"})
    assert p.channels == (16, 32) and p.batch_norm is False and p.dropout == 0.1 and p.kernel_size == 5
    p = model_params("rnn").from_dict({"bidirectional": "no", "num_layers": "2", "cell": "gru"})
    assert p.bidirectional is False and p.num_layers == 2 and p.cell == "gru"
    net = build_model("cnn", in_channels=1, num_outputs=3, image_size=(32, 32), channels="[8,16]", pool="avg")
    assert net(torch.randn(2, 1, 32, 32)).shape == (2, 3)


@pytest.mark.parametrize(
    ("family", "values", "name"),
    [
        ("cnn", {"channels": "8,0"}, "channels"),
        ("cnn", {"kernel_size": 4}, "kernel_size"),
        ("cnn", {"dropout": 1.5}, "dropout"),
        ("cnn", {"batch_norm": "maybe"}, "batch_norm"),
        ("cnn", {"channels": ""}, "channels"),
        ("rnn", {"hidden_size": 0}, "hidden_size"),
        ("rnn", {"cell": "transformer"}, "cell"),
        ("crnn", {"num_layers": 9}, "num_layers"),
        ("crnn", {"head": "softmax"}, "head"),
        ("patch_rnn", {"tile": 0}, "tile"),
        ("patch_rnn", {"channels": "8,x"}, "channels"),
        ("conv_rnn", {"split": "cols"}, "split"),
        ("conv_rnn", {"hidden_channels": 0}, "hidden_channels"),
        ("backbone", {"arch": "vgg16"}, "arch"),
    ],
)
def test_out_of_range_is_named(family: str, values: dict, name: str) -> None:
    with pytest.raises(ParamError) as e:
        build_model(family, in_channels=1, num_outputs=2, image_size=(32, 32), **values)
    assert e.value.param == name


def test_range_message_says_what_is_valid() -> None:
    with pytest.raises(ParamError, match=r"valid range \[0\.0, 0\.9\]"):
        model_params("cnn").from_dict({"dropout": 0.95})


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("scheme", ["xavier", "he"])
def test_init_schemes_change_weights(family: str, scheme: str) -> None:
    kw = {"arch": "mobilenet_v3_small"} if family == "backbone" else {}
    torch.manual_seed(0)
    ref = build_model(family, in_channels=1, num_outputs=3, image_size=(32, 32), **kw)
    torch.manual_seed(0)
    net = build_model(family, in_channels=1, num_outputs=3, image_size=(32, 32), init=scheme, **kw)
    ref_sd, sd = ref.state_dict(), net.state_dict()
    changed = [k for k in sd if k.endswith("weight") and sd[k].ndim >= 2 and not torch.equal(sd[k], ref_sd[k])]
    assert changed, f"{scheme} changed no weight"
    net.eval()
    assert torch.isfinite(net(torch.randn(2, 1, 32, 32))).all()


@pytest.mark.parametrize(
    ("family", "weight", "bias"),
    [
        ("rnn", "rnn.0.weight_hh_l0", "rnn.0.bias_ih_l0"),
        ("crnn", "rnn.0.weight_hh_l0", "rnn.0.bias_ih_l0"),
        ("patch_rnn", "rnn.0.weight_hh_l0", "rnn.0.bias_ih_l0"),
        ("conv_rnn", "cells.0.hidden_conv.weight", "cells.0.hidden_conv.bias"),
    ],
)
@pytest.mark.parametrize("scheme", ["xavier", "he"])
def test_init_schemes_reach_recurrent_weights(family: str, weight: str, bias: str, scheme: str) -> None:
    torch.manual_seed(0)
    ref = build_model(family, in_channels=1, num_outputs=3, image_size=(32, 32)).state_dict()
    torch.manual_seed(0)
    sd = build_model(family, in_channels=1, num_outputs=3, image_size=(32, 32), init=scheme).state_dict()
    assert not torch.equal(sd[weight], ref[weight])
    assert torch.count_nonzero(sd[bias]) == 0


def test_sequence_families() -> None:
    assert list_models("sequence") == ["crnn"]
    assert {"conv_rnn", "patch_rnn"} <= set(list_models("classify"))


def test_every_model_keeps_its_params() -> None:
    for family in FAMILIES:
        kw = {"arch": "mobilenet_v3_small"} if family == "backbone" else {}
        net = build_model(family, in_channels=3, num_outputs=2, image_size=(32, 32), **kw)
        assert isinstance(net, models.ExplorerModel)
        assert dataclasses.is_dataclass(net.params) and net.params.family == family
