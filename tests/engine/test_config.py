from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import models
from explorer.cli.flags import readme_table
from explorer.data import AugmentConfig
from explorer.engine import ConfigError, RunConfig
from explorer.engine.config import AUGMENT_SETTINGS, DataConfig, TrainConfig, all_settings, augment_from_dict
from explorer.engine.schedule import lr_factor
from explorer.engine.settings import Setting
from models import parse_bool
from models._spec import FALSE_WORDS, TRUE_WORDS

README = Path(__file__).resolve().parents[2] / "README.md"
BEGIN, END = "<!-- settings:begin -->", "<!-- settings:end -->"


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


# -- settings declared once ------------------------------------------------------------------------


def test_every_config_field_is_declared() -> None:
    keys = set(all_settings())
    for prefix, cls in (("train", TrainConfig), ("data", DataConfig), ("data.augment", AugmentConfig)):
        for name in cls.__dataclass_fields__:
            if name != "augment":
                assert f"{prefix}.{name}" in keys, f"{prefix}.{name} has no declaration"
    for s in all_settings().values():
        assert s.help, s.key
        if s.kind in ("int", "float") and s.choices is None:
            assert s.min is not None, f"{s.key} declares no minimum"


def test_defaults_are_valid_and_match_the_dataclasses() -> None:
    cfg = RunConfig()
    cfg.validate()
    for s in all_settings().values():
        *path, name = s.key.split(".")
        obj = cfg
        for part in path:
            obj = getattr(obj, part)
        assert getattr(obj, name) == s.default, s.key


def outside(s: Setting, side: str) -> float:
    """The nearest value just outside the declared bound ``side`` ("min" or "max")."""
    bound = getattr(s, side)
    if s.kind == "int":
        return bound - 1 if side == "min" else bound + 1
    return math.nextafter(bound, -math.inf if side == "min" else math.inf)


def _patch(key: str, value: object) -> dict:
    *path, name = key.split(".")
    d: dict = {name: value}
    for part in reversed(path):
        d = {part: d}
    return d


@pytest.mark.parametrize("key", sorted(all_settings()))
def test_validation_takes_the_declared_range_and_names_the_setting(key: str) -> None:
    s = all_settings()[key]
    if s.choices is not None:
        for c in s.choices:
            RunConfig.from_dict(_patch(key, c))
        with pytest.raises(ConfigError) as e:
            RunConfig.from_dict(_patch(key, "not-a-choice"))
        assert e.value.key == key
    for side in ("min", "max"):
        if getattr(s, side) is None or s.choices is not None:
            continue
        RunConfig.from_dict(_patch(key, getattr(s, side)))  # the bound itself is valid
        with pytest.raises(ConfigError) as e:
            RunConfig.from_dict(_patch(key, outside(s, side)))
        assert e.value.key == key and key in str(e.value)


def test_setting_a_bad_value_in_code_is_named_by_validate() -> None:
    cfg = RunConfig()
    cfg.data.augment.rotate = 181.0
    with pytest.raises(ConfigError) as e:
        cfg.validate()
    assert e.value.key == "data.augment.rotate"
    cfg = RunConfig()
    cfg.train.seed = -1
    with pytest.raises(ConfigError, match="train.seed"):
        cfg.validate()


def test_one_boolean_parser() -> None:
    for word in TRUE_WORDS:
        for variant in (word, word.upper(), f" {word} "):
            assert parse_bool(variant) is True
    for word in FALSE_WORDS:
        assert parse_bool(word) is False and parse_bool(word.capitalize()) is False
    assert parse_bool(True) is True and parse_bool(0) is False and parse_bool(1.0) is True
    for bad in ("maybe", "", 2, None, "y"):
        with pytest.raises(ValueError):
            parse_bool(bad)
    # model parameters, configs and augmentation words go through it
    assert models.model_params("rnn").from_dict({"bidirectional": "On"}).bidirectional is True
    assert RunConfig.from_dict({"train": {"amp": "Off"}}).train.amp is False
    assert augment_from_dict({"hflip": " YES "}).hflip is True
    assert RunConfig.from_dict({"data": {"augment": {"vflip": "on"}}}).data.augment.vflip is True
    assert AUGMENT_SETTINGS[0].kind == "bool"
    with pytest.raises(ConfigError) as e:
        RunConfig.from_dict({"train": {"restore_best": "maybe"}})
    assert e.value.key == "train.restore_best"


def test_readme_options_table_is_generated_from_the_declarations() -> None:
    text = README.read_text(encoding="utf-8")
    assert BEGIN in text and END in text, "README.md needs the settings table markers"
    between = text.split(BEGIN, 1)[1].split(END, 1)[0]
    assert between.strip() == readme_table().strip(), (
        "README options table is stale; regenerate with "
        "python -c 'from explorer.cli.flags import readme_table; print(readme_table())'"
    )
