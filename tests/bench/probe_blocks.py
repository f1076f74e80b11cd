"""Probe overhead inside one app run: probing switched off and on in blocks of steps, so both
sides share the machine's state of the moment (``docs/inspector_bench.md``, eighth round).

    python tests/bench/probe_blocks.py ARCH DATA EPOCHS [BLOCK]

Trains like ``bench ui``'s app run (the worker with the inspector open and the simulated user);
the probe hook's timed probes are held back (``ProbeHook.hold``) in every other block of BLOCK
steps (default 10). Prints the mean time
from one step's start to the next (the step, its hooks, the probe and handing the report over)
in the blocks with probing and in those without. The first step of each block and steps longer
than 3 times the median (an epoch's end: validation, checkpoint) are left out, and so are the
one-off building of the views at the first probe and the epoch-end probes (snapshots for
replay). ``bench ui``'s probe overhead (``explorer/engine/probe_cost.py``) measures the same way
in headless runs, through ``ProbeHook.hold``, and counts the epoch ends.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from explorer.engine import hooks, trainer  # noqa: E402
from explorer.ui import bench  # noqa: E402
from explorer.ui.app import ensure_app  # noqa: E402


def main(arch: str, data: str, epochs: int, block: int = 10) -> dict:
    count, last, rec = [0], [None], []  # last: (probing?, index in block, start time)
    step = trainer.train_step

    def timed_step(s, idx):  # noqa: ANN001, ANN202
        now = time.perf_counter()
        if last[0] is not None:
            rec.append((last[0][0], last[0][1], now - last[0][2]))
        k = count[0]
        count[0] += 1
        last[0] = ((k // block) % 2 == 1, k % block, now)
        return step(s, idx)

    on_step = hooks.ProbeHook.on_step

    def maybe_probe(self, s, epoch):  # noqa: ANN001, ANN202
        self.hold(last[0] is not None and not last[0][0])  # as probe_cost's blocks: the clocks stand still
        yield from on_step(self, s, epoch)

    trainer.train_step, hooks.ProbeHook.on_step = timed_step, maybe_probe
    ensure_app()
    with tempfile.TemporaryDirectory() as home, bench._private_home(home):  # noqa: SLF001
        cfg = bench._config(data, arch, epochs, None, "cpu")  # noqa: SLF001
        _, _, fin = bench._train_with_views(cfg, os.path.join(home, "run"), 900)  # noqa: SLF001
    median = statistics.median(t for _, _, t in rec)
    on = [t for probing, i, t in rec if probing and i > 0 and t < 3 * median]
    off = [t for probing, i, t in rec if not probing and i > 0 and t < 3 * median]
    return {
        "arch": arch,
        "block": block,
        "samples_per_second": fin.metrics.get("samples_per_second"),
        "probing_ms": round(1e3 * statistics.mean(on), 1),
        "not_probing_ms": round(1e3 * statistics.mean(off), 1),
        "steps": [len(on), len(off)],
        "overhead": round(statistics.mean(on) / statistics.mean(off) - 1, 4),
    }


if __name__ == "__main__":
    args = sys.argv[1:]
    print(json.dumps(main(args[0], args[1], int(args[2]), *(int(a) for a in args[3:4]))), flush=True)
