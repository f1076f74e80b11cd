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
  (from 3/5 of the epochs on, after a live probe was painted) the training screen is grabbed:
  ``trained_<family>_live.png`` (curves, progress, the followed run's own settings, the live view).
  With ``--live-only`` a training started here is stopped after that and not replayed.
* RUN_DIR finished (now or before): the inspector opens it as a user would (its model probes its
  first validation image) and grabs ``trained_<family>_replay_reopened.png`` (the decoded text /
  caption / class, CTC frames, Grad-CAM of the second character or word; the captioner's
  attention on its second word with the beam candidates and Grad-CAM of that word beside its
  attention). Then the epoch slider replays the first epoch's snapshot, the top of the view:
  ``trained_<family>_replay_epoch1.png``, and the last one, scrolled to the family's inner section
  (``INSIDE``, its first gate selected: the crnn's LSTM and the captioner's decoder input gate, the
  default ConvGRU's spatial reset gate at the middle step): ``trained_<family>_replay_epoch<N>_inside.png``.
  The view's sections are printed, to see what a family shows.

The README's trained screenshots and figures come from the commands in ``TRAIN`` (2 shared CPU cores).
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
    "crnn": ["sample:digit-strings", "--arch", "crnn", "--epochs", "10"],
    "conv_rnn": ["sample:shapes", "--arch", "conv_rnn", "--epochs", "12"],
    "captioner": ["sample:shape-scenes", "--arch", "captioner", "--epochs", "8"],
}
INSIDE = {"crnn": RecurrentSection, "conv_rnn": SpatialStateSection, "captioner": RecurrentSection}
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
    mid = lambda: bool(reports) and reports[-1].epoch >= max(1, reports[-1].epochs * 3 // 5)  # noqa: E731
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


def _select_second(view) -> None:  # noqa: ANN001
    """Grad-CAM and attention on the second character / word (a classifier keeps its predicted class)."""
    for sec in view.sections:
        if isinstance(sec, GradCamSection) and len(sec.buttons) > 1 and not view.output.bars_plot.isVisible():
            sec.select(1)
        if isinstance(sec, AttentionSection) and len(sec.words) > 1:
            sec.select(1)


def _scroll_to(view, sec) -> None:  # noqa: ANN001
    view.scroll.verticalScrollBar().setValue(sec.y() if sec is not None else 0)
    pump(800)


def replay(out: Path, family: str, run_dir: Path) -> None:
    """Opens the finished run in the inspector (its model probes its first validation image), then
    replays the first and the last epoch's snapshots."""
    panel = InspectorPanel()
    panel.resize(*PANEL)
    panel.show()
    panel.set_run(run_dir)
    wait_for(lambda: painted_view(panel) is not None and bool(panel.epochs), 600)
    pump(1000)
    view = painted_view(panel)
    print(family, "sections:", [type(s).__name__ for s in view.sections])
    _select_second(view)
    _scroll_to(view, next((s for s in view.sections if isinstance(s, AttentionSection)), None))
    shot(panel, out, f"trained_{family}_replay_reopened")
    for epoch in (panel.epochs[0], panel.epochs[-1]):
        panel.replay_epoch(epoch)  # the snapshot's probe image gets a view of its own
        wait_for(lambda e=epoch: panel.status.text().startswith(f"epoch {e}:") and painted_view(panel) is not None, 300)
        pump(1000)
        view = painted_view(panel)
        _select_second(view)
        if epoch == panel.epochs[0]:
            _scroll_to(view, None)
            shot(panel, out, f"trained_{family}_replay_epoch{epoch}")
            continue
        sec = next(s for s in view.sections if isinstance(s, INSIDE[family]))
        if isinstance(sec, SpatialStateSection):
            sec.slider.setValue(sec.slider.maximum() // 2)
        if len(sec.keys) > 1:
            sec.select(sec.keys[1])  # the first gate
        _scroll_to(view, sec)
        shot(panel, out, f"trained_{family}_replay_epoch{epoch}_inside")
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
