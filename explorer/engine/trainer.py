"""The one training loop, for the CLI and the UI alike, for every task.

``Trainer(config, out_dir).run()`` is a generator of :mod:`explorer.engine.events`.
Each ``yield`` is a chance for the consumer to draw. The trainer never sleeps and never
calls the UI. Its :class:`~explorer.engine.control.RunControl` (``trainer.control``) is
the one owner of the run's state: a consumer on any thread asks it (state, progress)
and sends it requests (stop, pause, resume, which images to probe); the loop checks it
between batches, of training and of validation.

The loop is assembled from parts: the training step (:mod:`.step`), validation
(:mod:`.validation`), checkpointing (:mod:`.checkpoint`), reporting (:mod:`.reporting`);
early stopping and probes are hooks (:mod:`.hooks`). What differs between tasks (data
preparation, batches, loss, validation figures) comes from a :class:`~explorer.engine.tasks.Task`.

Resuming is exact: a run stopped after epoch k (or during epoch k+1, its validation
included) and resumed produces the same weights as an uninterrupted run (same device),
because the checkpoint holds the model, the optimizer, the step counter and every
random generator.

Under torchrun the same loop runs in every process (:mod:`.distributed`): each rank trains
on its shard of every epoch through DistributedDataParallel, the step figures are summed
over the ranks, rank 0 validates and writes the run folder, and every decision that ends
an epoch or the run (stop, a non-finite loss, early stopping, a failed save) is rank 0's
or all ranks', shared, so that no rank waits forever for the others.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from explorer.data import Source, budget_note, open_source, release_free_heap, reuse_freed_heap

from . import checkpoint, runfolder
from .config import ConfigError, RunConfig
from .control import FINISHED, PREPARING, TRAINING, RunControl, StopGuard
from .device import describe_device
from .distributed import Distributed, from_env
from .events import DataReady, EpochReport, Event, Finished, ModelReady, Status
from .hooks import EarlyStopping, Hook, ProbeHook
from .preprocess import Preprocess
from .reporting import EpochMeter, epoch_report
from .resources import check_before_decoding, is_out_of_memory
from .runwriter import RunWriter, SaveFailed, describe_os_error
from .session import PRENORMALIZE_LIMIT_BYTES, Session, batch_indices, build_optimizer
from .step import NonFinite, train_step
from .tasks import Evaluation, PreparedData, Task, detect_task, get_task
from .validation import ValidationStopped, final_evaluation, keep_evaluation, validate

__all__ = ["Trainer", "TrainingError", "build_optimizer", "batch_indices"]


class TrainingError(RuntimeError):
    """Training cannot go on; the message says why and what to try."""


class _StoppedWhileLoading(Exception):
    pass


class _Stopped(Exception):
    """A stop request ended the epoch in progress (``where``: training or validation)."""

    def __init__(self, where: str) -> None:
        super().__init__(where)
        self.where = where


def _stop_training() -> _Stopped:
    return _Stopped("training")


class Trainer:
    """Runs one training job described by a :class:`RunConfig`.

    Args:
        config: what to train on, which model, how.
        out_dir: the run folder (created); None trains without writing anything.
        source: an already scanned source (the UI's dataset); default opens ``config.data.source``.
        resume: continue the run in ``out_dir`` from its checkpoint.
        report_interval: seconds between :class:`StepReport` events (0 = every step).
        control: the run's state owner; give one when a front end must be able to stop or
            pause the run before the trainer exists (the UI's worker); default: a new one.
        overwrite: replace the run in ``out_dir``. Without it, a new run refuses an
            existing run folder (see :mod:`explorer.engine.ownership`); the old run stays
            intact until the new one has completed its first epoch save.
        dist: this process's place in a distributed run; default: from torchrun's
            environment variables (none: a normal, single-process run). Only rank 0 takes
            the run folder's lock and writes.
    """

    def __init__(
        self,
        config: RunConfig,
        out_dir: str | os.PathLike[str] | None = None,
        *,
        source: Source | None = None,
        resume: bool = False,
        report_interval: float = 0.25,
        control: RunControl | None = None,
        overwrite: bool = False,
        dist: Distributed | None = None,
    ) -> None:
        config.validate()
        if resume and out_dir is None:
            raise ConfigError("resume", "resuming needs the run folder")
        self.config = config
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.source = source
        self.resume = resume
        self.overwrite = overwrite
        self.dist = dist if dist is not None else from_env()
        self.writer = RunWriter(self.out_dir if self.dist.is_main else None, resume=resume, overwrite=overwrite)
        self.report_interval = report_interval
        self.control = control if control is not None else RunControl()
        self.task: Task | None = None
        self.model: torch.nn.Module | None = None
        self.data: PreparedData | None = None

    # -- asking and requests (thread-safe; all answered by the run control) ---------------------
    def request_stop(self) -> None:
        self.control.request_stop()

    def request_pause(self) -> None:
        self.control.pause()

    def request_resume(self) -> None:
        self.control.resume()

    def set_probe_paths(self, paths: Sequence[str]) -> None:
        """See :meth:`RunControl.set_probe_paths`."""
        self.control.set_probe_paths(paths)

    @property
    def stop_requested(self) -> bool:
        return self.control.stop_requested

    @property
    def data_progress(self) -> tuple[int, int]:
        """(decoded, total) files while reading data, for a progress bar."""
        p = self.control.progress
        return p.data_done, p.data_total

    def _on_data_progress(self, done: int, total: int) -> None:
        """Called by the data layer after each decoded file; lets Stop cut a long load short."""
        self.control.update(data_done=done, data_total=total)
        if self.control.stop_requested:
            raise _StoppedWhileLoading

    # -- the run -----------------------------------------------------------------------------
    def run(self) -> Iterator[Event]:
        """Prepare data and model, train epoch by epoch, finish; yields events throughout."""
        self.control.set_phase(PREPARING)
        joined = self.dist.enabled and not self.dist.started
        try:
            self.dist.start()
            with self.writer:
                events = self._run()
                try:
                    for ev in events:  # every event also goes to the run's event log (followers)
                        self.writer.log(ev)
                        yield ev
                except Exception as e:
                    self.writer.log(Finished(status="failed", message=str(e), metrics={}, run_dir=self._run_dir()))
                    raise
                finally:
                    events.close()
        finally:
            release_free_heap()  # what the steps kept for reuse (the app's process lives on)
            self.control.set_phase(FINISHED)
            if joined:
                self.dist.stop()

    def _run(self) -> Iterator[Event]:
        for note in self.writer.notes:
            yield Status(note)
        resume = checkpoint.read_resume(self.out_dir) if self.resume and self.out_dir is not None else None
        if resume and resume["note"]:
            yield Status(resume["note"])
        note = budget_note(self.config.data.memory_budget)
        if note:
            yield Status(note)
        yield Status("reading data")
        data = yield from self._prepare(resume)
        if data is None:
            return
        assert self.task is not None
        for what, n in (("training images", len(data.train)), ("validation images", len(data.val))):
            self.dist.check_same("data.source", what, n)
        self.dist.check_same("data.source", "labels", len(data.labels))
        s = Session(self.config, self.writer.write_dir, self.task, data, resume, self.dist)
        self.model = s.model
        try:
            checkpoint.write_run_config(s)
        except OSError as e:
            raise TrainingError(f"cannot write the run folder: {describe_os_error(e)}") from None
        tc = self.config.train
        self.control.update(epochs=tc.epochs, global_step=s.state.global_step, epoch=s.state.epoch)
        yield ModelReady(
            arch=self.config.arch,
            params=s.params,
            num_parameters=sum(p.numel() for p in s.model.parameters()),
            device=describe_device(s.device),
            start_epoch=s.state.epoch,
        )
        if s.state.epoch >= tc.epochs:
            yield Status(f"the run already completed {s.state.epoch} of {tc.epochs} epochs")
        self.control.set_phase(TRAINING)
        status, message = yield from self._fit(s)
        noted = len(self.writer.notes)
        metrics = self._finish(s, status)
        # the other ranks end after rank 0 has written: torchrun ends every process as soon
        # as one exits with an error status (a stopped or failed run)
        self.dist.barrier()
        notes = [message, *self.writer.notes[noted:]]
        if self.out_dir is not None and not self.writer.has_run and "Nothing was written" not in message:
            notes.append(f"Nothing was written to {self.out_dir} (a new run appears there after its first epoch).")
        message = " ".join(n for n in notes if n)
        yield Finished(status=status, message=message, metrics=metrics, run_dir=self._run_dir())

    def _run_dir(self) -> str | None:
        return str(self.out_dir) if self.out_dir and self.writer.has_run else None

    def _prepare(self, resume: dict[str, Any] | None) -> Generator[Event, None, PreparedData | None]:
        """Reads the data (the stored labels and input contract when resuming); None when stopped."""
        cfg = self.config
        source = self.source if self.source is not None else open_source(cfg.data.source)
        task = self.task = get_task(detect_task(source, cfg.data.task))
        if not resume:
            check_before_decoding(cfg, task, len(source.samples), PRENORMALIZE_LIMIT_BYTES)
        stored = resume["config"] if resume else {}
        try:
            data = self.data = task.prepare(
                source,
                cfg.data,
                seed=cfg.train.seed,
                labels=stored.get("labels"),
                preprocess=Preprocess.from_dict(stored["preprocess"]) if resume else None,
                extra=stored.get("task_extra"),
                progress=self._on_data_progress,
            )
        except _StoppedWhileLoading:
            done, total = self.data_progress
            yield Finished(
                status="stopped",
                message=f"stopped by request while reading data ({done} of {total} files)",
                metrics={"status": "stopped", "epochs": 0},
                run_dir=self._run_dir(),
            )
            return None
        release_free_heap()  # what the data phase freed: decode threads' buffers, the cache index, per-file records
        reuse_freed_heap()  # the steps free and allocate the same tensors: keep them, not fault them in again
        yield DataReady(
            task=data.task,
            labels=list(data.labels),
            train_samples=len(data.train),
            val_samples=len(data.val),
            input_shape=data.preprocess.input_shape(),
            problems=list(data.problems),
            seconds=data.seconds,
        )
        if len(data.train) < 2:
            raise ConfigError(
                "data.source", f"only {len(data.train)} training image(s) left after the validation split"
            )
        return data

    def hooks(self) -> list[Hook]:
        """The hooks of a run, in calling order."""
        tc = self.config.train
        probes = tc.probe_interval if self.dist.is_main else 0.0  # the other ranks show nothing
        return [EarlyStopping(tc.early_stopping), ProbeHook(probes, self.control)]

    def _fit(self, s: Session) -> Generator[Event, None, tuple[str, str]]:
        """The epochs, with a :class:`StopGuard` on the model; returns (status, message) for :class:`Finished`."""
        self._guard = StopGuard(self.control).attach(s.model)
        try:
            return (yield from self._fit_epochs(s))
        finally:
            self._guard.detach()

    def _fit_epochs(self, s: Session) -> Generator[Event, None, tuple[str, str]]:
        hooks = self.hooks()
        epoch = s.state.epoch
        try:
            for epoch in range(s.state.epoch + 1, s.tc.epochs + 1):
                report = yield from self._epoch(s, epoch, hooks)
                yield report
                for hook in hooks:
                    decision = hook.on_epoch_end(s, report)
                    if decision is not None:
                        return decision.status, decision.message
        except _Stopped as e:
            s.model.load_state_dict(s.last_good)  # back to the state the checkpoint holds
            where = " (validation)" if e.where == "validation" else ""
            return "stopped", f"stopped by request during epoch {epoch}{where}"
        except NonFinite as e:
            s.model.load_state_dict(s.last_good)
            return "failed", e.message(s.state.epoch)
        except SaveFailed as e:
            s.model.load_state_dict(s.last_good)
            return "failed", f"training stopped: {e}. {self.writer.where(s.state.epoch)} Free some space and resume."
        except Exception as e:
            if not is_out_of_memory(e) or s.dist.enabled:  # distributed: the rank fails, torchrun ends the others
                raise
            return "failed", self._out_of_memory(s, epoch, e)
        return "completed", ""

    def _out_of_memory(self, s: Session, epoch: int, e: BaseException) -> str:
        """Back to the last good weights after an out-of-memory; the message for Finished."""
        if s.device.type == "cuda":
            torch.cuda.empty_cache()
        s.model.load_state_dict(s.last_good)
        x = s.train.x
        size = f"{x.shape[1]}x{x.shape[2]}" if x.dim() >= 3 else "?"
        where = self.writer.where(s.state.epoch) if self.writer.dest is not None else ""
        return (
            f"training stopped: out of memory on {s.device.type} during epoch {epoch} (batch size {s.tc.batch_size}, "
            f"images {size}; {type(e).__name__}). {where} Try a smaller --batch-size or --image-size."
        ).replace("  ", " ")

    # -- one epoch ---------------------------------------------------------------------------
    def _epoch(self, s: Session, epoch: int, hooks: list[Hook]) -> Generator[Event, None, EpochReport]:
        """Yields step reports and hook events; returns the epoch's report (raises _Stopped)."""
        control = self.control
        s.model.train()
        batches = s.epoch_batches(torch.randperm(len(s.train), generator=s.shuffle_gen))
        meter = EpochMeter(s.device, len(batches))
        control.update(epoch=epoch, step=0, steps=len(batches))
        distributed = s.dist.enabled
        for step, idx in enumerate(batches, 1):
            if control.pause_requested:
                yield from self._hold(meter)
            if control.stop_requested and not distributed:
                raise _Stopped("training")
            # a stop cuts the step short; last_good is restored. Not in a distributed run: the
            # ranks stop together, after the step, when the step's figures say any rank asked.
            self._guard.raising = None if distributed else _stop_training
            try:
                lw, correct, bs = train_step(s, idx)
            finally:
                self._guard.raising = None
            lw, correct, bs, stop = s.dist.reduce_step(lw, correct, bs, distributed and control.stop_requested)
            if stop:
                raise _Stopped("training")
            s.state.samples_seen += bs
            meter.add(lw, correct, bs)
            if s.check_every_step and not math.isfinite(float(lw)):
                raise NonFinite(epoch, step, float(lw) / bs, s.lr)
            control.update(step=step, global_step=s.state.global_step)
            if meter.due(step, self.report_interval):
                yield meter.step_report(s, epoch, step, s.lr)
                meter.reported()
            for hook in hooks:
                yield from hook.on_step(s, epoch)
        return self._end_epoch(s, epoch, meter)

    def _hold(self, meter: EpochMeter) -> Iterator[Event]:
        """Blocks (on an event, not spinning) while paused; the time held is not training time."""
        yield Status("paused")
        meter.paused_for(self.control.hold())
        if not self.control.stop_requested:
            yield Status("resumed")

    def _end_epoch(self, s: Session, epoch: int, meter: EpochMeter) -> EpochReport:
        """Validation, best-epoch bookkeeping, report and checkpoint of a trained epoch."""
        figures = meter.close(s, epoch)
        ev, val_loss = self._validate(s, epoch, meter)
        before = copy.deepcopy(s.state), s.best_state
        improved = checkpoint.record_best(s, epoch, val_loss)
        s.state.epoch = epoch
        keep_evaluation(s, epoch, ev)
        report = epoch_report(s, epoch, meter, figures, ev, improved)
        s.state.history.append(report.to_dict())
        failed: SaveFailed | None = None
        try:
            self.writer.save_epoch(s, epoch)
        except SaveFailed as e:
            failed = e
        (saved,) = s.dist.share([0.0 if failed else 1.0])  # the other ranks end with rank 0
        if failed is not None or not saved:
            s.state, s.best_state = before  # the run is what the folder holds: the epoch before
            raise failed or SaveFailed(epoch, OSError("rank 0 could not save the run folder"))
        s.last_good = copy.deepcopy(s.model.state_dict())
        return report

    def _validate(self, s: Session, epoch: int, meter: EpochMeter) -> tuple[Evaluation | None, float | None]:
        """The epoch's validation and its loss (None without a validation set). In a distributed
        run rank 0 validates on the whole validation set and the other ranks get its outcome
        (loss, a stop, a non-finite loss), so that every rank decides the same."""
        ev, outcome, problem = None, 0.0, None
        if s.dist.is_main:
            try:
                ev = validate(s, self.control, epoch, meter.steps, self._guard)
            except ValidationStopped:
                outcome = 1.0
            except NonFinite as e:
                outcome, problem = 2.0, e
        code, loss, has_loss = s.dist.share(
            [outcome, ev.loss if ev is not None else math.nan, 1.0 if ev is not None else 0.0]
        )
        if code == 1.0:
            raise _Stopped("validation")
        if code == 2.0:
            raise problem or NonFinite(epoch, meter.steps, loss, s.lr)
        if ev is None and has_loss:
            return None, loss
        return ev, ev.loss if ev is not None else None

    # -- the end -----------------------------------------------------------------------------
    def _finish(self, s: Session, status: str) -> dict[str, Any]:
        """Restore the best weights, measure them on validation, write weights and metrics."""
        state, model = s.state, s.model
        restored_best = bool(s.tc.restore_best and len(s.val) and state.best_epoch)
        if restored_best:
            model.load_state_dict(s.best_state)
        else:  # the model holds last_good (the last saved epoch, restored after a stop): no copy
            s.best_state = s.last_good
        metrics: dict[str, Any] = {
            "status": status,
            "task": s.data.task,
            "epochs": state.epoch,
            "best_epoch": state.best_epoch or state.epoch,
            "train_seconds": round(state.train_seconds, 3),
            "data_seconds": round(s.data.seconds, 3),
            "samples_per_second": round(state.samples_seen / state.train_seconds, 2) if state.train_seconds else 0.0,
            "device": describe_device(s.device),
            "train_samples": len(s.train),
            "val_samples": len(s.val),
            "num_parameters": sum(p.numel() for p in model.parameters()),
            "world_size": s.dist.world_size,
        }
        try:  # rank 0 measures; the other ranks of a distributed run write nothing
            ev = final_evaluation(s, status, restored_best) if s.dist.is_main else None
        except Exception as e:
            if not is_out_of_memory(e):
                raise
            ev = None
            self.writer.notes.append("out of memory while measuring the final weights; no final figures")
        if ev is not None:
            final = s.task.final_metrics(ev, s.data.labels)
            if final.get("val_loss") is not None and not math.isfinite(final["val_loss"]):
                final["val_loss"] = None
            metrics.update(final)
        metrics["labels"] = list(s.data.labels)
        if self.writer.has_run:
            if state.epoch > 0 and not self.writer.saves:  # else the last epoch save holds these weights
                self.writer.write(runfolder.WEIGHTS, lambda: checkpoint.save_weights(s))
            self.writer.write(runfolder.METRICS, lambda: runfolder.write_metrics(s.out_dir, metrics))
        return metrics
