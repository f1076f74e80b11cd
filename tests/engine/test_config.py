from __future__ import annotations

import json

import pytest

from explorer.engine import ConfigError, RunConfig
from explorer.engine.schedule import lr_factor


def test_round_trip_through_json() -> None:
    cfg = RunConfig(arch="rnn", params={"cell": "gru", "hidden_size": 64})
    cfg.train.lr = 3e-4
    cfg.data.augment.hflip = True
    cfg.data.height = 24
    again = RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg


@pytest.mark.parametrize(
    "patch, key",
    [
        ({"train": {"lrr": 1}}, "train.lrr"),
        ({"train": {"lr": -1}}, "train.lr"),
        ({"train": {"epochs": "many"}}, "train.epochs"),
        ({"train": {"optimizer": "adagrad"}}, "train.optimizer"),
        ({"data": {"val_fraction": 0.95}}, "data.val_fraction"),
        ({"data": {"augment": {"spin": 1}}}, "data.augment"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_values_name_the_key(patch: dict, key: str) -> None:
    with pytest.raises(ConfigError) as e:
        RunConfig.from_dict(patch)
    assert e.value.key == key
    assert key in str(e.value)


def test_onecycle_rises_then_falls_and_ends_low() -> None:
    f = [lr_factor("onecycle", s, 100, 10) for s in range(100)]
    peak = max(range(100), key=f.__getitem__)
    assert 25 <= peak <= 32
    assert f[0] == pytest.approx(1 / 25)
    assert f[-1] < 1e-4
    assert lr_factor("step", 25, 100, 10, step_epochs=2, step_gamma=0.5) == 0.5
    assert lr_factor("cosine", 99, 100, 10) == pytest.approx(0.0, abs=1e-9)
