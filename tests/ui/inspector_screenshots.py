"""Screenshots of the inspector (not a test; run by hand, ideally under X):

    xvfb-run -s "-screen 0 1400x900x24" .venv/bin/python tests/ui/inspector_screenshots.py [OUT_DIR] [RUN_DIR]

Paints the probe reports of small real models (tests/ui/probe_reports.py) in the inspector: the
Grad-CAM view per class / character / word (the captioner's beside its own attention), a hovered
time step outlined on the image, two pinned images side by side, the evaluation tab (from the
evaluation builders) and runs side by side. With RUN_DIR (a trained run folder), the inspector
opens it as a user would (its validation images, probed by the run's model, and its evaluation).
Writes ``inspector_*.png`` to OUT_DIR (default /tmp).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ["MODEL_EXPLORER_HOME"] = str(Path(tempfile.mkdtemp(prefix="me-inspector-shots-")) / "home")

import numpy as np  # noqa: E402
from PySide6.QtCore import QEventLoop, QTimer  # noqa: E402

import explorer.ui  # noqa: E402,F401  (Qt-binding work-around first)
from explorer.engine.evaluation import class_details  # noqa: E402
from explorer.ui.app import ensure_app  # noqa: E402
from explorer.ui.inspector import InspectorPanel  # noqa: E402
from explorer.ui.probe.gradcam import GradCamSection  # noqa: E402
from explorer.ui.probe.recurrent import RecurrentSection  # noqa: E402
from tests.ui.probe_reports import REPORTS  # noqa: E402


def pump(ms: int) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def panel_with(family: str, copies: int = 1) -> InspectorPanel:
    r, labels = REPORTS[family]()
    panel = InspectorPanel()
    panel.resize(1400, 900)
    panel.show()
    panel.set_labels(labels)
    panel.compare.set_paths([f"{family}_{i}.png" for i in range(copies)])
    for i in range(copies):
        img = np.roll(r.image, 4 * i, axis=1)
        panel.compare.show_report(dataclasses.replace(r, path=f"{family}_{i}.png", image=img))
    pump(2500)
    return panel


def scroll_to(panel: InspectorPanel, cls: type) -> object:
    view = next(iter(panel.compare.views.values()))
    sec = next(s for s in view.sections if isinstance(s, cls))
    view.scroll.ensureWidgetVisible(sec, 0, 0)
    pump(400)
    return sec


def shots(out: Path) -> None:
    for family in ("cnn", "crnn", "captioner"):
        panel = panel_with(family)
        sec = scroll_to(panel, GradCamSection)
        if family != "cnn":
            sec.select(min(1, len(sec.buttons) - 1))
            pump(200)
        panel.grab().save(str(out / f"inspector_gradcam_{family}.png"))
        panel.close()
    panel = panel_with("rnn")
    sec = scroll_to(panel, RecurrentSection)
    sec.hover_step(5)
    pump(200)
    next(iter(panel.compare.views.values())).scroll.verticalScrollBar().setValue(0)
    pump(300)
    panel.grab().save(str(out / "inspector_hover_step.png"))
    panel.close()
    panel = panel_with("conv_rnn", copies=2)
    panel.grab().save(str(out / "inspector_pinned_side_by_side.png"))
    panel.close()
    evaluation(out)


def evaluation(out: Path) -> None:
    r, labels = REPORTS["cnn"]()
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 3, 120)
    y_pred = np.where(rng.random(120) < 0.7, y_true, rng.integers(0, 3, 120))
    paths = [f"img_{i}.png" for i in range(120)]
    det = class_details(paths, y_true, y_pred, rng.random(120), labels)
    panel = InspectorPanel()
    panel.resize(1400, 900)
    panel.show()
    panel.tabs.setCurrentWidget(panel.evaluation)
    panel.evaluation._on_done(({"details": det, "report": {"accuracy": 0.8}, "paths": paths}, []))
    panel.evaluation.show_cell(0, 1)
    pump(800)
    panel.grab().save(str(out / "inspector_evaluation.png"))
    panel.close()


def opened_run(out: Path, run_dir: Path) -> None:
    panel = InspectorPanel()
    panel.resize(1400, 900)
    panel.show()
    panel.set_run(run_dir)
    pump(12000)
    panel.grab().save(str(out / "inspector_reopened_run.png"))
    panel.tabs.setCurrentWidget(panel.evaluation)
    pump(8000)
    panel.evaluation.show_cell(0, 1)
    pump(1500)
    panel.grab().save(str(out / "inspector_reopened_evaluation.png"))
    panel.tabs.setCurrentWidget(panel.runs_compare)
    pump(300)
    panel.grab().save(str(out / "inspector_runs_side_by_side.png"))
    if panel.epochs:
        panel.tabs.setCurrentWidget(panel.compare)
        panel.replay_epoch(panel.epochs[0])
        pump(8000)
        panel.grab().save(str(out / "inspector_replay.png"))
    panel.shutdown()
    panel.close()


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/tmp")
    out.mkdir(parents=True, exist_ok=True)
    app = ensure_app()
    shots(out)
    if len(sys.argv) > 2:
        opened_run(out, Path(sys.argv[2]))
    print("written to", out)
