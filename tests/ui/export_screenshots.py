"""Screenshots of the Export dialog and the Open Model panel (not a test; run by hand):

    xvfb-run -s "-screen 0 1400x900x24" .venv/bin/python tests/ui/export_screenshots.py [OUT_DIR]

Trains a text-reading (crnn, CTC) run on the built-in digit-strings sample, exports it to ONNX in the
dialog (``export_before``, ``export_during``, ``export_dialog`` = after), exports a safetensors
bundle and opens it in the Open Model panel with predictions (``open_model``). Default OUT_DIR:
``docs/screenshots/``; everything else goes to a temporary folder.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
_tmp = Path(tempfile.mkdtemp(prefix="me-export-shots-"))
os.environ["MODEL_EXPLORER_HOME"] = str(_tmp / "home")
os.environ.setdefault("MODEL_EXPLORER_CACHE", str(_tmp / "cache"))

from PySide6.QtCore import QEventLoop, QTimer  # noqa: E402
from PySide6.QtWidgets import QWidget  # noqa: E402

import explorer.ui  # noqa: E402,F401  (Qt-binding work-around first)
from explorer.cli import main as cli  # noqa: E402
from explorer.engine import load_run  # noqa: E402
from explorer.engine.export import export_run  # noqa: E402
from explorer.ui.app import ensure_app  # noqa: E402
from explorer.ui.export_dialog import ExportDialog  # noqa: E402
from explorer.ui.open_model import OpenModelPanel  # noqa: E402


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
    pump(200)
    path = out / f"{name}.png"
    w.grab().save(str(path), "PNG")
    print(f"{path}  {path.stat().st_size // 1024} KB")


#: the trained run (and the sample it read) is kept here between runs of this script; delete it to train again
CACHE = Path(tempfile.gettempdir()) / "me-export-shots-run"


def train() -> tuple[Path, list[Path]]:
    """A crnn run that reads the built-in digit-strings sample (8 epochs: a few minutes on 2 cores;
    cached in CACHE), and eight of the sample's images."""
    os.environ["MODEL_EXPLORER_CACHE"] = str(CACHE / "cache")
    run = CACHE / "digit-strings"
    if not (run / "weights.safetensors").is_file():
        argv = ["train", "sample:digit-strings", "--arch", "crnn", "--epochs", "8", "--quiet"]
        assert cli([*argv, "--out", str(run)]) == 0
    images = sorted((CACHE / "cache" / "samples").glob("digit-strings*/images/*.png"))
    return run, images[-8:]


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    ensure_app()
    run, images = train()
    (_tmp / "export").mkdir()

    dlg = ExportDialog(run)
    dlg.format_box.setCurrentIndex(dlg.format_box.findData("onnx"))
    dlg.dest_edit.setText(str(_tmp / "export" / "digit-strings.onnx"))
    dlg.show()
    wait_for(dlg.export_btn.isEnabled)
    shot(dlg, out, "export_before")
    dlg.export_btn.click()
    wait_for(lambda: dlg.progress.maximum() > 0)
    shot(dlg, out, "export_during")
    wait_for(lambda: not dlg.busy)
    shot(dlg, out, "export_dialog")
    dlg.close()

    bundle = export_run(load_run(run), "safetensors", _tmp / "export" / "digit-strings").files[0]
    panel = OpenModelPanel()
    panel.setWindowTitle("Model — digit-strings.safetensors")
    panel.resize(900, 560)
    panel.show()
    panel.open_model(bundle)
    wait_for(lambda: panel.run is not None)
    panel.add_images(images)
    wait_for(lambda: panel.table.rowCount() > 0 and not panel.busy)
    shot(panel, out, "open_model")
    panel.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
