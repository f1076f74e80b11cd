"""What watching costs: training throughput lost to the live probes (for ``bench ui``).

:func:`probe_overhead` measures it inside one run. The run trains with probes on at
``interval`` seconds, as the app trains, except that the probe hook's timed probes are held
back (:meth:`~explorer.engine.hooks.ProbeHook.hold`) in every other block of ``block`` steps;
the hook's clocks stand still while held, so the blocks with probes see the probes a run with
probes on all the time would see. Each step is timed (from the end of the last step's hooks to
the end of its own: the step, the probe made after it and handing the report over). The blocks
without probes give the step's time without probing; what the steps of the blocks with probes
took beyond it (with the :data:`~explorer.engine.hooks.AFTER_STEPS` steps right after each of
their probes, which run slower and may fall into the next block) is what probing costs per step
(:func:`block_estimate`). The epoch-end probes (made whatever the blocks, with their replay
snapshots) count in full: the epoch's last step and the steps right after it, beyond the step
without probing. From these the same run's time with probes everywhere and with none at all
follows, and their ratio is the overhead.

Why not two runs, probes on and off: on the 2-core CPU the same run's speed drifts by 10-20 %
from one minute to the next, and the pairs of runs made back to back (this module's former
figure, docs/inspector_bench.md) spread from -26 % to +15 % around an effect of a few percent.
Blocks of a few seconds see the same machine. ``repeats`` runs are pooled: a single run's
figure still varies by a few points from the steps' own jitter (crnn, 3 epochs: -4.7 to +7.8 %),
and the pooled one varies by a fraction of that.

The time measured runs from the model being ready to the last epoch report: training,
validation and checkpoints. Qt-free; the app adds the cost of sending and painting, which
``bench ui`` measures separately (its app / CLI throughput ratio).
"""

from __future__ import annotations

import copy
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from explorer.data import open_source

from .config import RunConfig
from .events import EpochReport, Event, ModelReady
from .hooks import AFTER_STEPS, Hook, ProbeHook
from .replay import list_epochs
from .trainer import Trainer

__all__ = [
    "BlockClock",
    "BlockedTrainer",
    "DEFAULT_PROBE_INTERVAL",
    "StepTime",
    "TooFewSteps",
    "block_estimate",
    "blocked_run",
    "paired_runs",
    "probe_overhead",
]

#: seconds between live probes in the app's default training settings (explorer/ui/project.py)
DEFAULT_PROBE_INTERVAL = 1.0
#: steps per block of :func:`blocked_run` (probes held back in every other block)
DEFAULT_BLOCK = 8


class TooFewSteps(ValueError):
    """A run too short to hold blocks of steps with and without probes."""


@dataclass(frozen=True)
class StepTime:
    """One training step of a :func:`blocked_run`: ``step`` of ``steps`` in ``epoch``, ``end``
    (``time.perf_counter()`` when its hooks were done), whether timed probes were ``held`` back
    during it and whether it was ``probed`` (a probe made after it, timed or at the epoch's end)."""

    epoch: int
    step: int
    steps: int
    end: float
    held: bool
    probed: bool


