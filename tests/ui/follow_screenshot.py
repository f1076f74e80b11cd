"""The screenshot of the app following a CLI run (not a test; run by hand, ideally under a real X server):

    xvfb-run -s "-screen 0 1400x900x24" .venv/bin/python tests/ui/follow_screenshot.py [OUT_DIR]

Starts ``model-explorer train sample:shapes ... --out RUN`` in a separate process, opens the app
with File > Follow Run on RUN, and writes ``follow_run.png`` mid-run (curves, progress, the live
probe) to ``docs/screenshots/`` (default).
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
_tmp = Path(tempfile.mkdtemp(prefix="me-follow-"))
os.environ["MODEL_EXPLORER_HOME"] = str(_tmp / "home")
os.environ.setdefault("MODEL_EXPLORER_CACHE", str(_tmp / "cache"))

import explorer.ui  # noqa: E402,F401  (Qt-binding work-around first)
from explorer.engine import EpochReport, RunConfig  # noqa: E402
from explorer.ui.app import ensure_app  # noqa: E402
from explorer.ui.main_window import MainWindow  # noqa: E402
from tests.ui.screenshots import SIZE, pump, shot  # noqa: E402


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    ensure_app()
    w = MainWindow()
    w.resize(*SIZE)
    w.show()
    run = _tmp / "runs" / "shapes-cli"
    cfg = RunConfig(arch="cnn", params={"channels": "16,32"})
    cfg.data.source = "sample:shapes"
    cfg.train.epochs = 8
    cfg.train.batch_size = 16
    cfg.train.device = "cpu"
    cfg.train.probe_interval = 0.5
    (_tmp / "cfg.json").write_text(json.dumps(cfg.to_dict()))
    w.follow_run(run)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "explorer", "train", "sample:shapes", "--config", str(_tmp / "cfg.json")]
    proc = subprocess.Popen([*cmd, "--out", str(run), "--quiet"], env=env)
    epochs: list[int] = []
    w.follower.event.connect(lambda ev: epochs.append(ev.epoch) if isinstance(ev, EpochReport) else None)
    for _ in range(1200):
        pump(100)
        if len(epochs) >= 3 or proc.poll() is not None:
            break
    pump(1500)
    shot(w, out, "follow_run")
    w.stop_training()  # stops following; the CLI run goes on
    proc.terminate()
    proc.wait()
    w.shutdown()


if __name__ == "__main__":
    main()
