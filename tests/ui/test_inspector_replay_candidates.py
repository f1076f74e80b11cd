"""A reopened captioner run replayed at an epoch lists that epoch's beam candidates in the
attention section, and a click on one shows its words and attention, as in the live view."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from explorer.engine import replay
from explorer.ui.inspector import InspectorPanel
from explorer.ui.probe.attention import NOT_KEPT, AttentionSection
from tests.caption_run import train_tiny_captioner
from tests.ui.probe_reports import captioner

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def caption_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_captioner(tmp_path_factory.mktemp("cap"), epochs=2)[0]


def attention_of(panel: InspectorPanel, epoch: int, listed: bool = True) -> AttentionSection | None:
    """The attention section once ``epoch``'s snapshot is drawn (with candidates listed)."""
    views = list(panel.compare.views.values())
    if len(views) != 1 or views[0].waiting or views[0]._ctx is None or views[0]._ctx.report.epoch != epoch:
        return None
    found = [s for s in views[0].sections if isinstance(s, AttentionSection)]
    return found[0] if found and (found[0]._candidates or not listed) else None


def rows_of(cands: list[dict]) -> list[str]:
    return [f"{c['score']:+.3f}   {' '.join(c['words']) or '(nothing)'}" for c in cands]


def test_a_replayed_epoch_lists_its_candidates_and_a_click_shows_one(qtbot, caption_run: Path) -> None:  # noqa: ANN001
    panel = InspectorPanel()
    qtbot.addWidget(panel)
    panel.resize(1400, 6000)  # every section on screen
    panel.show()
    panel.set_run(caption_run)  # reopened: its model, labels and images loaded on a worker thread
    qtbot.waitUntil(  # the newest model's probe of the first validation image, drawn
        lambda: panel.run is not None and any(v.painted for v in panel.compare.views.values()), timeout=60000
    )
    assert panel.epochs == [1, 2]
    snaps = {e: replay.load_snapshot(caption_run, e).reports[0].candidates for e in (1, 2)}
    assert [c["score"] for c in snaps[1]] != [c["score"] for c in snaps[2]]

    panel.slider.setValue(0)  # the slider: epoch 1
    qtbot.waitUntil(lambda: attention_of(panel, 1) is not None, timeout=20000)
    sec = attention_of(panel, 1)
    assert "replaying epoch 1" in panel.epoch_label.text()
    assert sec.beam.isVisibleTo(panel) and sec.candidate_rows == rows_of(snaps[1])

    item = sec.beam.item(1)  # candidate 2, clicked as a user would
    qtbot.mouseClick(sec.beam.viewport(), Qt.MouseButton.LeftButton, pos=sec.beam.visualItemRect(item).center())
    want = snaps[1][1]
    assert sec.candidate == 1
    assert sec.words == want["words"] and [b.text() for b in sec.buttons] == want["words"]
    for i in range(len(want["words"])):
        sec.select(i)
        np.testing.assert_array_equal(sec.shown_map, want["alphas"][i])

    panel.slider.setValue(1)  # epoch 2: its own candidates, still the second one shown
    qtbot.waitUntil(lambda: attention_of(panel, 2) is not None, timeout=20000)
    sec = attention_of(panel, 2)
    assert sec.candidate_rows == rows_of(snaps[2]) and sec.candidate == 1
    np.testing.assert_array_equal(sec.shown_map, snaps[2][1]["alphas"][sec.selected])
    assert sec.beam.currentRow() == 1  # still highlighted
    panel.shutdown()


def test_a_snapshot_without_candidates_says_so_and_the_next_one_lists_them_again(qtbot, tmp_path: Path) -> None:  # noqa: ANN001
    report, labels = captioner()
    replay.write_snapshot(tmp_path, 1, [dataclasses.replace(report, epoch=1, candidates=None)])  # as written before
    replay.write_snapshot(tmp_path, 2, [dataclasses.replace(report, epoch=2)])
    panel = InspectorPanel()
    qtbot.addWidget(panel)
    panel.resize(1400, 6000)
    panel.show()
    panel.set_labels(labels)
    panel.set_run(tmp_path, load_model=False)  # the snapshots only
    assert panel.epochs == [1, 2]
    panel.replay_epoch(1)
    qtbot.waitUntil(lambda: attention_of(panel, 1, listed=False) is not None, timeout=20000)
    sec = attention_of(panel, 1, listed=False)
    assert sec.beam_title.isVisibleTo(panel) and sec.beam_title.text() == NOT_KEPT
    assert not sec.beam.isVisibleTo(panel) and sec.candidate_rows == []
    panel.replay_epoch(2)
    qtbot.waitUntil(lambda: attention_of(panel, 2) is not None, timeout=20000)
    assert sec.beam.isVisibleTo(panel) and sec.candidate_rows == rows_of(report.candidates)
    assert "beam search, 3 candidates" in sec.beam_title.text()
    panel.shutdown()