def block_estimate(rows: Sequence[StepTime], seconds: float) -> dict[str, Any]:
    """The overhead of probing from the steps of a :func:`blocked_run` that took ``seconds``.

    Each step's time is from the previous step's end (none for an epoch's first step, which
    holds validation and a checkpoint). The steps are sorted into four kinds:

    - *epoch end*: an epoch's last step (its probe, always made, and the snapshot) and the
      :data:`AFTER_STEPS` steps after an epoch-end probe: all they took beyond the usual step is
      epoch-end probing, ``end_seconds``;
    - *probing*: a step in a block with probes, one of the :data:`AFTER_STEPS` steps after one
      of their probes (in whichever block it falls) or the first step of a block without them
      (it starts while the blocks with probes wind down; in ``bench ui``'s app / CLI blocks it
      holds the hand-over from one thread to the other): all they took beyond the usual step is
      probing, spread over the blocks' steps (``extra_per_step``);
    - *not probing*: the other steps of the blocks without probes: their mean is the usual step;
    - the epochs' first steps, left out.

    With ``probing`` and ``not probing`` the counts of the steps (epoch ends left out) in the
    blocks with and without probes, the run would have taken ``seconds + not_probing *
    extra_per_step`` with probes everywhere and ``seconds - probing * extra_per_step -
    end_seconds`` with none; ``probe_overhead`` is one minus the ratio of the two (the fraction of
    throughput lost; slightly negative when noise outweighs the cost).

    Raises:
        TooFewSteps: no step to compare on one side (too few steps for two blocks).
    """
    kinds = _step_kinds(rows)
    usual = [t for kind, _, t in kinds if kind == "usual"]
    probing = [t for kind, _, t in kinds if kind == "probing" and t is not None]
    if not usual or not probing:
        raise TooFewSteps(
            f"too few steps to compare blocks with and without probes ({len(rows)} steps): "
            "train for more epochs or on more images"
        )
    step = statistics.fmean(usual)
    extra = sum(t - step for t in probing)
    end = sum(t - step for kind, _, t in kinds if kind == "end" and t is not None)
    in_probing = sum(1 for kind, row, _ in kinds if kind in ("probing", "usual") and not row.held)
    in_usual = sum(1 for kind, row, _ in kinds if kind in ("probing", "usual") and row.held)
    per_step = extra / max(1, in_probing)
    with_probes = seconds + in_usual * per_step
    without = seconds - in_probing * per_step - end
    return {
        "probe_overhead": 1.0 - without / with_probes,
        "step_ms": 1e3 * step,
        "extra_per_step_ms": 1e3 * per_step,
        "end_seconds": end,
        "steps": {"probing": in_probing, "not_probing": in_usual, "compared": [len(probing), len(usual)]},
        "seconds_with_probes": with_probes,
        "seconds_without": without,
    }


def _step_kinds(rows: Sequence[StepTime]) -> list[tuple[str, StepTime, float | None]]:
    """(kind, row, seconds since the previous step's end) per row, the kinds of
    :func:`block_estimate`: ``end``, ``first`` (no time), ``probing`` or ``usual``."""
    kinds: list[tuple[str, StepTime, float | None]] = []
    since_timed = since_end = AFTER_STEPS + 1  # steps since the last timed / epoch-end probe
    prev: StepTime | None = None
    for row in rows:
        took = row.end - prev.end if prev and (prev.epoch, prev.step + 1) == (row.epoch, row.step) else None
        since_timed += 1
        since_end += 1
        last = row.step == row.steps
        if last or since_end <= AFTER_STEPS:
            kind = "end"
        elif took is None:
            kind = "first"
        elif not row.held or since_timed <= AFTER_STEPS or not prev.held:  # prev is set: took was timed
            kind = "probing"
        else:
            kind = "usual"
        kinds.append((kind, row, took))
        if row.probed:
            since_end, since_timed = (0, since_timed) if last else (since_end, 0)
        prev = row
    return kinds


