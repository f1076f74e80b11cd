"""What the app costs training: its throughput against the CLI's, measured inside one run.

The run alternates, in blocks of ``block`` steps, between training as the app trains and as
``model-explorer train`` trains, all on the :class:`~explorer.ui.worker.TrainingWorker`'s thread:

- **app blocks**: the window runs its event loop while the worker trains: the views paint the
  live probes, the curves take the step reports, and whatever else the caller's window does
  (``bench ui``: the stall timer and the simulated user);
- **CLI blocks**: the window stands still (the GUI thread waits, as if there were no window), the
  probe hook's timed probes are held back (:meth:`~explorer.engine.hooks.ProbeHook.hold`: its
  clocks stand still, so the app blocks get the probes a run probed all through gets) and the
  GIL switch interval is Python's default. The step reports of these blocks are dropped (a piped
  CLI prints none); the other events wait for the next app block, whose window handles them.

The trainer's steps are timed (:class:`~explorer.engine.probe_cost.BlockClock`) and
:func:`~explorer.engine.probe_cost.block_estimate` splits them: the CLI blocks' steps give the
CLI's step; the app blocks' steps, the first step of each CLI block (it waits for the window to
finish what it is drawing), the steps right after a probe and the epoch ends (their probes and
snapshots) count as the app's. Everything uncertain is charged to the app. From that follow the
run's time trained as the app all through and as the CLI all through, and
:func:`app_cli_ratio` is the ratio of their throughputs.

Why not two runs: on the 2-core CPU the speed of the same run drifts by 10-20 % from one minute to
the next, and back-to-back pairs of an app run and a CLI run spread from 0.71 to 1.13 around a
ratio near 0.9 (docs/inspector_bench.md). Blocks of a few seconds see the same machine.

Why on one thread: training the CLI blocks on the GUI thread (as the CLI trains on its main
thread) gives that thread an OpenMP team of its own beside the worker's, and with more OpenMP
threads than cores libgomp stops spinning between parallel regions: every step of both kinds of
block ran 30-40 % slower (crnn, 2 cores: 135-140 ms against 97-102). What the CLI's main thread
differs in besides (its nice value, Python's switch interval while nothing else wants the GIL) is
measured across processes: the app's worker alone, probes off, against ``model-explorer train``.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal, Slot

from explorer.engine import StepReport, Trainer, runfolder
from explorer.engine.probe_cost import BlockClock, BlockedTrainer, block_estimate

from .worker import TrainingController, TrainingWorker

__all__ = ["AppCliController", "Handoff", "app_cli_ratio", "cli_throughput", "throughput_figures", "DEFAULT_BLOCK"]

#: steps per block (app and CLI alternating)
DEFAULT_BLOCK = 8


@dataclass(frozen=True)
class Handoff:
    """Yielded by the run between two blocks: the next block trains as the CLI (``to_cli``) or
    as the app."""

    to_cli: bool


class _ModeClock(BlockClock):
    """The probe hook's blocks, each end handing the run over: the blocks with probes held back
    train as the CLI."""

    def switched(self, held: bool) -> Iterator[Any]:
        yield Handoff(to_cli=held)


class _BlockWorker(TrainingWorker):
    """The app's worker, stopping the window for the CLI blocks."""

    freeze = Signal()  # the GUI thread is to stand still until thawed

    def __init__(self, *args: Any, block: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.block = block
        self.trainer: BlockedTrainer | None = None
        self.cli_switch_interval = sys.getswitchinterval()  # the CLI blocks': as before training set its own
        self.turns = 0  # CLI blocks trained
        self._cli = False  # in a CLI block
        self._switch = sys.getswitchinterval()  # the app's switch interval, back after a CLI block
        self._deferred: list[object] = []  # events of a CLI block, for the window after it
        self._frozen = threading.Event()
        self._thaw = threading.Event()

    def _make_trainer(self) -> Trainer:
        self.trainer = BlockedTrainer(
            self.config,
            self.run_dir,
            source=self.source,
            report_interval=self.report_interval,
            control=self.control,
            block=self.block,
            clock=_ModeClock,
        )
        return self.trainer

    def _drive(self, events: Iterator[object]) -> None:
        try:
            for ev in events:
                if isinstance(ev, Handoff):
                    self._to_cli() if ev.to_cli else self._to_app()
                elif not self._cli:
                    self._handle(ev)
                elif not isinstance(ev, StepReport):
                    self._deferred.append(ev)
        finally:
            self._to_app()

    def _to_cli(self) -> None:
        self._frozen.clear()
        self._thaw.clear()
        self.freeze.emit()
        self._frozen.wait(5.0)  # the window has finished what it was doing (or cannot: a shutdown)
        self._switch = sys.getswitchinterval()
        sys.setswitchinterval(self.cli_switch_interval)
        self._cli = True

    def _to_app(self) -> None:
        if not self._cli:
            return
        sys.setswitchinterval(self._switch)
        self._cli = False
        self.turns += 1
        self._thaw.set()
        deferred, self._deferred = self._deferred, []
        for ev in deferred:
            self._handle(ev)

    def stand_still(self) -> None:
        """(GUI thread) Waits, doing nothing, until the CLI block ends."""
        self._frozen.set()
        self._thaw.wait()


class AppCliController(TrainingController):
    """A :class:`TrainingController` whose runs alternate app and CLI blocks (see the module doc);
    ``turns``: the CLI blocks trained so far (the window's event loop stood still during each)."""

    def __init__(self, block: int = DEFAULT_BLOCK, parent: Any = None) -> None:
        super().__init__(parent)
        self.block = block
        self._last: _BlockWorker | None = None  # the last run's worker, kept after the run

    @property
    def turns(self) -> int:
        return self._last.turns if self._last is not None else 0

    @property
    def trainer(self) -> BlockedTrainer | None:
        """The last run's trainer (its clock's rows), also once the run is over."""
        return self._last.trainer if self._last is not None else None

    def _new_worker(self, *args: Any, **kwargs: Any) -> TrainingWorker:
        worker = _BlockWorker(*args, block=self.block, **kwargs)
        worker.freeze.connect(self._freeze)
        self._last = worker
        return worker

    @Slot()
    def _freeze(self) -> None:
        if self._last is not None:
            self._last.stand_still()


def app_cli_ratio(trainer: BlockedTrainer, seconds: float) -> dict[str, Any]:
    """The app's throughput over the CLI's in a run of :class:`AppCliController` that trained for
    ``seconds`` (``metrics.json``'s ``train_seconds``: the epochs without their validation, as the
    CLI's samples/s counts them): ``throughput_ratio`` (the run's time as the
    CLI all through over its time as the app all through), ``cli_step_ms`` and ``app_step_ms``
    (the CLI blocks' usual step and the app blocks' step with what the app added),
    ``app_seconds`` and ``cli_seconds`` (the two estimates), ``end_seconds`` (what the epoch
    ends took beyond a step: their probes and snapshots), ``steps``.

    Raises:
        TooFewSteps: the run was too short for two blocks.
    """
    if trainer.clock is None:
        raise RuntimeError("the run ended before its first step")
    est = block_estimate(trainer.clock.rows, seconds)
    return {
        "throughput_ratio": est["seconds_without"] / est["seconds_with_probes"],
        "cli_step_ms": est["step_ms"],
        "app_step_ms": est["step_ms"] + est["extra_per_step_ms"],
        "app_seconds": est["seconds_with_probes"],
        "cli_seconds": est["seconds_without"],
        "end_seconds": est["end_seconds"],
        "steps": {"app": est["steps"]["probing"], "cli": est["steps"]["not_probing"]},
        "probes": trainer.probe_hook.probes if trainer.probe_hook is not None else 0,
    }


def throughput_figures(runs: list[dict[str, Any] | str], batch_size: int) -> dict[str, Any]:
    """The app / CLI throughput ratio of the runs pooled (their time as the CLI all through over
    their time as the app all through), each run's, and the medians of the app's and the CLI's
    samples/s over a training step; ``None`` with ``throughput_error`` for runs too short."""
    done = [r for r in runs if isinstance(r, dict)]
    if not done:
        return {
            "throughput_ratio": None,
            "throughput_ratios": [],
            "samples_per_second": None,
            "cli_samples_per_second": None,
            "throughput_error": next(str(r) for r in runs),
        }
    return {
        "throughput_ratio": round(sum(r["cli_seconds"] for r in done) / sum(r["app_seconds"] for r in done), 3),
        "throughput_ratios": [round(r["throughput_ratio"], 3) for r in done],
        "samples_per_second": round(statistics.median(1e3 * batch_size / r["app_step_ms"] for r in done), 1),
        "cli_samples_per_second": round(statistics.median(1e3 * batch_size / r["cli_step_ms"] for r in done), 1),
    }


def cli_throughput(cfg: Any, run_dir: str) -> float:
    """Samples/s (``metrics.json``) of ``cfg``'s run trained by ``model-explorer train`` itself, in a
    subprocess: its own process, main thread, PyTorch's default CPU threads, no live probes.

    The check on the CLI blocks of :class:`AppCliController`'s runs: they should train as fast."""
    tc = cfg.train
    cmd = [sys.executable, "-m", "explorer", "train", str(cfg.data.source), "--arch", cfg.arch]
    cmd += ["--epochs", str(tc.epochs), "--batch-size", str(tc.batch_size), "--seed", str(tc.seed)]
    cmd += ["--device", tc.device, "--out", run_dir]
    for key, value in (cfg.params or {}).items():
        text = ",".join(str(v) for v in value) if isinstance(value, list | tuple) else str(value)
        cmd += ["--set", f"{key}={text}"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the CLI run failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    metrics = json.loads((Path(run_dir) / runfolder.METRICS).read_text(encoding="utf-8"))
    return float(metrics.get("samples_per_second", 0.0))
