"""Screenshots of the main screens (not a test; run by hand, ideally under a real X server):

    xvfb-run -s "-screen 0 1400x900x24" .venv/bin/python tests/ui/screenshots.py [OUT_DIR]

Writes welcome, dataset, architecture, training (mid-run, curves and the live probe), runs, an RNN
training view, the text-reading (sequence) screens with a text run's predictions and the
captioner's architecture preview to ``docs/screenshots/`` (default). Uses a private settings folder and cache.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
_tmp = tempfile.mkdtemp(prefix="me-shots-")
os.environ["MODEL_EXPLORER_HOME"] = str(Path(_tmp) / "home")
os.environ.setdefault("MODEL_EXPLORER_CACHE", str(Path(_tmp) / "cache"))

from PySide6.QtCore import QEventLoop, Qt, QTimer  # noqa: E402
from PySide6.QtGui import QImage  # noqa: E402
from PySide6.QtWidgets import QMessageBox, QWidget  # noqa: E402

import explorer.ui  # noqa: E402,F401  (Qt-binding work-around first)
from explorer.engine import EpochReport  # noqa: E402
from explorer.ui.app import ensure_app  # noqa: E402
from explorer.ui.inspector import InspectorPanel  # noqa: E402
from explorer.ui.main_window import MainWindow  # noqa: E402

SIZE = (1280, 820)
MAX_BYTES = 290 * 1024


def pump(ms: int) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def wait_for(cond, timeout_s: float = 120.0) -> None:  # noqa: ANN001
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout_s:
            raise TimeoutError("condition not met")
        pump(50)


def painted_view(panel: InspectorPanel, at_least: int = 1):  # noqa: ANN201
    """The inspector's first probe view once it has painted ``at_least`` reports and built every section."""
    views = list(panel.compare.views.values())
    return views[0] if views and views[0].painted >= at_least and not views[0]._to_build else None  # noqa: SLF001


def shot(w: QWidget, out: Path, name: str) -> None:
    """Grabs ``w`` to ``OUT/NAME.png`` (a 256-colour palette when the full colours pass MAX_BYTES)."""
    pump(300)
    path = out / f"{name}.png"
    image = w.grab().toImage()
    image.save(str(path), "PNG", 0)
    if path.stat().st_size > MAX_BYTES:  # photos of noisy thumbnails: a 256-colour palette keeps it small
        flags = Qt.ImageConversionFlag.ThresholdDither | Qt.ImageConversionFlag.AvoidDither  # no noise: smaller
        image.convertToFormat(QImage.Format.Format_Indexed8, flags).save(str(path), "PNG", 0)
    print(f"{path}  {path.stat().st_size // 1024} KB")


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    ensure_app()
    w = MainWindow()
    w.resize(*SIZE)
    w.show()
    shot(w, out, "welcome")

    w.load_sample("shapes")
    w.dataset_panel.select_class(None)
    wait_for(lambda: w.thumbs.requests > 0)
    w.thumbs.wait_idle()
    shot(w, out, "dataset")

    w.tabs.setCurrentWidget(w.arch_panel)
    w.arch_panel.request_summary()
    wait_for(lambda: w.arch_panel.last_summary is not None)
    w.arch_panel.form.rows["channels"].editor.setFocus()
    shot(w, out, "architecture")

    cfg = w.session.project.config.train
    cfg.epochs, cfg.probe_interval = 12, 0.3
    w.train_panel.settings.load_from_session()
    epochs: list[int] = []
    w.controller.event.connect(lambda ev: epochs.append(ev.epoch) if isinstance(ev, EpochReport) else None)
    w.start_training()
    wait_for(lambda: len(epochs) >= 5 and w.train_panel.probe.painted > 2)
    shot(w, out, "training")
    wait_for(lambda: not w.controller.is_running())
    w.tabs.setCurrentWidget(w.runs_panel)
    shot(w, out, "runs")

    # a recurrent model: hidden states as (time x units) heat maps
    w.tabs.setCurrentWidget(w.arch_panel)
    w.arch_panel.family_list.setCurrentRow(
        [w.arch_panel.family_list.item(i).text() for i in range(w.arch_panel.family_list.count())].index("rnn")
    )
    w.arch_panel.form.set_value("bidirectional", True)
    w.arch_panel.form.set_value("hidden_size", 48)
    cfg.epochs = 6
    w.train_panel.settings.load_from_session()
    epochs.clear()
    w.start_training()
    wait_for(lambda: len(epochs) >= 2 and w.train_panel.probe.painted > 1)
    shot(w, out, "training_rnn")
    wait_for(lambda: not w.controller.is_running())

    # reading text: the digit-strings sample trains a CRNN with a CTC head (its runs are discarded)
    w.ask_unsaved_runs = lambda: QMessageBox.StandardButton.Discard
    w.load_sample("digit-strings")
    shot(w, out, "dataset_sequence")
    cfg = w.session.project.config.train
    cfg.epochs, cfg.probe_interval = 3, 0.5
    w.train_panel.settings.load_from_session()
    epochs.clear()
    w.start_training()
    wait_for(lambda: len(epochs) >= 1 and w.train_panel.probe.painted > 1, timeout_s=300)
    shot(w, out, "training_sequence")
    wait_for(lambda: not w.controller.is_running(), timeout_s=600)  # three epochs: it reads some digits
    _text_predictions(w, out)
    _captioner(w, out)
    w.close()
    return 0


def _text_predictions(w: MainWindow, out: Path) -> None:
    """The runs screen of the text run: its predictions table shows the texts read (Task.prediction_cells)."""
    w.tabs.setCurrentWidget(w.runs_panel)
    run = w.session.project.runs[-1]
    images = [p for p, _ in w.session.project.samples[:8]]
    w.runs_panel.predict(run, images)
    table = w.runs_panel.predictions
    wait_for(lambda: table.rowCount() == len(images) and table.item(len(images) - 1, 1) is not None)
    w.runs_panel.splitter.setSizes([150, 650])
    shot(w, out, "runs_sequence")


def _captioner(w: MainWindow, out: Path) -> None:
    """The architecture screen of the shape-scenes sample: the captioner's parameter count and layers."""
    w.load_sample("shape-scenes")
    panel = w.arch_panel
    families = [panel.family_list.item(i).text() for i in range(panel.family_list.count())]
    panel.family_list.setCurrentRow(families.index("captioner"))
    w.tabs.setCurrentWidget(panel)
    panel.last_summary = None
    panel.request_summary()
    wait_for(lambda: panel.last_summary is not None)
    shot(w, out, "architecture_captioner")


if __name__ == "__main__":
    raise SystemExit(main())
