"""Screenshots of TRAINED crnn, conv_rnn and captioner runs, live and replayed (not a test; run by
hand under X):

    xvfb-run -a -s "-screen 0 1600x1400x24" .venv/bin/python tests/ui/trained_screenshots.py \\
        OUT_DIR crnn=RUNS/crnn conv_rnn=RUNS/conv_rnn captioner=RUNS/captioner [--live-only]

Each ``FAMILY=RUN_DIR``:

* RUN_DIR missing: the CLI trains it (``TRAIN[FAMILY]``: ``model-explorer train DATA --arch FAMILY
  --epochs N --device cpu --config probe.json --out RUN_DIR --quiet``, with ``{"train":
  {"probe_interval": 3}}`` so the live view gets probes and every epoch keeps its snapshot for the
  replay), in a separate process, and the app follows it (File > Follow Run, as ``gui --follow``);
  RUN_DIR being written by a training started elsewhere: the app follows that one. Mid-training
  (from the middle epoch on, after a live probe was painted) the training screen is grabbed:
  ``trained_<family>_live.png`` (curves, progress, the followed run's own settings, the live view).
  With ``--live-only`` a training started here is stopped after that and not replayed.
* RUN_DIR finished (now or before): the inspector opens it as a user would (File > Open Model on
  the run folder: its validation images, its model, its probe snapshots), replays the first epoch
  and the last one and grabs the top of the view (the image, the decoded text / caption / class,
  the CTC frames, Grad-CAM): ``trained_<family>_replay_epoch<N>.png``; then, at the last epoch,
  the family's inner section (``INSIDE``: the crnn's LSTM states with a gate, the ConvLSTM's
  spatial states with the step slider at the middle, the captioner's attention on its second word
  with Grad-CAM of that word beside it): ``trained_<family>_replay_inside.png``.

Trained and measured this way for the README (2 shared CPU cores): the commands in ``TRAIN``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ["MODEL_EXPLORER_HOME"] = str(Path(tempfile.mkdtemp(prefix="me-trained-shots-")) / "home")

import explorer.ui  # noqa: E402,F401  (Qt-binding work-around first)
from explorer.engine import EpochReport, runfolder  # noqa: E402
from explorer.ui.app import ensure_app  # noqa: E402
from explorer.ui.inspector import InspectorPanel  # noqa: E402
from explorer.ui.main_window import MainWindow  # noqa: E402
from explorer.ui.probe.attention import AttentionSection  # noqa: E402
from explorer.ui.probe.gradcam import GradCamSection  # noqa: E402
from explorer.ui.probe.recurrent import RecurrentSection  # noqa: E402
from explorer.ui.probe.spatial import SpatialStateSection  # noqa: E402
from tests.ui.screenshots import painted_view, pump, shot, wait_for  # noqa: E402

TRAIN = {  # the smallest settings that clearly learn (see the README's figures)
    "crnn": ["sample:digit-strings", "--arch", "crnn", "--epochs", "5"],
    "conv_rnn": ["sample:shapes", "--arch", "conv_rnn", "--epochs", "5"],
    "captioner": ["sample:shape-scenes", "--arch", "captioner", "--epochs", "8"],
}
INSIDE = {"crnn": RecurrentSection, "conv_rnn": SpatialStateSection, "captioner": AttentionSection}
PANEL = (1400, 1250)  # the inspector: tall enough for the image, the output and two sections
WINDOW = (1400, 1000)  # the main window following a run: the live view's output below the curves unclipped


def train_command(family: str, run_dir: Path, config: Path) -> list[str]:
    return [sys.executable, "-m", "explorer", "train", *TRAIN[family], "--device", "cpu"] + [
        "--config",
        str(config),
        "--out",
        str(run_dir),
        "--quiet",
    ]


def finished(run_dir: Path) -> bool:
    return (run_dir / runfolder.METRICS).is_file()


def live(out: Path, family: str, run_dir: Path, live_only: bool) -> None:
    """Follows RUN_DIR (training it first when missing) and grabs the training screen mid-run."""
    w = MainWindow()
    w.resize(*WINDOW)
    w.show()
    reports: list[EpochReport] = []
    w.follower.event.connect(lambda ev: reports.append(ev) if isinstance(ev, EpochReport) else None)
    proc = None
    if not run_dir.exists():
        config = run_dir.parent / f".{run_dir.name}.probe.json"
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(json.dumps({"train": {"probe_interval": 3}}))
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(train_command(family, run_dir, config), env=env)
    w.follow_run(run_dir)
    mid = lambda: bool(reports) and reports[-1].epoch >= max(1, reports[-1].epochs // 2)  # noqa: E731
    wait_for(lambda: (mid() and w.train_panel.probe.painted > 0) or w.follower.last_finished is not None, 7200)
    pump(2000)  # the newest probe painted
    shot(w, out, f"trained_{family}_live")
    w.stop_training()  # stops following; the training goes on
    if proc is not None:
        if live_only:
            proc.terminate()
        proc.wait()
    w.shutdown()
    w.close()


def replay(out: Path, family: str, run_dir: Path) -> None:
    """Opens the finished run in the inspector; the first and last epochs, then the family's inside."""
    panel = InspectorPanel()
    panel.resize(*PANEL)
    panel.show()
    panel.set_run(run_dir)
    wait_for(lambda: painted_view(panel) is not None and bool(panel.epochs), 600)
    for epoch in (panel.epochs[0], panel.epochs[-1]):
        panel.replay_epoch(epoch)  # the snapshot's probe image gets a view of its own
        wait_for(lambda e=epoch: panel.status.text().startswith(f"epoch {e}:") and painted_view(panel) is not None, 300)
        pump(1000)
        view = painted_view(panel)
        cam = next((s for s in view.sections if isinstance(s, GradCamSection)), None)
        if cam is not None and len(cam.buttons) > 1 and not view.output.bars_plot.isVisible():
            cam.select(1)  # the second character / word
        view.scroll.verticalScrollBar().setValue(0)
        shot(panel, out, f"trained_{family}_replay_epoch{epoch}")
    view = painted_view(panel)
    print(family, "sections:", [type(s).__name__ for s in view.sections])
    sec = next(s for s in view.sections if isinstance(s, INSIDE[family]))
    if isinstance(sec, AttentionSection):
        sec.select(min(1, len(sec.words) - 1))
        cam = next((s for s in view.sections if isinstance(s, GradCamSection)), None)
        if cam is not None:
            cam.select(min(1, len(cam.buttons) - 1))
    elif isinstance(sec, SpatialStateSection):
        sec.slider.setValue(sec.slider.maximum() // 2)
        sec.select(sec.keys[-1] if len(sec.keys) > 1 else sec.keys[0])
    elif len(sec.keys) > 1:
        sec.select(sec.keys[1])  # the first gate
    view.scroll.verticalScrollBar().setValue(sec.y())
    pump(800)
    shot(panel, out, f"trained_{family}_replay_inside")
    panel.shutdown()
    panel.close()


def main(argv: list[str]) -> int:
    live_only = "--live-only" in argv
    args = [a for a in argv if a != "--live-only"]
    out = Path(args[0])
    out.mkdir(parents=True, exist_ok=True)
    ensure_app()
    for arg in args[1:]:
        family, _, path = arg.partition("=")
        if family not in TRAIN or not path:
            raise SystemExit(f"{arg}: expected FAMILY=RUN_DIR with FAMILY one of {', '.join(TRAIN)}")
        run_dir = Path(path).resolve()
        if not finished(run_dir):
            live(out, family, run_dir, live_only)
        if finished(run_dir) and not live_only:
            replay(out, family, run_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
