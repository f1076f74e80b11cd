"""What watching costs: training throughput lost to the live probes (for ``bench ui``).

:func:`probe_overhead` trains the same run twice per repeat, probes on (at ``interval``
seconds, plus the epoch-end probe and its replay snapshot, as the app trains) and probes off,
run back to back as a pair (which of the two goes first alternates from pair to pair), and
takes the median over the pairs of each pair's ``1 - throughput_on / throughput_off = 1 -
seconds_off / seconds_on``. On the 2-core CPU the same run's speed drifts by 10-20 % from one
minute to the next, so a comparison of two runs far apart (the fastest of each, the former
figure) says more about the drift than about probing; a pair sees nearly the same machine, and
the median drops the pairs a burst of load split. It also reports ``probe_share``, the time the
probed run spent inside the probe hook over its time, which a busy machine disturbs less. The time
measured runs from the model being ready to the last epoch report: training, validation and
checkpoints, the same work in both runs except the probing. Qt-free; the UI's worker adds the
cost of sending and painting, which ``bench ui`` measures separately.
"""

from __future__ import annotations

import copy
import statistics
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

__all__ = ["DEFAULT_PROBE_INTERVAL", "paired_runs", "probe_overhead", "timed_run"]

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
        ``probe_overhead`` (fraction, 0 = free: the median over the pairs; may be slightly
        negative from timing noise), ``overheads`` (each pair's, in order), ``probe_share`` (the
        median over the probed runs of the time spent inside the probe hook: a same-run figure,
        steadier than the A/B one), ``seconds_on`` / ``seconds_off`` (each run's seconds, in
        order), ``probes`` and ``snapshots`` of the last probed run, ``interval``, ``repeats``.
    """
    if interval <= 0:
        raise ValueError(f"interval must be > 0 seconds (probes on), got {interval}")
    cfg.validate()
    source = source if source is not None else open_source(cfg.data.source)

    def logged(r: int, off: dict[str, Any], on: dict[str, Any]) -> None:
        log(f"pair {r + 1}/{repeats}: probes off {off['seconds']:.3f}s, on {on['seconds']:.3f}s")

    pairs = paired_runs(lambda: timed_run(cfg, source, 0.0), lambda: timed_run(cfg, source, interval), repeats, logged)
    overheads = [1.0 - off["seconds"] / on["seconds"] for off, on in pairs]
    return {
        "probe_overhead": statistics.median(overheads),
        "overheads": overheads,
        "probe_share": statistics.median(on["probing"] / on["seconds"] for _, on in pairs),
        "seconds_on": [on["seconds"] for _, on in pairs],
        "seconds_off": [off["seconds"] for off, _ in pairs],
        "probes": pairs[-1][1]["probes"],
        "snapshots": pairs[-1][1]["snapshots"],
        "interval": interval,
        "repeats": repeats,
    }


def paired_runs(
    first: Callable[[], Any],
    second: Callable[[], Any],
    repeats: int,
    log: Callable[[int, Any, Any], None] = lambda r, a, b: None,
) -> list[tuple[Any, Any]]:
    """``repeats`` pairs ``(first(), second())`` made back to back, the order alternating (the
    first pair runs ``first`` first, the second pair ``second`` first, ...) so that neither side
    always runs on the machine the other one warmed or left busy. ``log(r, a, b)`` after each."""
    pairs = []
    for r in range(max(1, repeats)):
        if r % 2 == 0:
            a = first()
            b = second()
        else:
            b = second()
            a = first()
        pairs.append((a, b))
        log(r, a, b)
    return pairs
