"""The word / target buttons of the attention and Grad-CAM sections are kept between probes: a new
caption relabels them, fewer words hide the rest, clicks still select by position."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest

from explorer.ui.probe.attention import AttentionSection
from explorer.ui.probe.gradcam import GradCamSection
from explorer.ui.probe.toggles import ToggleGrid
from tests.ui import probe_reports as reports
from tests.ui.test_probe_view import painted, sections_of

pytestmark = pytest.mark.gui


def test_a_toggle_grid_relabels_its_buttons_and_hides_the_surplus(qtbot) -> None:
    chosen: list[int] = []
    grid = ToggleGrid(3, chosen.append)
    qtbot.addWidget(grid)
    grid.show()
    grid.set_items([(f"w{i}", f"tip {i}") for i in range(5)])
    first = list(grid.buttons)
    assert [b.text() for b in first] == ["w0", "w1", "w2", "w3", "w4"] and first[3].toolTip() == "tip 3"
    grid.set_items([("a", "x"), ("b", "y")])
    assert grid.buttons == first[:2] and [b.text() for b in grid.buttons] == ["a", "b"]
    assert all(b.isHidden() for b in first[2:]) and not any(b.isHidden() for b in first[:2])
    grid.buttons[1].click()
    assert chosen == [1] and grid.buttons[1].isChecked()
    grid.check(0)
    assert grid.buttons[0].isChecked() and not grid.buttons[1].isChecked()  # exclusive
    grid.check(7)  # out of range: nothing
    grid.set_items([(f"v{i}", "") for i in range(7)])
    assert grid.buttons[:5] == first and len(grid.buttons) == 7 and not any(b.isHidden() for b in grid.buttons)
    grid.buttons[6].click()
    assert chosen == [1, 6]


def shown(qtbot, view, report) -> None:  # noqa: ANN001
    n = view.painted
    view.set_report(report)
    qtbot.waitUntil(lambda: view.painted > n and not view.waiting, timeout=10000)


def _with_caption(r, words: list[str], scores: list[float]):  # noqa: ANN001, ANN202
    """The captioner report ``r`` with another caption (the maps of its first len(words) words)."""
    n = len(words)
    info = copy.deepcopy(r.info)
    arrays = dict(r.intermediates)
    for k, d in info.items():
        if d["kind"] in ("attention", "gradcam"):
            arrays[k] = arrays[k][:n]
    extra = info["gradcam"]["extra"]
    extra["labels"], extra["positions"], extra["scores"] = list(words), list(range(n)), list(scores)
    return dataclasses.replace(r, tokens=list(words), info=info, intermediates=arrays)


def test_a_new_caption_reuses_the_word_buttons_of_both_sections(qtbot) -> None:
    r, labels = reports.captioner()
    n = r.intermediates["gradcam"].shape[0]
    assert n >= 2
    view = painted(qtbot, r, labels)
    (att,) = sections_of(view, AttentionSection)
    (cam,) = sections_of(view, GradCamSection)
    att_before, cam_before = list(att.buttons), list(cam.buttons)
    short = _with_caption(r, ["red", "disc"][: n - 1] or ["red"], [0.25, 0.5])
    shown(qtbot, view, short)
    m = len(short.tokens)
    assert att.buttons == att_before[:m] and cam.buttons == cam_before[:m]
    assert [b.text() for b in att.buttons] == short.tokens
    assert all(b.isHidden() for b in att_before[m:] + cam_before[m:])
    assert "score 0.25" in cam.buttons[0].toolTip()  # this probe's score, not the first one's
    again = _with_caption(r, short.tokens, [0.75, 0.125])  # same words, new scores
    shown(qtbot, view, again)
    assert "score 0.75" in cam.buttons[0].toolTip()
    cam.buttons[m - 1].click()
    assert cam.selected == m - 1 and np.array_equal(cam.shown_map, again.intermediates["gradcam"][m - 1])
