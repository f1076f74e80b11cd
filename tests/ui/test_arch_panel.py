"""The architecture screen: generated forms, inline validation, live summary."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLineEdit, QSpinBox

from models import build_model, list_models, model_info
from tests.ui.helpers import make_window

pytestmark = pytest.mark.gui


def test_every_family_gets_a_form_generated_from_its_parameters(qtbot) -> None:
    w = make_window(qtbot)
    panel = w.arch_panel
    families = [panel.family_list.item(i).text() for i in range(panel.family_list.count())]
    assert families == list_models("classify")
    for i, name in enumerate(families):
        panel.family_list.setCurrentRow(i)
        form = panel.form
        infos = model_info(name).params.describe()
        assert list(form.rows) == [p.name for p in infos]
        for info in infos:
            ed = form.rows[info.name].editor
            if info.choices is not None:
                assert isinstance(ed, QComboBox) and [ed.itemData(j) for j in range(ed.count())] == list(info.choices)
            elif info.kind == "bool":
                assert isinstance(ed, QCheckBox)
            elif info.kind == "int":
                assert isinstance(ed, QSpinBox)
                if info.min is not None:
                    assert ed.minimum() == info.min
                if info.max is not None:
                    assert ed.maximum() == info.max
            elif info.kind == "float":
                assert isinstance(ed, QDoubleSpinBox)
            else:
                assert isinstance(ed, QLineEdit)
            assert info.help.split(".")[0][:30] in ed.toolTip()
        assert form.values() == {p.name: list(p.default) if isinstance(p.default, tuple) else p.default for p in infos}


def test_an_invalid_value_is_flagged_inline_and_blocks_training(qtbot, two_class: Path) -> None:
    w = make_window(qtbot, two_class)
    panel = w.arch_panel
    panel.family_list.setCurrentRow(list_models("classify").index("cnn"))
    form = panel.form
    form.set_value("channels", "8, 0")
    err = form.rows["channels"].error
    assert not err.isHidden() and "below the minimum 1" in err.text()
    assert form.rows["channels"].editor.property("invalid") is True
    assert not panel.valid
    assert not w.start_training()
    assert "channels" in w.train_panel.error_banner.text.text()
    assert w.tabs.currentWidget() is panel  # shows where the problem is
    assert not w.controller.is_running()

    form.set_value("channels", "8, abc")
    assert "cannot read" in err.text()
    form.set_value("channels", "8, 16")
    assert err.isHidden() and panel.valid and not form.rows["channels"].editor.property("invalid")


def test_rules_that_need_the_input_shape_are_checked_too(qtbot, two_class: Path) -> None:
    w = make_window(qtbot, two_class)  # 16x16 images
    panel = w.arch_panel
    panel.request_summary()
    qtbot.waitUntil(lambda: panel.last_summary is not None, timeout=10000)
    panel.form.set_value("channels", "8,8,8,8,8")  # five 2x poolings need 32 px
    assert "pool" in panel.form.errors() and "32 px" in panel.form.errors()["pool"]
    assert not w.start_training()


def test_live_parameter_count_and_layer_table(qtbot, two_class: Path) -> None:
    w = make_window(qtbot, two_class)
    panel = w.arch_panel
    panel.form.set_value("channels", "8, 16")
    panel.last_summary = None
    panel.request_summary()
    qtbot.waitUntil(lambda: panel.last_summary is not None and panel.last_summary.total > 0, timeout=10000)
    s = panel.last_summary
    expected = sum(
        p.numel()
        for p in build_model("cnn", in_channels=1, num_outputs=2, image_size=(16, 16), channels=[8, 16]).parameters()
    )
    assert s.input_shape == (1, 16, 16) and s.total == expected
    assert panel.count_label.text().startswith(f"{expected:,}")
    rows = {
        panel.table.item(i, 0).text(): (panel.table.item(i, 1).text(), panel.table.item(i, 2).text())
        for i in range(panel.table.rowCount())
    }
    assert rows["features.0.0"] == ("Conv2d", "(8, 16, 16)")
    assert rows["features.1.0"][1] == "(16, 8, 8)"
    assert any(t == "Linear" and shape == "(2)" for t, shape in rows.values())
    assert "1 × 16 × 16" in panel.shape_label.text()


def test_switching_family_keeps_each_familys_edits(qtbot) -> None:
    w = make_window(qtbot)
    panel = w.arch_panel
    fams = list_models("classify")
    panel.family_list.setCurrentRow(fams.index("cnn"))
    panel.form.set_value("channels", "4, 8")
    other = next(f for f in fams if f != "cnn")
    panel.family_list.setCurrentRow(fams.index(other))
    assert w.session.project.config.arch == other
    panel.family_list.setCurrentRow(fams.index("cnn"))
    assert panel.form.values()["channels"] == [4, 8]
    assert w.session.params("cnn")["channels"] == [4, 8]


def test_a_text_manifest_switches_to_the_families_that_read_text(qtbot, tmp_path: Path) -> None:
    import cv2
    import numpy as np

    folder = tmp_path / "lines"
    folder.mkdir()
    rows = []
    for i in range(6):
        ok, buf = cv2.imencode(".png", np.full((16, 48), 200, np.uint8))
        (folder / f"{i}.png").write_bytes(buf.tobytes())
        rows.append(f"{i}.png,{i}{i + 1}{i + 2}\n")
    (folder / "labels.csv").write_text("path,text\n" + "".join(rows))
    w = make_window(qtbot)
    w.import_paths([str(folder)])
    assert w.session.project.task == "sequence"
    panel = w.arch_panel
    families = [panel.family_list.item(i).text() for i in range(panel.family_list.count())]
    assert families == list_models("sequence") and panel.arch in families
    assert w.dataset_panel.sample_model.index(0).data() == "012"


def _engine_model(project):  # noqa: ANN001, ANN202
    """The model the trainer builds for the project's config (the engine's own build step)."""
    from types import SimpleNamespace

    from explorer.engine.session import Session
    from explorer.engine.tasks import get_task

    cfg = project.run_config()
    task = get_task(cfg.data.task)
    data = task.prepare(project.to_source(), cfg.data, seed=cfg.train.seed)
    built = SimpleNamespace(cfg=cfg, task=task, data=data)
    model = Session._build_model(built, Session._model_args(built))  # type: ignore[arg-type]
    return model, built.model_spec


def _preview(qtbot, w, arch: str):  # noqa: ANN001, ANN202
    panel = w.arch_panel
    panel.family_list.setCurrentRow(
        [panel.family_list.item(i).text() for i in range(panel.family_list.count())].index(arch)
    )
    assert panel.arch == arch
    panel.last_summary = None
    panel.request_summary()
    qtbot.waitUntil(lambda: panel.last_summary is not None, timeout=20000)
    return panel.last_summary


@pytest.mark.parametrize("captions", [False, True], ids=["crnn-text", "captioner"])
def test_the_preview_is_the_model_the_trainer_builds(qtbot, tmp_path: Path, captions: bool) -> None:
    """crnn on a text project previews the CTC head; the captioner gets its vocabulary and example caption."""
    from tests.datasets import export_digit_strings

    train, _ = export_digit_strings(tmp_path / "d", n_train=12, n_test=1, captions=captions)
    w = make_window(qtbot)
    w.import_paths([str(train)])
    arch = "captioner" if captions else "crnn"
    s = _preview(qtbot, w, arch)
    assert s.error is None, s.error
    model, spec = _engine_model(w.session.project)
    assert s.total == sum(p.numel() for p in model.parameters()) > 0
    assert s.input_shape == (spec["in_channels"], *spec["image_size"]) and s.num_outputs == spec["num_outputs"]
    panel = w.arch_panel
    assert panel.count_label.text().startswith(f"{s.total:,}")
    assert panel.table.rowCount() == len(s.rows) > 0 and sum(r.params for r in s.rows) == s.total
    assert s.input_shape[2] is None and "any width" in panel.shape_label.text()  # digit lines keep their aspect ratio
