"""The inspector panel: probe images picked in the strip are probed and drawn exactly as the
forward pass computed them, pinned images are compared side by side, the replay slider shows the
chosen epoch's snapshot, and a confusion cell lists exactly its images."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from explorer.engine import replay
from explorer.engine.evaluation import class_details
from explorer.engine.preprocess import Preprocess
from explorer.engine.probe_run import probe_run
from explorer.engine.tasks import get_task
from explorer.ui.inspector import InspectorPanel
from explorer.ui.inspector.strip import load_thumbnails
from explorer.ui.probe.feature_maps import FeatureMapSection, stretched_rgb
from explorer.ui.probe.gradcam import GradCamSection
from models import build_model
from tests.ui.probe_reports import CLASSES, picture

pytestmark = pytest.mark.gui

SPEC = {
    "channels": 1, "color": "gray", "height": 32, "width": 32, "resize": "auto", "scale": 1 / 255, "mean": [0.5],
    "std": [0.25], "fit": "stretch", "max_width": None, "pad": "edge",
}  # fmt: skip


@pytest.fixture
def fake_run(tmp_path: Path) -> SimpleNamespace:
    """What the panel asks of a loaded run, with a real small CNN and real image files."""
    torch.manual_seed(0)
    model = build_model("cnn", in_channels=1, num_outputs=3, image_size=(32, 32), channels="8,16").eval()
    paths = []
    for i in range(4):
        img = np.roll(picture(32, 32)[..., 0], 3 * i, axis=1)
        p = tmp_path / f"img_{i}.png"
        cv2.imwrite(str(p), img)
        paths.append(str(p))
    return SimpleNamespace(
        model=model, labels=CLASSES, input_spec=Preprocess.from_dict(SPEC), device=torch.device("cpu"),
        task_object=get_task("classify"), path=tmp_path, paths=paths,
    )  # fmt: skip


def panel_with(qtbot, run: SimpleNamespace) -> InspectorPanel:  # noqa: ANN001
    panel = InspectorPanel()
    qtbot.addWidget(panel)
    panel.resize(1400, 6000)  # every section on screen (views paint only what can be seen)
    panel.show()
    panel.run = run
    panel.set_labels(run.labels)
    panel.strip.set_candidates(load_thumbnails(run.paths))
    return panel


def settled(qtbot, panel: InspectorPanel, n: int) -> None:  # noqa: ANN001
    qtbot.waitUntil(
        lambda: (
            len(panel.compare.views) == n
            and all(v.painted >= 1 and not v.waiting and v.sections for v in panel.compare.views.values())
        ),
        timeout=20000,
    )


def test_a_clicked_thumbnail_is_probed_and_drawn_as_the_forward_pass_computed(qtbot, fake_run) -> None:  # noqa: ANN001
    panel = panel_with(qtbot, fake_run)
    panel.strip.choose(fake_run.paths[1])
    settled(qtbot, panel, 1)
    view = panel.compare.views[fake_run.paths[1]]
    x = fake_run.input_spec.to_tensor(torch.from_numpy(fake_run.input_spec.load_uint8(fake_run.paths[1]))[None])
    with torch.no_grad():
        _, inter = fake_run.model.forward_intermediates(x)
    fm = [s for s in view.sections if isinstance(s, FeatureMapSection)]
    assert fm
    for sec in fm:  # every painted tile is the forward pass's channel, colour-stretched
        expected = stretched_rgb(inter[sec.keys[0]][0].numpy()[: sec.grid.n])
        tiles = sec.grid.tiles
        assert len(tiles) == len(expected) and all(np.array_equal(t, e) for t, e in zip(tiles, expected))
    (cam,) = [s for s in view.sections if isinstance(s, GradCamSection)]
    assert len(cam.buttons) == len(CLASSES)  # a map per class, the predicted one first
    predicted = CLASSES[int(np.argmax(view._ctx.report.probabilities))]
    assert cam.buttons[0].text() == predicted and {b.text() for b in cam.buttons} == set(CLASSES)
    for i in range(len(CLASSES)):
        cam.select(i)
        assert np.array_equal(cam.shown_map, view._ctx.arrays["gradcam"][i])
    panel.shutdown()


def test_pinning_two_images_shows_two_reports_side_by_side(qtbot, fake_run) -> None:  # noqa: ANN001
    panel = panel_with(qtbot, fake_run)
    panel.strip.pin(fake_run.paths[0])
    panel.strip.pin(fake_run.paths[2])
    settled(qtbot, panel, 2)
    assert panel.compare.paths() == [fake_run.paths[0], fake_run.paths[2]]
    for path, view in panel.compare.views.items():
        assert view._ctx.report.path == path
    a, b = (v._ctx.report.intermediates for v in panel.compare.views.values())
    assert any(not np.array_equal(a[k], b[k]) for k in a)  # two different images, two different reports
    panel.shutdown()


def test_the_replay_slider_shows_the_snapshot_of_the_chosen_epoch(qtbot, fake_run, tmp_path: Path) -> None:  # noqa: ANN001
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for epoch in (1, 2, 3):
        replay.write_snapshot(run_dir, epoch, [probe_run(fake_run, fake_run.paths[epoch], epoch=epoch)])
    panel = panel_with(qtbot, fake_run)
    panel.run_dir = run_dir
    panel.refresh_epochs()
    assert panel.epochs == [1, 2, 3]
    panel.slider.setValue(1)  # the second snapshot: epoch 2
    settled(qtbot, panel, 1)
    snap = replay.load_snapshot(run_dir, 2)
    (view,) = panel.compare.views.values()
    shown = view._ctx.report
    assert shown.epoch == 2 and shown.path == fake_run.paths[2] and "replaying epoch 2" in panel.epoch_label.text()
    for k, a in snap.reports[0].intermediates.items():
        assert np.array_equal(shown.intermediates[k], a)
    panel.shutdown()


def test_clicking_a_confusion_cell_lists_exactly_that_cells_images(qtbot, fake_run) -> None:  # noqa: ANN001
    panel = panel_with(qtbot, fake_run)
    paths = fake_run.paths
    y_true, y_pred = np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1])
    det = class_details(paths, y_true, y_pred, np.array([0.9, 0.8, 0.7, 0.6]), CLASSES)
    ev = panel.evaluation
    ev._on_done(({"details": det, "report": {"accuracy": 0.5}, "paths": paths}, load_thumbnails(paths[1:2])))
    assert np.array_equal(ev.confusion.counts, det.confusion.counts)
    for (i, j), expected in {(0, 1): [paths[1]], (2, 1): [paths[3]], (1, 1): [paths[2]], (2, 2): []}.items():
        ev.show_cell(i, j)
        assert ev.cell_paths == expected
        qtbot.waitUntil(lambda e=expected: ev.cell_images.paths() == e, timeout=5000)
    assert [w["path"] for w in det.wrong] == [paths[1], paths[3]]
    assert ev.table.rowCount() == len(CLASSES) and ev.table.item(1, 0).text() == "0.333"  # class 1: 1 of 3
    panel.shutdown()


def _fake_run_folder(path: Path, lr: float, losses: list[float]) -> Path:
    import json

    path.mkdir()
    cfg = {
        "format": "model-explorer-run",
        "arch": "cnn",
        "params": {"channels": [8]},
        "data": {"source": "sample:shapes"},
        "train": {"lr": lr},
    }
    (path / "config.json").write_text(json.dumps(cfg))
    hist = [{"epoch": i + 1, "val_loss": v, "train_loss": v + 0.1} for i, v in enumerate(losses)]
    (path / "history.json").write_text(json.dumps(hist))
    (path / "metrics.json").write_text(json.dumps({"val_accuracy": 1 - losses[-1], "epochs": len(losses)}))
    return path


def test_runs_side_by_side_overlay_curves_and_list_only_the_differing_settings(qtbot, tmp_path: Path) -> None:
    from explorer.ui.inspector.runs_compare import RunsCompare

    view = RunsCompare()
    qtbot.addWidget(view)
    view.add_run(_fake_run_folder(tmp_path / "a", 0.001, [0.9, 0.5]))
    view.add_run(_fake_run_folder(tmp_path / "b", 0.01, [0.8, 0.6, 0.4]))
    assert view.metric.currentText() == "val_loss"
    curves = view.plot.getPlotItem().listDataItems()
    assert [list(c.yData) for c in curves] == [[0.9, 0.5], [0.8, 0.6, 0.4]]
    rows = [view.settings.verticalHeaderItem(i).text() for i in range(view.settings.rowCount())]
    assert rows == ["train.lr"]
    assert [view.settings.item(0, j).text() for j in range(2)] == ["0.001", "0.01"]
    figures = {view.figures.verticalHeaderItem(i).text() for i in range(view.figures.rowCount())}
    assert figures == {"val_accuracy", "epochs"}
