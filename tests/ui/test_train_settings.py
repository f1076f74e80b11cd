"""A setting's range can never differ between the CLI, the app's training form and the engine."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QSpinBox
from pytestqt.qtbot import QtBot

from explorer.cli import build_parser, main
from explorer.engine import ConfigError, RunConfig
from explorer.engine.config import AUGMENT_SETTINGS, all_settings
from explorer.engine.settings import Setting, describe_range
from explorer.ui.session import ProjectSession
from explorer.ui.train_settings import BASIC, MORE, TrainSettings
from tests.engine.test_config import outside

SETTINGS = all_settings()


def _train_parser() -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["train"].complete()


def _flag_action(flag: str) -> argparse.Action:
    return next(a for a in _train_parser()._actions if flag in a.option_strings)


@pytest.fixture
def form(qtbot: QtBot) -> TrainSettings:
    w = TrainSettings(ProjectSession(autosave=False))
    qtbot.addWidget(w)
    return w


def _check_cli(s: Setting) -> None:
    if s.key in ("data.height", "data.width"):  # set together through --image-size HxW
        assert describe_range(s) in _flag_action("--image-size").help
    if s.key.startswith("data.augment."):  # set through --augment KEY=VALUE
        assert f"{s.name} ({describe_range(s)})" in _flag_action("--augment").help
    if not s.flag:
        return
    a = _flag_action(s.flag)
    assert a.dest == s.key and a.default is None
    if s.kind == "bool":
        assert a.const is (not s.default) and a.nargs == 0
        return
    assert a.choices == (list(s.choices) if s.choices is not None else None), s.key
    assert a.type is {"int": int, "float": float}.get(s.kind), s.key


def _check_form(s: Setting, w: object) -> None:
    if isinstance(w, QComboBox):
        items = [w.itemData(i) for i in range(w.count())]
        assert s.choices is not None and set(items) <= set(s.choices)
        if s.key != "train.device":  # only devices that work here are offered
            assert items == list(s.choices)
    elif isinstance(w, QCheckBox):
        assert s.kind == "bool"
    else:
        assert isinstance(w, (QSpinBox, QDoubleSpinBox)), s.key
        assert (w.minimum(), w.maximum()) == (s.min, s.max), s.key
        assert isinstance(w, QSpinBox) == (s.kind == "int"), s.key


def _check_engine(s: Setting) -> None:
    for side in ("min", "max"):
        if getattr(s, side) is None or s.choices is not None:
            continue
        cfg = RunConfig()
        *path, name = s.key.split(".")
        obj = cfg
        for part in path:
            obj = getattr(obj, part)
        setattr(obj, name, outside(s, side))
        with pytest.raises(ConfigError) as e:
            cfg.validate()
        assert e.value.key == s.key


@pytest.mark.parametrize("key", sorted(SETTINGS))
def test_cli_form_and_engine_take_ranges_from_the_one_declaration(key: str, form: TrainSettings) -> None:
    s = SETTINGS[key]
    _check_cli(s)
    if key in BASIC + MORE:
        w = form.editors[key]
        assert getattr(form, s.name) is w
        _check_form(s, w)
    if key.startswith("data.augment."):
        row = form.augment.rows[s.name]
        _check_form(s, row.editor)
    _check_engine(s)


def test_the_form_shows_and_edits_exactly_the_declared_groups(form: TrainSettings) -> None:
    assert set(form.editors) == set(BASIC + MORE)
    assert set(form.augment.rows) == {s.name for s in AUGMENT_SETTINGS}


def test_form_edits_reach_the_config(form: TrainSettings) -> None:
    cfg = form.session.project.config
    form.lr.setValue(3e-4)
    form.val_fraction.setValue(0.9)  # the declared maximum, once refused by the form (0.85)
    form.probe_interval.setValue(120.0)  # once capped at 60 s by the form, 3600 s by the engine
    form.schedule.setCurrentIndex(form.schedule.findData("cosine"))
    assert (cfg.train.lr, cfg.data.val_fraction, cfg.train.probe_interval) == (3e-4, 0.9, 120.0)
    assert cfg.train.schedule == "cosine"
    cfg.validate()
    cfg.train.epochs = 7
    form.load_from_session()
    assert form.epochs.value() == 7


def test_cli_rejects_just_outside_each_flag_range(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for s in SETTINGS.values():
        if not s.flag or s.kind not in ("int", "float") or s.choices is not None:
            continue
        for side in ("min", "max"):
            if getattr(s, side) is None:
                continue
            value = repr(outside(s, side))
            rc = main(["train", "sample:shapes", "--out", str(tmp_path / "r"), f"{s.flag}={value}"])
            err = capsys.readouterr().err
            assert rc == 2 and s.key in err, (s.flag, value, err)
    assert not (tmp_path / "r").exists()


def test_the_architecture_screens_input_box_uses_the_declarations(qtbot: QtBot) -> None:
    from explorer.ui.arch_panel import ArchPanel

    panel = ArchPanel(ProjectSession(autosave=False))
    qtbot.addWidget(panel)
    for spin, key in ((panel.input_box.height_spin, "data.height"), (panel.input_box.width_spin, "data.width")):
        s = SETTINGS[key]
        assert (spin.minimum(), spin.maximum()) == (s.min - 1, s.max)  # one below the minimum = "auto"
    colors = [panel.input_box.color_combo.itemData(i) for i in range(panel.input_box.color_combo.count())]
    assert colors == list(SETTINGS["data.color"].choices)
    panel.input_box.height_spin.setValue(SETTINGS["data.height"].min)
    assert panel.session.project.config.data.height == SETTINGS["data.height"].min
    panel.input_box.height_spin.setValue(panel.input_box.height_spin.minimum())
    assert panel.session.project.config.data.height is None
