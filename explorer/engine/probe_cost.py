"""What watching costs: training throughput lost to the live probes (for ``bench ui``).

:func:`probe_overhead` trains the same run twice per repeat, probes on (at ``interval``
seconds, plus the epoch-end probe and its replay snapshot, as the app trains) and probes off,
interleaved so that drifts in machine load hit both alike, and compares the fastest of each:
``overhead = 1 - throughput_on / throughput_off = 1 - seconds_off / seconds_on``. It also
reports ``probe_share``, the time the probed run spent inside the probe hook over its time,
which a busy machine disturbs less (both runs of a pair see the same load only on average). The time
measured runs from the model being ready to the last epoch report: training, validation and
checkpoints, the same work in both runs except the probing. Qt-free; the UI's worker adds the
cost of sending and painting, which ``bench ui`` measures separately.
"""

from __future__ import annotations

import copy
import tempfile
import time
from collections.abc import Callable
from typing import Any

from explorer.data import open_source

from .config import RunConfig
from .events import EpochReport, ModelReady, ProbeReport
from .hooks import Hook, ProbeHook
from .replay import list_epochs
from .trainer import Trainer

__all__ = ["DEFAULT_PROBE_INTERVAL", "probe_overhead", "timed_run"]

#: seconds between live probes in the app's default training settings (explorer/ui/project.py)
DEFAULT_PROBE_INTERVAL = 1.0


def timed_run(cfg: RunConfig, source: Any, interval: float) -> dict[str, Any]:
    """Train ``cfg`` with ``train.probe_interval = interval`` into a temporary run folder.

    Returns:
        ``seconds`` (model ready -> last epoch report), ``probing`` (seconds of it the probe hook
        spent probing and keeping snapshots), ``probes`` reported and ``snapshots`` kept.
    """
    run_cfg = copy.deepcopy(cfg)
    run_cfg.train.probe_interval = interval
    with tempfile.TemporaryDirectory(prefix="me-probe-cost-") as tmp:
        t0 = t1 = None
        probes = 0
        trainer = _Timed(run_cfg, tmp, source=source)
        for ev in trainer.run():
            if isinstance(ev, ModelReady):
                t0 = time.perf_counter()
            elif isinstance(ev, EpochReport):
                t1 = time.perf_counter()
            elif isinstance(ev, ProbeReport):
                probes += 1
        if t0 is None or t1 is None:
            raise RuntimeError("the run ended before completing an epoch")
        probing = trainer.probe_hook.seconds if trainer.probe_hook is not None else 0.0
        return {"seconds": t1 - t0, "probing": probing, "probes": probes, "snapshots": len(list_epochs(tmp))}


class _Timed(Trainer):
    """A trainer that keeps a handle on its probe hook (to read the time it spent)."""

    probe_hook: ProbeHook | None = None

    def hooks(self) -> list[Hook]:
        hooks = super().hooks()
        self.probe_hook = next((h for h in hooks if isinstance(h, ProbeHook)), None)
        return hooks


def probe_overhead(
    cfg: RunConfig,
    *,
    interval: float = DEFAULT_PROBE_INTERVAL,
    repeats: int = 3,
    source: Any = None,
    log: Callable[[str], None] = lambda s: None,
) -> dict[str, Any]:
    """The fraction of training throughput lost to probing at ``interval`` (see the module doc).

    Returns:
        ``probe_overhead`` (fraction, 0 = free; may be slightly negative from timing noise),
        ``probe_share`` (the fraction of the fastest probed run's time spent inside the probe hook:
        a same-run figure, steadier than the A/B one on a machine whose load drifts),
        ``seconds_on`` / ``seconds_off`` (fastest of ``repeats``), ``probes`` and ``snapshots``
        of the fastest probed run, ``interval``, ``repeats``.
    """
    if interval <= 0:
        raise ValueError(f"interval must be > 0 seconds (probes on), got {interval}")
    cfg.validate()
    source = source if source is not None else open_source(cfg.data.source)
    on: list[dict[str, Any]] = []
    off: list[dict[str, Any]] = []
    for r in range(repeats):
        off.append(timed_run(cfg, source, 0.0))
        on.append(timed_run(cfg, source, interval))
        log(f"repeat {r + 1}/{repeats}: probes off {off[-1]['seconds']:.3f}s, on {on[-1]['seconds']:.3f}s")
    best_on = min(on, key=lambda d: d["seconds"])
    best_off = min(off, key=lambda d: d["seconds"])
    return {
        "probe_overhead": 1.0 - best_off["seconds"] / best_on["seconds"],
        "probe_share": best_on["probing"] / best_on["seconds"],
        "seconds_on": best_on["seconds"],
        "seconds_off": best_off["seconds"],
        "probes": best_on["probes"],
        "snapshots": best_on["snapshots"],
        "interval": interval,
        "repeats": repeats,
    }
