"""Where an app run's time goes: one app-style run in this fresh process, samples/s and the CPU
seconds of each thread (``docs/inspector_bench.md``, sixth round).

    python tests/bench/app_threads.py ARCH DATA EPOCHS VARIANT

VARIANT: ``app`` (the worker with the inspector open, as ``bench ui`` trains), ``noviews`` (the
worker alone), with ``_noprobe`` (probes off), ``_notick`` (the 10 ms stall timer at 1 s) or
``_quiet`` (no scrolling or selector switching). Run each variant in a fresh process, interleaved
with ``model-explorer train`` of the same run, several rounds: a run's speed drifts by 10-20 %.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402

from explorer.ui import bench  # noqa: E402
from explorer.ui.app import ensure_app  # noqa: E402


def threads_cpu() -> dict[int, tuple[str, float]]:
    """tid -> (thread name, CPU seconds) of this process's threads (Linux)."""
    out = {}
    tck = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat", encoding="ascii") as f:
                s = f.read()
        except OSError:
            continue
        fields = s[s.rindex(")") + 2 :].split()
        out[int(tid)] = (s[s.index("(") + 1 : s.rindex(")")], (int(fields[11]) + int(fields[12])) / tck)
    return out


def main(arch: str, data: str, epochs: int, variant: str) -> dict:
    ensure_app()
    if "notick" in variant:
        bench.TICK_MS = 1000
    if "quiet" in variant:
        bench._switch_selectors = lambda panel: None  # noqa: SLF001
        bench._scroll_sections = lambda panel, state: []  # noqa: SLF001
    with tempfile.TemporaryDirectory() as home, bench._private_home(home):  # noqa: SLF001
        cfg = bench._config(data, arch, epochs, None, "cpu")  # noqa: SLF001
        if "noprobe" in variant:
            cfg.train.probe_interval = 0.0
        before, t0 = threads_cpu(), time.perf_counter()
        if "noviews" in variant:
            from PySide6.QtCore import QEventLoop

            from explorer.ui.worker import TrainingController, gui_friendly_threads

            controller, loop = TrainingController(), QEventLoop()
            controller.idle.connect(loop.quit)
            controller.start(cfg, os.path.join(home, "run"), cpu_threads=gui_friendly_threads())
            loop.exec()
            fin, late = controller.last_finished, [0.0, 0.0]
        else:
            late, _, fin = bench._train_with_views(cfg, os.path.join(home, "run"), 900)  # noqa: SLF001
        wall, after = time.perf_counter() - t0, threads_cpu()
    per: dict[str, float] = {}
    for tid, (name, t) in after.items():
        key = "main" if tid == os.getpid() else name  # the training thread's OpenMP team shares its name
        per[key] = round(per.get(key, 0.0) + t - before.get(tid, (name, 0.0))[1], 2)
    return {
        "variant": variant,
        "samples_per_second": fin.metrics.get("samples_per_second"),
        "wall_s": round(wall, 1),
        "stall_p99_ms": round(float(np.percentile(late[1:], 99)), 1),
        "cpu_s_by_thread": per,
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])), flush=True)
