"""A probe view builds its plots in its build steps (one per event-loop turn), never in a paint: the
first paint of the CTC output and of a recurrent section finds its plot, colour bar and levels there."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.ui.probe import ProbeView
from explorer.ui.probe.outputs import CTC_LEVELS, OutputPanel
from explorer.ui.probe.paint import heatmap_rgb, levels_for
from explorer.ui.probe.recurrent import RecurrentSection
from explorer.ui.probe.view import ProbeContext
from tests.ui import probe_reports as reports
from tests.ui.helpers import shown

pytestmark = pytest.mark.gui


def test_first_paint_finds_the_ctc_and_recurrent_plots_built(qtbot, monkeypatch) -> None:  # noqa: ANN001
    r, labels = reports.crnn()
    seen: list[tuple] = []
    out_update, rec_update = OutputPanel.update_from, RecurrentSection.update_from

    def output_first(self, ctx) -> None:  # noqa: ANN001
        ctc = self._ctc  # noqa: SLF001
        seen.append(("ctc", ctc is not None and ctc.bar is not None and ctc.isVisibleTo(self), ctc._levels))  # noqa: SLF001
        out_update(self, ctx)

    def recurrent_first(self, ctx) -> None:  # noqa: ANN001
        plot = self.plot
        seen.append(("rec", plot is not None and plot.bar is not None, plot._levels if plot else None))  # noqa: SLF001
        rec_update(self, ctx)

    monkeypatch.setattr(OutputPanel, "update_from", output_first)
    monkeypatch.setattr(RecurrentSection, "update_from", recurrent_first)
    view = shown(qtbot, ProbeView(), (900, 6000), labels)
    view.set_report(r)
    qtbot.waitUntil(lambda: view.painted >= 1 and not view.waiting, timeout=20000)
    assert seen[0] == ("ctc", True, CTC_LEVELS)
    rec = [s for s in seen if s[0] == "rec"]
    assert len(rec) == 2 and all(built for _, built, _ in rec)
    state = r.intermediates[next(k for k, d in r.info.items() if d["kind"] == "recurrent_state")]
    assert rec[0][2] == levels_for(np.asarray(state, np.float32), None)  # set while building
    ctc = view.output.ctc
    assert np.array_equal(ctc.item.image, heatmap_rgb(np.asarray(r.probabilities, np.float32).T, CTC_LEVELS))


def test_a_section_used_without_the_view_builds_itself_when_painted(qtbot) -> None:  # noqa: ANN001
    r, labels = reports.crnn()
    keys = [k for k, d in r.info.items() if d.get("layer") == "rnn.0" and d.get("direction") == "fwd"]
    sec = RecurrentSection(keys, r.info, [r.intermediates[k] for k in keys])
    qtbot.addWidget(sec)
    assert sec.plot is None  # nothing heavy at construction
    sec.update_from(ProbeContext(r, labels))
    a = np.asarray(r.intermediates[keys[0]], np.float32)
    assert sec.plot.bar is not None and np.array_equal(sec.plot.item.image, heatmap_rgb(a.T, levels_for(a, None)))
    panel = OutputPanel()
    qtbot.addWidget(panel)
    assert panel.ctc.bar is not None  # built on demand without build steps


def test_a_view_deleted_with_a_paint_pending_leaves_no_call_behind(qtbot) -> None:  # noqa: ANN001
    """Deferred paints are bound to the view: once Qt deletes it (its window closed), none runs
    against its deleted sections. pytest-qt fails the test on any exception in the event loop; CI
    once failed a later test on this."""
    import shiboken6
    from PySide6.QtGui import QShowEvent
    from PySide6.QtWidgets import QWidget

    r, labels = reports.crnn()
    holder = QWidget()
    view = ProbeView(holder)
    holder.resize(900, 300)  # most sections below the fold: they stay waiting
    holder.show()
    view.resize(900, 300)
    view.set_labels(labels)
    view.set_report(r)
    qtbot.waitUntil(lambda: view.painted >= 1, timeout=20000)
    assert view.waiting
    view.showEvent(QShowEvent())  # queues a paint of the visible ones
    shiboken6.delete(holder)  # the window goes; the Python view object is still referenced here
    qtbot.wait(100)
    assert not shiboken6.isValid(view)
