"""Screenshots of every inspector view of TRAINED models, reopened and replayed, and of the live
view while the real worker trains (not a test; run by hand under X):

    xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python tests/ui/studio_screenshots.py OUT_DIR RUNS_DIR

RUNS_DIR holds run folders named by family (``cnn``, ``crnn``, ``conv_rnn``, ``captioner``), trained
with probe snapshots, e.g. ``model-explorer train sample:shapes --arch cnn --epochs 4 --config
probe.json --out RUNS_DIR/cnn`` with ``{"train": {"probe_interval": 3}}`` in probe.json. Each run
is opened in the inspector as a user would (its first validation image probed by its model); every
section is scrolled to and grabbed (``studio_<family>_<view>.png``), then the first epoch's snapshot
is replayed (``studio_<family>_replay_<view>.png``). ``studio_live_cnn.png``: the inspector
following a cnn that the real worker trains on ``sample:shapes``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ["MODEL_EXPLORER_HOME"] = str(Path(tempfile.mkdtemp(prefix="me-studio-shots-")) / "home")

from PySide6.QtCore import QEventLoop, QTimer  # noqa: E402

import explorer.ui  # noqa: E402,F401  (Qt-binding work-around first)
from explorer.ui.app import ensure_app  # noqa: E402
from explorer.ui.bench import _kind_of  # noqa: E402
from explorer.ui.inspector import InspectorPanel  # noqa: E402
from explorer.ui.probe.attention import AttentionSection  # noqa: E402
from explorer.ui.probe.gradcam import GradCamSection  # noqa: E402
from explorer.ui.probe.recurrent import RecurrentSection  # noqa: E402
from explorer.ui.probe.spatial import SpatialStateSection  # noqa: E402
from tests.ui.screenshots import painted_view  # noqa: E402

FAMILIES = ("cnn", "crnn", "conv_rnn", "captioner")


def pump(ms: int) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def wait_for(cond, timeout_s: float) -> bool:  # noqa: ANN001
    end = time.time() + timeout_s
    while time.time() < end:
        if cond():
            return True
        pump(100)
    return False


def grab_sections(panel: InspectorPanel, out: Path, prefix: str) -> None:
    view = painted_view(panel)
    seen: set[str] = set()
    for sec in view.sections:
        kind = _kind_of(sec)
        if kind is None or kind in seen:
            continue
        seen.add(kind)
        view.scroll.verticalScrollBar().setValue(sec.y())  # the section at the top
        pump(300)
        if isinstance(sec, GradCamSection) and len(sec.buttons) > 1 and not view.output.bars_plot.isVisible():
            sec.select(1)  # the second character / word (a classifier keeps its predicted class)
        if kind in ("feature_maps", "filters"):
            sec.enlarge(3)  # as a click on the fourth tile
        if isinstance(sec, AttentionSection) and len(sec.words) > 1:
            sec.select(1)
        if isinstance(sec, SpatialStateSection):
            sec.slider.setValue(sec.slider.maximum() // 2)
        pump(400)
        panel.grab().save(str(out / f"{prefix}_{kind}.png"))
        if isinstance(sec, (RecurrentSection, SpatialStateSection)) and len(sec.keys) > 1:
            sec.select(sec.keys[1])  # the first gate
            pump(400)
            panel.grab().save(str(out / f"{prefix}_gates.png"))
            sec.select(sec.keys[0])
    view.scroll.verticalScrollBar().setValue(0)
    pump(300)
    panel.grab().save(str(out / f"{prefix}_top.png"))
    print(prefix, sorted(seen))


def opened(out: Path, family: str, run_dir: Path) -> None:
    panel = InspectorPanel()
    panel.resize(1400, 900)
    panel.show()
    panel.set_run(run_dir)
    if not wait_for(lambda: painted_view(panel) is not None and panel.epochs, 120):
        print(f"{family}: nothing painted")
        return
    pump(800)
    grab_sections(panel, out, f"studio_{family}")
    first = panel.epochs[0]
    panel.replay_epoch(first)
    n = painted_view(panel).painted
    if wait_for(lambda: (v := painted_view(panel)) is not None and v.painted > n, 60):
        pump(800)
        grab_sections(panel, out, f"studio_{family}_replay")
    panel.shutdown()
    panel.close()


def live(out: Path) -> None:
    from explorer.engine import DataReady
    from explorer.ui.bench import _config
    from explorer.ui.worker import TrainingController

    controller = TrainingController()
    panel = InspectorPanel(controller)
    panel.resize(1400, 900)
    panel.show()
    controller.probe.connect(panel.show_report)
    controller.started.connect(lambda d: panel.set_run(d, load_model=False))
    controller.event.connect(lambda e: panel.set_labels(e.labels) if isinstance(e, DataReady) else None)
    cfg = _config("sample:shapes", "cnn", 3, None, "cpu")
    controller.start(cfg, tempfile.mkdtemp(prefix="me-studio-live-") + "/run")
    if wait_for(lambda: painted_view(panel, 6) is not None, 900):
        pump(500)
        panel.grab().save(str(out / "studio_live_cnn.png"))
        view = painted_view(panel)
        sec = next(s for s in view.sections if isinstance(s, GradCamSection))
        view.scroll.ensureWidgetVisible(sec, 0, 0)
        pump(1500)
        panel.grab().save(str(out / "studio_live_cnn_gradcam.png"))
    controller.shutdown()
    panel.shutdown()
    panel.close()


if __name__ == "__main__":
    out = Path(sys.argv[1])
    runs = Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    app = ensure_app()
    only = sys.argv[3:] or [*FAMILIES, "live"]
    for family in FAMILIES:
        if family in only and (runs / family).is_dir():
            opened(out, family, runs / family)
    if "live" in only:
        live(out)
    print("written to", out)
