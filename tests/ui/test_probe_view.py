"""The live probe view draws what each model declares, by kind, from real forward passes."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from explorer.engine import ProbeReport
from explorer.engine.tasks.caption import PROBE_BEAM
from explorer.ui.probe import ProbeView
from explorer.ui.probe.attention import PLAY_MS, AttentionSection, overlay
from explorer.ui.probe.feature_maps import FeatureMapSection, stretched_rgb
from explorer.ui.probe.outputs import ctc_class_names
from explorer.ui.probe.paint import heatmap_rgb, levels_for
from explorer.ui.probe.recurrent import RecurrentSection
from explorer.ui.probe.spatial import SpatialStateSection
from tests.ui import probe_reports as reports
from tests.ui.probe_reports import CHARSET, noise

pytestmark = pytest.mark.gui


def painted(qtbot, report: ProbeReport, labels: list[str]) -> ProbeView:  # noqa: ANN001
    view = ProbeView()
    qtbot.addWidget(view)
    view.resize(900, 6000)  # every section on screen (the view paints only what can be seen)
    view.show()
    view.set_labels(labels)
    view.set_report(report)
    qtbot.waitUntil(lambda: view.painted >= 1 and not view.waiting, timeout=10000)
    return view


def sections_of(view: ProbeView, cls: type) -> list:
    return [s for s in view.sections if isinstance(s, cls)]


def test_cnn_feature_maps_are_the_activations(qtbot) -> None:
    r, labels = reports.cnn()
    view = painted(qtbot, r, labels)
    fm = sections_of(view, FeatureMapSection)
    declared = [k for k, d in r.info.items() if d["kind"] == "feature_map"]
    assert [s.keys[0] for s in fm] == declared and declared
    for s in fm:
        a = r.intermediates[s.keys[0]]
        expected = stretched_rgb(a[: s.grid.n])
        assert len(s.grid.tiles) == len(expected) and all(np.array_equal(t, e) for t, e in zip(s.grid.tiles, expected))
        assert s.title.text() == f"<b>{r.info[s.keys[0]]['title']}</b>"
    assert view.output.bars_plot.isVisible() and "the model says" in view.output.text.text()


def test_every_lstm_gate_of_every_layer_and_direction_is_selectable(qtbot) -> None:
    r, labels = reports.rnn()
    view = painted(qtbot, r, labels)
    rec = sections_of(view, RecurrentSection)
    recurrent = {k for k, d in r.info.items() if d["kind"] in ("recurrent_state", "gate", "cell_state")}
    assert {k for s in rec for k in s.keys} == recurrent
    assert {(r.info[s.keys[0]]["layer"], r.info[s.keys[0]]["direction"]) for s in rec} == {
        (d["layer"], d["direction"]) for d in (r.info[k] for k in recurrent)
    }
    assert len(rec) == 4  # 2 layers x 2 directions
    for s in rec:
        kinds = [r.info[k]["kind"] for k in s.keys]
        assert kinds.count("gate") == 4 and kinds.count("cell_state") == 1 and kinds.count("recurrent_state") == 1
        for k in s.keys:
            s.buttons[k].click()
            a = r.intermediates[k]
            assert s.shown is not None and np.array_equal(s.shown, a)
            levels = levels_for(a, r.info[k].get("range"))
            assert np.array_equal(s.plot.item.image, heatmap_rgb(a.T, levels))
            assert r.info[k]["title"] in s.title.text()
            if r.info[k]["kind"] == "gate" and r.info[k].get("range") == [0.0, 1.0]:
                assert levels == (0.0, 1.0)


def test_crnn_ctc_frames_are_labelled_by_characters_and_the_text_is_shown(qtbot) -> None:
    r, labels = reports.crnn()
    assert r.output_info["kind"] == "ctc_frames"
    view = painted(qtbot, r, labels)
    ctc = view.output.ctc
    assert ctc.isVisible() and not view.output.bars_plot.isVisible()
    ticks = [t for t, _ in ctc.plot.getAxis("left")._tickLevels[0]]  # noqa: SLF001
    names = [n for _, n in ctc.plot.getAxis("left")._tickLevels[0]]  # noqa: SLF001
    assert names == ctc_class_names(len(CHARSET) + 1, CHARSET) == ["blank", *CHARSET]
    assert ticks == [i + 0.5 for i in range(len(names))]
    assert np.array_equal(ctc.item.image, heatmap_rgb(np.asarray(r.probabilities, np.float32).T, (0.0, 1.0)))
    assert view.output.text.isVisible() and "3141" in view.output.text.text()
    assert sections_of(view, RecurrentSection)  # the column reader's states and gates


def test_convlstm_spatial_states_and_gates_show_one_step_with_a_slider(qtbot) -> None:
    r, labels = reports.conv_rnn()
    view = painted(qtbot, r, labels)
    sp = sections_of(view, SpatialStateSection)
    assert len(sp) == 1  # one layer: its state, gates and cell state share a section
    (s,) = sp
    assert set(s.keys) == {k for k, d in r.info.items() if d["kind"] == "spatial_state"}
    assert len(s.keys) == 6  # hidden state, 4 gates, cell state
    a = r.intermediates[s.keys[0]]
    assert s.slider.value() == s.step == a.shape[0] - 1  # the last step by default
    s.slider.setValue(0)
    for k in s.keys:
        s.buttons[k].click()
        a = r.intermediates[k]
        assert s.shown is not None and np.array_equal(s.shown, a[0, : s.grid.n])
        expected = heatmap_rgb(a[0, : s.grid.n], levels_for(a, r.info[k].get("range")))
        assert len(s.grid.tiles) == len(expected) and all(np.array_equal(t, e) for t, e in zip(s.grid.tiles, expected))


def test_captioner_attention_is_drawn_per_word_over_the_image_never_as_a_conv_layer(qtbot) -> None:
    r, labels = reports.captioner()
    words = r.tokens
    assert words  # the seeded tiny captioner says something
    view = painted(qtbot, r, labels)
    att_keys = {k for k, d in r.info.items() if d["kind"] == "attention"}
    assert att_keys and not any(s.keys[0] in att_keys for s in sections_of(view, FeatureMapSection))
    (att,) = sections_of(view, AttentionSection)
    maps = r.intermediates[att.keys[0]]
    assert [b.text() for b in att.buttons] == words and len(words) == maps.shape[0]
    grid = tuple(r.info[att.keys[0]]["grid"])
    for i in range(len(words)):
        att.buttons[i].click()
        assert att.shown_map is not None and np.array_equal(att.shown_map, maps[i])
        assert np.array_equal(att.item.image, overlay(r.image, maps[i], grid)[0])
    assert view.output.text.isVisible() and r.text in view.output.text.text()
    assert sections_of(view, RecurrentSection)  # the decoder's states reach the app


def test_beam_candidates_are_listed_with_their_scores_and_show_their_words_attention(qtbot) -> None:
    r, labels = reports.captioner()
    assert r.candidates and len(r.candidates) == PROBE_BEAM
    view = painted(qtbot, r, labels)
    (att,) = sections_of(view, AttentionSection)
    assert att.beam.isVisible() and len(att.candidate_rows) == PROBE_BEAM
    for row, c in zip(att.candidate_rows, r.candidates):
        assert row.startswith(f"{c['score']:+.3f}") and " ".join(c["words"]) in row
    k = len(r.candidates) - 1
    att.beam.itemClicked.emit(att.beam.item(k))
    c = r.candidates[k]
    assert att.candidate == k and [b.text() for b in att.buttons] == c["words"]
    if c["words"]:
        assert np.array_equal(att.shown_map, c["alphas"][0])
    att.beam.itemClicked.emit(att.beam.item(att.beam.count() - 1))  # the forward pass again
    assert att.candidate is None and [b.text() for b in att.buttons] == r.tokens


def test_play_steps_through_the_words_and_stops_at_the_last(qtbot) -> None:
    r, labels = reports.captioner()
    view = painted(qtbot, r, labels)
    (att,) = sections_of(view, AttentionSection)
    assert len(att.words) >= 2
    att.select(0)
    att.play_button.click()
    assert att.play_button.isChecked()
    qtbot.waitUntil(lambda: att.selected == 1, timeout=3 * PLAY_MS)
    maps = r.intermediates[att.keys[0]]
    assert np.array_equal(att.shown_map, maps[1]) and att.buttons[1].isChecked()
    att._play_timer.setInterval(20)  # the rest of the words quickly
    qtbot.waitUntil(lambda: not att.play_button.isChecked(), timeout=10000)
    assert att.selected == len(att.words) - 1


def test_a_report_is_drawn_by_its_declared_kind_not_by_its_key_names(qtbot) -> None:
    """Keys named like conv layers, arrays shaped like feature maps, declared as something else."""
    rng = np.random.default_rng(1)
    gate = rng.random((5, 7)).astype(np.float32)
    att = rng.random((3, 2, 4)).astype(np.float32)
    r = ProbeReport(
        epoch=1,
        global_step=1,
        path="p.png",
        image=noise(16, 16),
        probabilities=np.array([0.2, 0.8]),
        intermediates={"features.0": att, "conv.1": gate, "rnn.0:fwd": rng.random((2, 4, 4)).astype(np.float32)},
        info={
            "features.0": {"kind": "attention", "axes": ["token", "y", "x"], "layer": "features.0", "title": "look",
                           "grid": [2, 4], "range": [0.0, 1.0]},
            "conv.1": {"kind": "gate", "axes": ["time", "unit"], "layer": "conv", "title": "conv: forget gate",
                       "direction": "fwd", "gate": "forget", "range": [0.0, 1.0]},
            "rnn.0:fwd": {"kind": "feature_map", "axes": ["channel", "y", "x"], "layer": "rnn.0", "title": "maps"},
        },
        output_info={"kind": "logits", "axes": ["class"], "layer": "head", "title": "classes"},
        tokens=["one", "two", "three"],
    )  # fmt: skip
    view = painted(qtbot, r, ["a", "b"])
    kinds = {s.keys[0]: type(s) for s in view.sections}
    assert kinds == {"features.0": AttentionSection, "conv.1": RecurrentSection, "rnn.0:fwd": FeatureMapSection}
    (rec,) = sections_of(view, RecurrentSection)
    assert np.array_equal(rec.plot.item.image, heatmap_rgb(gate.T, (0.0, 1.0)))


def test_undeclared_intermediates_are_not_guessed(qtbot) -> None:
    r = ProbeReport(
        epoch=1,
        global_step=1,
        path="p.png",
        image=noise(8, 8),
        probabilities=np.array([1.0]),
        intermediates={"features.0": np.zeros((2, 4, 4), np.float32)},
    )
    view = painted(qtbot, r, ["a"])
    assert view.sections == [] and view.note.isVisible()


def test_the_view_keeps_its_items_while_the_model_stays_the_same(qtbot) -> None:
    r, labels = reports.cnn()
    view = painted(qtbot, r, labels)
    items = [id(getattr(getattr(s, "grid", None), "item", None)) for s in view.sections]
    other = {k: a * 2.0 for k, a in r.intermediates.items()}
    view.set_report(dataclasses.replace(r, intermediates=other, global_step=4))
    qtbot.waitUntil(lambda: view.painted >= 2, timeout=5000)
    assert [id(getattr(getattr(s, "grid", None), "item", None)) for s in view.sections] == items
    assert isinstance(view.caption, QLabel)


def test_a_channel_grid_is_one_atlas_image_and_a_click_enlarges_the_tile_under_it(qtbot) -> None:
    r, labels = reports.cnn()
    view = painted(qtbot, r, labels)
    s = sections_of(view, FeatureMapSection)[-1]
    g = s.grid
    h, w = g.tiles[0].shape[:2]
    img = g.item.image
    assert [i for i in g.vb.addedItems if hasattr(i, "image")] == [g.item]  # one image for every tile
    rows = (g.n + g.cols - 1) // g.cols
    assert img.shape == (rows * (h + g.gap) - g.gap, g.cols * (w + g.gap) - g.gap, 3)
    assert (img[h : h + g.gap] == 255).all() and (img[:, w : w + g.gap] == 255).all()  # white gaps
    assert g.tile_at(w + 0.5 * g.gap, 1) is None  # in a gap
    k = g.cols + 2  # second row, third column
    assert g.tile_at(2 * (w + g.gap) + w / 2, (h + g.gap) + h / 2) == k
    scene = g.vb.mapViewToScene(pg.Point(2 * (w + g.gap) + w / 2, (h + g.gap) + h / 2))
    qtbot.mouseClick(g.viewport(), Qt.MouseButton.LeftButton, pos=g.mapFromScene(scene))
    qtbot.waitUntil(lambda: s.enlarged.isVisible(), timeout=3000)
    assert s.enlarged_index == k and f"channel {k}" in s.enlarged_label.text()
    assert np.array_equal(s.enlarged.item.image, stretched_rgb(r.intermediates[s.keys[0]])[k])
    s.enlarge(k)  # the same tile again: closed
    assert not s.enlarged.isVisible() and s.enlarged_index is None


def test_the_words_come_from_the_declared_tokens_when_the_report_has_none(qtbot) -> None:
    r, labels = reports.captioner()
    view = painted(qtbot, dataclasses.replace(r, tokens=None), labels)
    (att,) = sections_of(view, AttentionSection)
    assert [b.text() for b in att.buttons] == r.tokens


def test_the_step_slider_follows_the_last_step_until_the_user_moves_it(qtbot) -> None:
    r, labels = reports.conv_rnn()
    view = painted(qtbot, r, labels)
    (s,) = sections_of(view, SpatialStateSection)
    last = s.slider.maximum()
    s.slider.setValue(1)
    view.set_report(dataclasses.replace(r, global_step=9))
    qtbot.waitUntil(lambda: view.painted >= 2 and not view.waiting, timeout=5000)
    assert s.slider.value() == s.step == 1  # kept
    s.slider.setValue(last)
    view.set_report(dataclasses.replace(r, global_step=10))
    qtbot.waitUntil(lambda: view.painted >= 3 and not view.waiting, timeout=5000)
    assert s.slider.value() == last


def test_reports_are_coalesced_to_the_newest(qtbot) -> None:
    r, labels = reports.cnn()
    view = painted(qtbot, r, labels)
    for step in range(5, 10):
        view.set_report(dataclasses.replace(r, global_step=step))
    qtbot.waitUntil(lambda: view.painted >= 2, timeout=5000)
    qtbot.wait(450)
    assert view.painted == 2 and "step 9" in view.caption.text()


@pytest.mark.parametrize("family", sorted(reports.REPORTS))
def test_every_declared_entry_of_every_family_reaches_the_screen(qtbot, family: str) -> None:
    r, labels = reports.REPORTS[family]()
    view = painted(qtbot, r, labels)
    drawn = {k for s in view.sections for k in s.keys}
    header = {k for k, d in r.info.items() if d["kind"] in ("tokens", "logits", "token_logits")}
    assert drawn | header == set(r.info) and not drawn & header
    assert view.output.where.text().startswith("<b>probe.png")


def test_sections_out_of_sight_are_painted_when_scrolled_to(qtbot) -> None:
    r, labels = reports.crnn()
    view = ProbeView()
    qtbot.addWidget(view)
    view.resize(700, 400)
    view.show()
    view.set_labels(labels)
    view.set_report(r)
    qtbot.waitUntil(lambda: view.painted >= 1, timeout=10000)
    qtbot.wait(50)
    last = view.sections[-1]
    assert last in view.waiting and last.shown is None  # below the fold: not painted yet
    view.scroll.ensureWidgetVisible(last)
    qtbot.waitUntil(lambda: last not in view.waiting, timeout=5000)
    assert np.array_equal(last.shown, r.intermediates[last.selected])


@pytest.mark.parametrize("family", ["cnn", "crnn", "captioner"])
def test_gradcam_paints_each_map_of_the_probe_with_its_label(qtbot, family: str) -> None:
    from explorer.ui.probe.gradcam import GradCamSection

    r, labels = reports.REPORTS[family]()
    view = painted(qtbot, r, labels)
    (sec,) = sections_of(view, GradCamSection)
    maps, extra = r.intermediates["gradcam"], r.info["gradcam"]["extra"]
    assert len(sec.buttons) == maps.shape[0] == len(extra["labels"])
    for i in range(maps.shape[0]):
        sec.select(i)
        assert np.array_equal(sec.shown_map, maps[i])
        assert str(extra["labels"][i]) in sec.buttons[i].text()
    assert sec.cam_view.bar.isVisible()
    att = [k for k, d in r.info.items() if d["kind"] == "attention"]
    if att:  # the captioner: the model's own attention for the same word, beside
        pos = extra["positions"][sec.selected]
        assert np.array_equal(sec.shown_attention, r.intermediates[att[0]][pos]) and sec.att_view.isVisible()
    else:
        assert sec.shown_attention is None


def test_a_ctc_characters_gradcam_outlines_the_columns_its_frames_read(qtbot) -> None:
    from explorer.ui.probe.gradcam import GradCamSection

    r, labels = reports.crnn()
    view = painted(qtbot, r, labels)
    (sec,) = sections_of(view, GradCamSection)
    frames = r.info["gradcam"]["extra"]["frames"]
    regions = next(d["regions"] for d in r.info.values() if d["kind"] == "recurrent_state")
    assert len(regions) == r.probabilities.shape[0] and frames
    for i, (f0, f1) in enumerate(frames):
        sec.select(i)
        boxes = regions[f0:f1]
        want = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
        rect = sec.cam_view.box.rect()
        assert sec.shown_box == want and sec.cam_view.box.isVisible()
        assert (rect.x(), rect.y(), rect.width(), rect.height()) == (
            want[1],
            want[0],
            want[3] - want[1],
            want[2] - want[0],
        )
        assert f"columns {want[1]}–{want[3] - 1}" in sec.note.text() and "can spread past its box" in sec.note.text()
    r, labels = reports.cnn()  # a class's map: no frames, no box
    view = painted(qtbot, r, labels)
    (sec,) = sections_of(view, GradCamSection)
    assert sec.shown_box is None and not sec.cam_view.box.isVisible()


def test_gradcam_opacity_slider_blends_the_map_over_the_image(qtbot) -> None:
    from explorer.ui.probe.gradcam import GradCamSection

    r, labels = reports.cnn()
    view = painted(qtbot, r, labels)
    (sec,) = sections_of(view, GradCamSection)
    sec.opacity.setValue(0)
    img = sec.cam_view.item.image
    assert np.array_equal(img[..., 0], r.image[..., 0])  # opacity 0: the image itself
    sec.opacity.setValue(100)
    assert not np.array_equal(sec.cam_view.item.image, img)


@pytest.mark.parametrize("family", ["rnn", "crnn", "patch_rnn"])
def test_hovering_a_time_step_outlines_the_region_it_read(qtbot, family: str) -> None:
    r, labels = reports.REPORTS[family]()
    view = painted(qtbot, r, labels)
    sec = sections_of(view, RecurrentSection)[0]
    regions = r.info[sec.selected]["regions"]
    for t in (0, len(regions) - 1):
        sec.hover_step(t)
        assert view.highlighted == tuple(regions[t]) and view.region.isVisible()
        rect = view.region.rect()
        y0, x0, y1, x1 = regions[t]
        assert (rect.x(), rect.y(), rect.width(), rect.height()) == (x0, y0, x1 - x0, y1 - y0)
    sec.hover_step(None)
    assert view.highlighted is None and not view.region.isVisible()


def test_the_paint_meter_reads_the_gui_threads_cpu_once_for_views_drawing_together(qtbot) -> None:
    import hashlib

    from explorer.ui.probe.meter import paint_meter

    costs: list[float] = []
    meter = paint_meter()
    add = costs.append
    meter.cost.connect(add)
    try:
        meter.open()
        t = time.thread_time()
        while time.thread_time() - t < 0.03:  # 30 ms of this thread's CPU
            hashlib.sha256(b"x" * 4096).digest()
        meter.open()  # a second view drawing while the reading is open: the same reading
        qtbot.waitUntil(lambda: bool(costs), timeout=2000)
        qtbot.wait(20)
    finally:
        meter.cost.disconnect(add)
    assert len(costs) == 1 and 0.03 <= costs[0] < 1.0
