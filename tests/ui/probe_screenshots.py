"""Screenshots of the live probe view, one per family (not a test; run by hand, ideally under X):

    xvfb-run -s "-screen 0 1400x900x24" .venv/bin/python tests/ui/probe_screenshots.py [OUT_DIR]

Builds small real models (cnn, rnn: LSTM 2 layers bidirectional, crnn with a CTC head, conv_rnn:
ConvLSTM, captioner, patch_rnn, backbone), makes the probe report the trainer would send and paints it in a
``ProbeView`` tall enough to show every section; writes ``probe_<family>.png`` (and a few views
with another gate, step or word selected) to OUT_DIR (default /tmp).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ["MODEL_EXPLORER_HOME"] = str(Path(tempfile.mkdtemp(prefix="me-probe-shots-")) / "home")

from PySide6.QtCore import QEventLoop, QTimer  # noqa: E402

import explorer.ui  # noqa: E402,F401  (Qt-binding work-around first)
from explorer.ui.app import ensure_app  # noqa: E402
from explorer.ui.probe import ProbeView  # noqa: E402
from explorer.ui.probe.attention import AttentionSection  # noqa: E402
from explorer.ui.probe.recurrent import RecurrentSection  # noqa: E402
from explorer.ui.probe.spatial import SpatialStateSection  # noqa: E402
from tests.ui.probe_reports import REPORTS  # noqa: E402

WIDTH = 760


def pump(ms: int) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def show(name: str, make) -> ProbeView | None:  # noqa: ANN001
    try:
        report, labels = make()
    except NotImplementedError as e:  # a family without its declaration yet
        print(f"{name}: skipped ({e or 'no declaration'})")
        return None
    view = ProbeView()
    view.setWindowTitle(f"probe: {name}")
    view.resize(WIDTH, 700)
    view.show()
    view.set_labels(labels)
    view.set_report(report)
    t0 = time.monotonic()
    while view.painted < 1 and time.monotonic() - t0 < 30:
        pump(50)
    pump(200)
    view.resize(WIDTH, min(2600, view.sizeHint().height() + view._layers.sizeHint().height()))  # noqa: SLF001
    pump(300)
    return view


def save(view: ProbeView, out: Path, name: str) -> None:
    pump(200)
    path = out / f"probe_{name}.png"
    view.grab().save(str(path))
    print(path)


def variants(view: ProbeView, out: Path, name: str) -> None:
    """Another gate, step or word selected, where the view has such a choice."""
    for sec in view.sections:
        if isinstance(sec, RecurrentSection | SpatialStateSection) and len(sec.keys) > 2:
            sec.select(sec.keys[2])  # a gate
        if isinstance(sec, SpatialStateSection):
            sec.slider.setValue(0)
        if isinstance(sec, AttentionSection) and len(sec.buttons) > 1:
            sec.select(1)
    save(view, out, f"{name}_selected")


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/tmp")
    out.mkdir(parents=True, exist_ok=True)
    ensure_app()
    for name, make in REPORTS.items():
        view = show(name, make)
        if view is None:
            continue
        save(view, out, name)
        if name in ("rnn", "conv_rnn", "captioner"):
            variants(view, out, name)
        view.stop()
        view.close()
        view.deleteLater()
        pump(50)


if __name__ == "__main__":
    main()
