"""``bench ui``'s paint timing names every view kind a model has."""

from __future__ import annotations

import pytest

from explorer.ui.bench import VIEW_KINDS, _switch_selectors, _timed_paints
from explorer.ui.inspector import InspectorPanel
from tests.ui import probe_reports as reports

pytestmark = pytest.mark.gui


@pytest.mark.parametrize(
    ("family", "kinds"),
    [
        ("cnn", {"feature_maps", "gradcam"}),
        ("crnn", {"feature_maps", "hidden_states", "gates", "ctc", "gradcam"}),
        ("conv_rnn", {"spatial_states", "gates"}),
        ("captioner", {"attention", "gradcam"}),
    ],
)
def test_timed_paints_name_each_kind_painted(qtbot, family: str, kinds: set[str]) -> None:  # noqa: ANN001
    r, labels = reports.REPORTS[family]()
    panel = InspectorPanel()
    qtbot.addWidget(panel)
    panel.resize(1400, 8000)
    panel.show()
    panel.set_labels(labels)
    times: dict[str, list[float]] = {}
    with _timed_paints(times):
        panel.compare.show_report(r, add=True)
        view = panel.compare.views[r.path]
        qtbot.waitUntil(lambda: view.painted >= 1 and not view.waiting, timeout=20000)
        for _ in range(6):
            _switch_selectors(panel)
    assert kinds <= set(times) <= set(VIEW_KINDS)
    panel.shutdown()
