"""Screenshots of File > Open Model with the Inspect tab (not a test; run by hand):

    xvfb-run -a -s "-screen 0 1400x1000x24" .venv/bin/python tests/ui/open_model_inspect_screenshots.py [OUT_DIR]

For a classifier (cnn on the built-in shapes sample), a text reader (crnn on digit-strings) and the
captioner (shape-scenes): trains a short run (cached in CACHE), exports a safetensors bundle, opens
the bundle in an Open Model window, adds six images and inspects one
(``open_model_inspect_predict`` = the Predict tab, ``open_model_inspect_<family>`` = Inspect).
Default OUT_DIR: ``docs/screenshots/``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
_tmp = Path(tempfile.mkdtemp(prefix="me-reopen-shots-"))
os.environ["MODEL_EXPLORER_HOME"] = str(_tmp / "home")
#: trained runs (and the samples they read) are kept here between runs; delete it to train again
CACHE = Path(tempfile.gettempdir()) / "me-reopen-shots"
os.environ["MODEL_EXPLORER_CACHE"] = str(CACHE / "cache")

from PySide6.QtCore import QEventLoop, QTimer  # noqa: E402
from PySide6.QtWidgets import QWidget  # noqa: E402

import explorer.ui  # noqa: E402,F401  (Qt-binding work-around first)
from explorer.cli import main as cli  # noqa: E402
from explorer.engine import load_run  # noqa: E402
from explorer.engine.export import export_run  # noqa: E402
from explorer.ui.app import ensure_app  # noqa: E402
from explorer.ui.open_model import OpenModelWindow  # noqa: E402

#: family -> (sample, CLI arguments)
RUNS = {
    "cnn": ("shapes", ["--arch", "cnn", "--epochs", "3"]),
    "crnn": ("digit-strings", ["--arch", "crnn", "--epochs", "6"]),
    "captioner": ("shape-scenes", ["--arch", "captioner", "--epochs", "4"]),
}


def pump(ms: int) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def wait_for(cond, timeout_s: float = 300.0) -> None:  # noqa: ANN001
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout_s:
            raise TimeoutError("condition not met")
        pump(20)


def shot(w: QWidget, out: Path, name: str) -> None:
    pump(400)
    path = out / f"{name}.png"
    w.grab().save(str(path), "PNG")
    print(f"{path}  {path.stat().st_size // 1024} KB", flush=True)


def train(family: str) -> tuple[Path, list[Path]]:
    sample, argv = RUNS[family]
    run = CACHE / family
    if not (run / "weights.safetensors").is_file():
        assert cli(["train", f"sample:{sample}", *argv, "--quiet", "--overwrite", "--out", str(run)]) == 0
    images = sorted((CACHE / "cache" / "samples").glob(f"{sample}-*/**/*.png"))
    return run, images[-6:]


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    families = sys.argv[2:] or list(RUNS)
    ensure_app()
    for family in families:
        run, images = train(family)
        (_tmp / family).mkdir()
        bundle = export_run(load_run(run), "safetensors", _tmp / family / family).files[0]
        win = OpenModelWindow(bundle)
        win.resize(1280, 900)
        win.show()
        wait_for(lambda: win.run is not None and win.tabs.isTabEnabled(1))  # noqa: B023
        win.panel.add_images([str(p) for p in images])
        wait_for(lambda: win.panel.table.rowCount() == len(images) and not win.panel.busy)  # noqa: B023
        # the image the model is surest of (the longest text read, for a text reader)
        results = win.panel.results
        row = max(range(len(results)), key=lambda i: (len(results[i].get("text", "")), results[i].get("confidence", 0)))
        win.panel.table.selectRow(row)
        if family == "cnn":
            shot(win, out, "open_model_inspect_predict")
        win.panel.inspect_btn.click()
        view = None

        def painted() -> bool:
            nonlocal view
            view = win.inspector.compare.views.get(results[row]["path"])  # noqa: B023
            return view is not None and view.painted >= 1 and bool(view.sections) and not view._to_build

        wait_for(painted)
        pump(1500)
        shot(win, out, f"open_model_inspect_{family}")
        if len(sys.argv) > 1:  # the last section too, for a look (not kept in docs/)
            view.scroll.ensureWidgetVisible(view.sections[-1])
            pump(1500)
            shot(win, Path(tempfile.gettempdir()), f"open_model_inspect_{family}_last")
        win.close()
        pump(200)
    return 0


if __name__ == "__main__":
    sys.exit(main())
