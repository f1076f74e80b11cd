"""File > Open Model, then Inspect: an exported bundle of a classifier (cnn), a text reader (crnn,
CTC) and the captioner, opened in a fresh window, shows every view its model declares for a new
image, painted from exactly what the opened model computes; the views that need a run folder say
why they are not there; and the bundle opened by a new process (a restarted app) predicts what
the run predicted before the export."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer.engine import load_run, replay
from explorer.engine.probe_run import probe_run, validation_paths
from explorer.ui.open_model import OpenModelWindow
from explorer.ui.probe.attention import AttentionSection
from explorer.ui.probe.feature_maps import FeatureMapSection, stretched_rgb
from explorer.ui.probe.gradcam import GradCamSection
from explorer.ui.probe.outputs import CtcSection
from explorer.ui.probe.plan import HEADER_KINDS, plan_sections
from explorer.ui.probe.recurrent import RecurrentSection
from explorer.ui.probe.view import SECTIONS, ProbeView
from tests.ui.conftest import drop_paths
from tests.ui.reopen_helpers import RECIPES, Trained, same_prediction, train_and_export

pytestmark = pytest.mark.gui

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Trained]:
    """One tiny trained, exported run per family (a few seconds in all)."""
    return {f: train_and_export(tmp_path_factory.mktemp(f), f) for f in RECIPES}


def _window(qtbot, path: Path) -> OpenModelWindow:  # noqa: ANN001
    win = OpenModelWindow(path)
    qtbot.addWidget(win)
    win.resize(1400, 6000)  # every section on screen (views paint only what can be seen)
    win.show()
    qtbot.waitUntil(lambda: win.run is not None and win.tabs.isTabEnabled(1), timeout=60_000)
    return win


def _settled(qtbot, win: OpenModelWindow, path: str) -> ProbeView:  # noqa: ANN001
    views = win.inspector.compare.views

    def done() -> bool:
        v = views.get(path)
        return v is not None and v.painted >= 1 and bool(v.sections) and not v.waiting and v._ctx is not None

    qtbot.waitUntil(done, timeout=60_000)
    return views[path]


def _painted_equals_direct(view: ProbeView, direct_inter: dict, direct_report) -> set[str]:  # noqa: ANN001
    """Checks each section's painted values against a direct forward / probe of the model; returns the
    kinds covered."""
    info = view._ctx.report.info
    kinds = set()
    for sec in view.sections:
        kinds |= {info[k]["kind"] for k in sec.keys}
        if isinstance(sec, FeatureMapSection):
            want = stretched_rgb(direct_inter[sec.keys[0]][0].numpy()[: sec.grid.n])
            tiles = sec.grid.tiles  # the atlas's tiles, each one channel
            assert len(tiles) == len(want) and all(np.array_equal(t, w) for t, w in zip(tiles, want)), sec.keys
        elif isinstance(sec, RecurrentSection):
            for key in sec.keys:  # every state, gate and cell state of the layer, one after the other
                sec.select(key)
                want = direct_inter[key][0].float().numpy()
                np.testing.assert_allclose(sec.shown, want.reshape(want.shape[0], -1), atol=1e-5, err_msg=key)
        elif isinstance(sec, AttentionSection):
            maps = direct_inter[sec.keys[0]][0].numpy()
            assert len(sec.buttons) == maps.shape[0] > 0
            for i in (0, maps.shape[0] - 1):
                sec.select(i)
                np.testing.assert_allclose(sec.shown_map, maps[i], atol=1e-6)
        elif isinstance(sec, GradCamSection):
            maps = direct_report.intermediates["gradcam"]
            assert len(sec.buttons) == maps.shape[0] > 0
            for i in (0, maps.shape[0] - 1):
                sec.select(i)
                np.testing.assert_allclose(sec.shown_map, maps[i], atol=1e-5)
        elif isinstance(sec, CtcSection):
            assert sec.plot.item.image is not None
        else:
            raise AssertionError(f"no check for {type(sec).__name__}")
    return kinds


@pytest.mark.slow
@pytest.mark.parametrize("family", list(RECIPES))
def test_an_opened_bundle_is_inspected_with_every_declared_view(qtbot, trained, family: str) -> None:  # noqa: ANN001
    t = trained[family]
    win = _window(qtbot, t.bundle)
    ins = win.inspector
    # what needs a run folder is not offered for a bundle, and a line says why
    assert not ins.replay_row.isVisibleTo(ins)
    assert [ins.tabs.isTabVisible(i) for i in range(ins.tabs.count())] == [True] + [False] * (ins.tabs.count() - 1)
    assert "run folder" in ins.folder_note.text() and t.bundle.name in ins.folder_note.text()
    # the user adds a new image on the Predict side (a drop), then asks to inspect it
    image = t.images[0]
    assert drop_paths(win.panel, [image])
    qtbot.waitUntil(lambda: win.panel.table.rowCount() == 1 and not win.panel.busy, timeout=60_000)
    assert ins.strip.paths() == [image]  # offered to the inspector too
    win.panel.table.selectRow(0)
    assert win.panel.inspect_btn.isEnabled()
    win.panel.inspect_btn.click()
    assert win.tabs.currentWidget() is ins
    view = _settled(qtbot, win, image)
    report = view._ctx.report

    # faithfulness: the same bundle loaded again, on its own, run directly
    direct = load_run(t.bundle)
    x = direct.preprocess([image])
    with torch.no_grad():
        out, inter = direct.task_object.forward_intermediates(direct.model, x)  # as the run decodes
    for key, a in inter.items():
        np.testing.assert_allclose(report.intermediates[key], a[0].float().numpy(), atol=1e-5, err_msg=key)
    direct_report = probe_run(direct, image)
    np.testing.assert_allclose(report.probabilities, direct_report.probabilities, atol=1e-6)
    assert report.text == direct_report.text

    planned = [p for p in plan_sections(report.info) if all(k in report.intermediates for k in p.keys)]
    assert [type(s) for s in view.sections] == [SECTIONS[p.view] for p in planned]
    declared = {d["kind"] for d in report.info.values()} - set(HEADER_KINDS)
    assert _painted_equals_direct(view, inter, direct_report) == declared
    # the header: the output as the model gave it
    if report.output_info["kind"] == "logits":
        probs = torch.softmax(out[0].float(), -1).numpy()
        np.testing.assert_allclose(view.output.bars.opts["height"], probs, atol=1e-6)
        assert direct.labels[int(probs.argmax())] in view.output.text.text()
    else:
        assert f"«{direct_report.text}»" in view.output.text.text()
    win.close()


@pytest.mark.slow
def test_images_added_on_the_inspect_side_are_predicted_and_looked_at(qtbot, trained, tmp_path: Path) -> None:  # noqa: ANN001
    t = trained["cnn"]
    state = tmp_path / "plain.pt"  # a plain state dict with the arch JSON beside it
    torch.save(load_run(t.bundle).model.state_dict(), state)
    state.with_suffix(".json").write_bytes(t.bundle.with_suffix(".json").read_bytes())
    win = _window(qtbot, state)
    ins = win.inspector
    win.tabs.setCurrentWidget(ins)
    assert ins.add_btn.isVisible() and not ins.compare.paths()
    assert drop_paths(ins, t.images[:2])
    view = _settled(qtbot, win, t.images[0])  # the first new image is looked at right away
    qtbot.waitUntil(lambda: win.panel.table.rowCount() == 2 and not win.panel.busy, timeout=60_000)
    assert [r["path"] for r in win.panel.results] == t.images[:2]
    assert set(ins.strip.paths()) == set(t.images[:2])
    want = probe_run(load_run(state), t.images[0])
    for k, a in want.intermediates.items():
        np.testing.assert_allclose(view._ctx.report.intermediates[k], a, atol=1e-5, err_msg=k)
    win.inspect(t.images[:2])  # two images side by side
    _settled(qtbot, win, t.images[1])
    assert ins.compare.paths() == t.images[:2]
    win.close()


@pytest.mark.slow
def test_a_run_folder_opened_keeps_replay_and_evaluation(qtbot, trained) -> None:  # noqa: ANN001
    t = trained["cnn"]
    win = _window(qtbot, t.run_dir)
    ins = win.inspector
    assert ins.replay_row.isVisibleTo(ins) and all(ins.tabs.isTabVisible(i) for i in range(ins.tabs.count()))
    assert ins.folder_note.text() == "" and ins.run_dir == t.run_dir
    assert ins.epochs == replay.list_epochs(t.run_dir) and ins.evaluation.run is win.run
    want = validation_paths(win.run)
    qtbot.waitUntil(lambda: ins.strip.paths() == want, timeout=60_000)  # its validation images are offered
    evaluated = f"{len(want)} validation images: "  # the evaluation ran, on the same images
    qtbot.waitUntil(lambda: ins.evaluation.status.text().startswith(evaluated), timeout=60_000)
    win.close()
    qtbot.waitUntil(lambda: not ins.jobs.pool.activeThreadCount(), timeout=60_000)


@pytest.mark.slow
def test_a_bundle_opened_after_a_restart_predicts_as_before_the_export(trained) -> None:  # noqa: ANN001
    jobs = [[str(t.bundle), t.images] for t in trained.values()]
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.ui.reopen_helpers", json.dumps(jobs)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    shown = json.loads(proc.stdout.strip().splitlines()[-1])
    for t, after in zip(trained.values(), shown):
        assert [r["path"] for r in after] == t.images
        for a, b in zip(t.before, after):
            assert not same_prediction(a, b), (t.family, same_prediction(a, b))
