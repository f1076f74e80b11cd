"""``bench ui``'s paint timing names every view kind a model has."""

from __future__ import annotations

import pytest

from explorer.ui.bench import VIEW_KINDS, _scroll_sections, _switch_selectors, _timed_paints, declared_kinds
from explorer.ui.inspector import InspectorPanel
from tests.ui import probe_reports as reports
from tests.ui.helpers import shown

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
    panel = shown(qtbot, InspectorPanel(), (1400, 8000), labels)
    times: dict[str, list[float]] = {}
    with _timed_paints(times):
        panel.compare.show_report(r, add=True)
        view = panel.compare.views[r.path]
        qtbot.waitUntil(lambda: view.painted >= 1 and not view.waiting, timeout=20000)
        for _ in range(6):
            _switch_selectors(panel)
    assert kinds <= set(times) <= set(VIEW_KINDS)
    panel.shutdown()


@pytest.mark.parametrize(
    ("family", "declared"),
    [
        ("cnn", {"feature_maps", "gradcam"}),
        ("crnn", {"feature_maps", "hidden_states", "gates", "ctc", "gradcam"}),
        ("captioner", {"feature_maps", "attention", "hidden_states", "gates", "gradcam"}),
    ],
)
def test_declared_kinds_follow_the_declaration(family: str, declared: set[str]) -> None:
    r, _ = reports.REPORTS[family]()
    assert declared_kinds(r) == declared


def test_scrolling_visits_every_section_so_every_declared_kind_is_painted(qtbot) -> None:  # noqa: ANN001
    """The captioner's decoder states and gates sit below the fold of an inspector of the bench's
    size: they are painted only once the bench scrolls to them."""
    r, labels = reports.captioner()
    panel = shown(qtbot, InspectorPanel(), (1400, 900), labels)
    times: dict[str, list[float]] = {}
    with _timed_paints(times):
        panel.compare.show_report(r, add=True)
        view = panel.compare.views[r.path]
        qtbot.waitUntil(lambda: view.painted >= 1 and len(view.sections) == 7, timeout=20000)
        qtbot.wait(100)
        below = [s for s in view.sections if s.visibleRegion().isEmpty()]
        assert below and "hidden_states" not in times and "gates" not in times  # below the fold
        state: dict[str, int] = {}
        visited = []
        for _ in range(len(view.sections)):
            visited += _scroll_sections(panel, state)
            qtbot.wait(20)
            _switch_selectors(panel)
        assert visited == view.sections  # each section once, in order
        assert not view.waiting  # every section has painted the report
    assert {"hidden_states", "gates"} <= set(times)
    assert declared_kinds(r) <= set(times)
    panel.shutdown()