class BlockClock(Hook):
    """Called after the probe hook at every step: notes the step (:class:`StepTime`) and holds
    the hook's timed probes back in every other block of ``block`` steps (the first block probes).
    At the end of a block it returns :meth:`switched`'s events (none here; a subclass may hand
    the run over to another driver for the next block, as ``bench ui``'s app / CLI blocks do)."""

    def __init__(self, probes: ProbeHook, block: int) -> None:
        self.probes, self.block = probes, block
        self.rows: list[StepTime] = []
        self._made = 0  # the probe hook's count of probes at the last step
        self._held = False

    def on_step(self, s: Any, epoch: int) -> Iterator[Event]:
        hook = self.probes
        progress = hook.control.progress
        made, self._made = hook.probes > self._made, hook.probes
        self.rows.append(StepTime(epoch, progress.step, progress.steps, time.perf_counter(), self._held, made))
        held = (len(self.rows) // self.block) % 2 == 1  # the next step's block
        hook.hold(held)
        if held == self._held:
            return iter(())
        self._held = held
        return self.switched(held)

    def switched(self, held: bool) -> Iterator[Any]:
        """Events to yield as the next block starts (``held``: its probes are held back)."""
        return iter(())


class BlockedTrainer(Trainer):
    """A trainer whose probe hook is held back in blocks and whose steps are timed by a ``clock``
    (:class:`BlockClock` or a subclass)."""

    def __init__(self, *args: Any, block: int, clock: type[BlockClock] = BlockClock, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.block = block
        self.clock_type = clock
        self.probe_hook: ProbeHook | None = None
        self.clock: BlockClock | None = None

    def hooks(self) -> list[Hook]:
        hooks = super().hooks()
        self.probe_hook = next(h for h in hooks if isinstance(h, ProbeHook))
        self.clock = self.clock_type(self.probe_hook, self.block)
        return [*hooks, self.clock]


def blocked_run(cfg: RunConfig, source: Any, interval: float, block: int = DEFAULT_BLOCK) -> dict[str, Any]:
    """Train ``cfg`` once with probes every ``interval`` seconds, held back in every other block of
    ``block`` steps (see the module doc), into a temporary run folder.

    Returns:
        :func:`block_estimate`'s figures, with ``seconds`` (model ready -> last epoch report),
        ``probing`` (seconds the probe hook spent probing, keeping snapshots and charged for the
        steps after its probes), ``probe_share`` (that over the time probes were not held back),
        ``probes`` made, ``snapshots`` kept and the ``rows`` (:class:`StepTime`) estimated from.
    """
    if interval <= 0:
        raise ValueError(f"interval must be > 0 seconds (probes on), got {interval}")
    if block < 1:
        raise ValueError(f"block must be >= 1 step, got {block}")
    run_cfg = copy.deepcopy(cfg)
    run_cfg.train.probe_interval = interval
    with tempfile.TemporaryDirectory(prefix="me-probe-cost-") as tmp:
        t0 = t1 = None
        trainer = BlockedTrainer(run_cfg, tmp, source=source, block=block)
        for ev in trainer.run():
            if isinstance(ev, ModelReady):
                t0 = time.perf_counter()
            elif isinstance(ev, EpochReport):
                t1 = time.perf_counter()
        if t0 is None or t1 is None or trainer.clock is None or trainer.probe_hook is None:
            raise RuntimeError("the run ended before completing an epoch")
        hook = trainer.probe_hook
        out = block_estimate(trainer.clock.rows, t1 - t0)
        out.update(
            seconds=t1 - t0,
            probing=hook.seconds,
            probe_share=hook.seconds / max(1e-9, t1 - t0 - hook.held_seconds),
            probes=hook.probes,
            snapshots=len(list_epochs(tmp)),
            rows=trainer.clock.rows,
        )
        return out


def probe_overhead(
    cfg: RunConfig,
    *,
    interval: float = DEFAULT_PROBE_INTERVAL,
    repeats: int = 3,
    block: int = DEFAULT_BLOCK,
    source: Any = None,
    log: Callable[[str], None] = lambda s: None,
) -> dict[str, Any]:
    """The fraction of training throughput lost to probing at ``interval``: ``repeats`` runs of
    :func:`blocked_run` (see the module doc).

    Returns:
        ``probe_overhead`` (fraction, 0 = free: the runs pooled, one minus their summed time
        without probes over their summed time with them; may be slightly negative from timing
        noise), ``overheads`` (each run's, in order), ``probe_share`` (the
        median of the runs' ``probe_share``: the time the probe hook accounts for, a steadier
        figure), ``seconds_with_probes`` and ``seconds_without`` (each run's estimates),
        ``step_ms`` and ``extra_per_step_ms`` (each run's usual step and what probing
        added to a step of the blocks with probes), ``end_seconds`` (each run's epoch-end probing),
        ``probes`` and ``snapshots`` of the last run, ``interval``, ``repeats``, ``block``.
    """
    cfg.validate()
    source = source if source is not None else open_source(cfg.data.source)
    runs = []
    for r in range(max(1, repeats)):
        run = blocked_run(cfg, source, interval, block)
        runs.append(run)
        log(
            f"run {r + 1}/{repeats}: {run['seconds']:.3f}s, step {run['step_ms']:.1f} ms "
            f"+ {run['extra_per_step_ms']:.2f} ms probing -> overhead {run['probe_overhead']:.4f}"
        )
    return {
        "probe_overhead": 1.0 - sum(r["seconds_without"] for r in runs) / sum(r["seconds_with_probes"] for r in runs),
        "overheads": [r["probe_overhead"] for r in runs],
        "probe_share": statistics.median(r["probe_share"] for r in runs),
        "seconds_with_probes": [r["seconds_with_probes"] for r in runs],
        "seconds_without": [r["seconds_without"] for r in runs],
        "step_ms": [r["step_ms"] for r in runs],
        "extra_per_step_ms": [r["extra_per_step_ms"] for r in runs],
        "end_seconds": [r["end_seconds"] for r in runs],
        "probes": runs[-1]["probes"],
        "snapshots": runs[-1]["snapshots"],
        "interval": interval,
        "repeats": max(1, repeats),
        "block": block,
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
