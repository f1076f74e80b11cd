"""CPU cost of building and painting the probe sections, measured in isolation (not a test; run by hand):

    QT_QPA_PLATFORM=offscreen .venv/bin/python tests/ui/paint_cost.py [FAMILY ...] [--paints N]

For each family (default crnn, captioner) a ``ProbeView`` tall enough to show every section is built
from the probe report of ``tests/ui/probe_reports.py``; every build step (one per event-loop turn, as
the app does) and every paint (``update_from`` of each section and of the output panel, then
``select`` of each entry of the recurrent and spatial sections) is timed with ``time.thread_time``
(the GUI thread's CPU, ms). The reports painted are the same report with its arrays scaled by a
random factor each time, so levels and notes change as they do while training. Prints p50 / p99 / max
per build step and per bench view kind (``explorer.ui.bench``'s names).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ["MODEL_EXPLORER_HOME"] = str(Path(tempfile.mkdtemp(prefix="me-paint-cost-")) / "home")

import numpy as np  # noqa: E402
from PySide6.QtCore import QEventLoop, QTimer  # noqa: E402

import explorer.ui  # noqa: E402,F401  (Qt-binding work-around first)
from explorer.ui.app import ensure_app  # noqa: E402
from explorer.ui.bench import _timed_paints  # noqa: E402
from explorer.ui.probe import ProbeView  # noqa: E402
from tests.ui.probe_reports import REPORTS  # noqa: E402


def pump(ms: int) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def stats(xs: list[float]) -> str:
    a = np.asarray(xs)
    return f"n={len(a):3d} p50 {np.percentile(a, 50):6.2f}  p99 {np.percentile(a, 99):6.2f}  max {a.max():6.2f} ms"


def varied(report, rng: np.random.Generator):  # noqa: ANN001, ANN201
    f = float(rng.uniform(0.5, 3.0))
    arrays = {k: (v * f if v.dtype.kind == "f" and k != "gradcam" else v) for k, v in report.intermediates.items()}
    return dataclasses.replace(report, intermediates=arrays)


def measure(family: str, paints: int) -> None:
    report, labels = REPORTS[family]()
    view = ProbeView()
    view.resize(900, 6000)
    view.show()
    view.set_labels(labels)
    steps: list[tuple[str, float]] = []
    orig_step = view._build_step  # noqa: SLF001

    def timed_step() -> bool:
        c0 = time.thread_time()
        n = len(view.sections)
        more = orig_step()
        what = type(view.sections[-1]).__name__ if len(view.sections) > n else "step"
        steps.append((what, (time.thread_time() - c0) * 1000.0))
        return more

    view._build_step = timed_step  # noqa: SLF001
    view._timer.stop()  # noqa: SLF001 - paints are driven here
    times: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    rng = np.random.default_rng(0)
    with _timed_paints(times, cpu):
        view.set_report(report)
        while True:
            view.paint_pending()
            if view.painted:
                break
            pump(15)
        print(f"== {family}: build steps (CPU ms): " + ", ".join(f"{w} {ms:.1f}" for w, ms in steps))
        pump(50)
        first = {k: v[0] for k, v in cpu.items()}
        for i in range(paints):
            r = varied(report, rng)
            ctx = view._ctx = type(view._ctx)(r, labels, view._ctx.words)  # noqa: SLF001
            view.output.update_from(ctx)
            for sec in view.sections:
                sec.update_from(ctx)
                buttons = getattr(sec, "buttons", None)
                if isinstance(buttons, dict) and len(buttons) > 1:
                    keys = list(buttons)
                    sec.select(keys[(i + 1) % len(keys)])
            pump(5)
    for kind, xs in cpu.items():
        print(f"   {kind:15s} {stats(xs)} (first paint {first.get(kind, float('nan')):.2f})")
    view.stop()
    view.close()
    view.deleteLater()
    pump(50)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("families", nargs="*", default=["crnn", "captioner"])
    ap.add_argument("--paints", type=int, default=40)
    args = ap.parse_args()
    ensure_app()
    for family in args.families:
        measure(family, args.paints)


if __name__ == "__main__":
    main()
