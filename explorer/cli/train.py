"""``model-explorer train``: a run config from ``--config`` and flags, the trainer, a progress line.

Under torchrun every process runs this command; rank 0 prints and writes the run folder, the
other ranks print only their own unexpected failures. ``--nproc-per-node N`` starts torchrun
itself (one node) with the rest of the command line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from .common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, Usage, check_data_path

__all__ = ["cmd_train", "train_config"]


def train_config(args: argparse.Namespace) -> Any:
    """The :class:`~explorer.engine.RunConfig` of a new run: ``--config`` (or defaults), then flags.

    Raises:
        ConfigError: naming the setting or flag.
    """
    from explorer.engine import ConfigError, RunConfig
    from explorer.engine.atomic import read_json

    from .flags import apply_composites, apply_flags, given

    if args.config is not None:
        _check_regular_file(args.config, "--config")
        try:
            cfg = RunConfig.from_dict(read_json(args.config))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ConfigError("--config", f"cannot read {args.config}: {e}") from None
        except ConfigError as e:  # name the file too
            raise ConfigError(f"{args.config}: {e.key}", str(e).split(": ", 1)[-1]) from None
    else:
        cfg = RunConfig()
    if args.data:
        cfg.data.source = args.data
    if args.arch:
        if args.arch != cfg.arch:
            cfg.params = {}
        cfg.arch = args.arch
    cfg.params.update(dict(args.params))
    apply_flags(cfg, given(args))
    apply_composites(cfg, args)
    cfg.validate()
    return cfg


def _check_regular_file(path: Path, flag: str) -> None:
    """A FIFO, device or socket is never opened for reading (it could block forever)."""
    from explorer.engine import ConfigError

    try:
        mode = path.stat().st_mode
    except OSError as e:
        raise ConfigError(flag, f"cannot read {path}: {e.strerror or e}") from None
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file (a pipe, device or socket)"
        raise ConfigError(flag, f"{path} is {kind}; give a JSON file")


def _resume_config(args: argparse.Namespace) -> Any:
    """The stored config of ``--resume RUN_DIR``; only ``--epochs``, ``--device`` and DATA change it."""
    from explorer.engine.runcheck import check_resume_config
    from explorer.engine.runfolder import CONFIG, RunFolderError, read_config

    from .flags import apply_flags, given

    stored = read_config(args.resume)
    cfg = check_resume_config(stored, args.resume / CONFIG)
    values = given(args)
    apply_flags(cfg, {k: values[k] for k in ("train.epochs", "train.device") if k in values})
    if args.data:
        cfg.data.source = args.data
    if not cfg.data.source:
        raise RunFolderError(
            f"{args.resume / CONFIG}: data.source: not recorded; give the data again: train DATA --resume RUN_DIR"
        )
    return cfg


class _Progress:
    """A one-line bar on a terminal; plain lines (one per epoch) when piped."""

    def __init__(self, stream: TextIO, quiet: bool) -> None:
        self.stream = stream
        self.quiet = quiet
        self.tty = stream.isatty()
        self._open = False

    def line(self, text: str) -> None:
        if self.quiet:
            return
        if self._open:
            self._control("\r\x1b[K")
            self._open = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def bar(self, r: Any) -> None:
        if self.quiet or not self.tty:
            return
        width = 24
        done = int(width * r.step / max(r.steps, 1))
        eta = _fmt_seconds(r.eta)
        text = (
            f"epoch {r.epoch}/{r.epochs} [{'#' * done}{'.' * (width - done)}] {r.step}/{r.steps} "
            f"loss {r.loss:.4f} acc {r.accuracy:.3f} {r.samples_per_second:.0f} img/s ETA {eta}"
        )
        self._control("\r\x1b[K")
        self.stream.write(text)
        self.stream.flush()
        self._open = True

    def _control(self, text: str) -> None:
        """The bar's own terminal codes (a :class:`~.output.SafeStream` would escape them)."""
        getattr(self.stream, "control", self.stream.write)(text)


def _fmt_seconds(s: float) -> str:
    if not math.isfinite(s):
        return "?"
    s = int(s)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def _report(ev: Any, progress: _Progress, err: TextIO) -> None:
    """Shows one trainer event (all but :class:`~explorer.engine.Finished`)."""
    from explorer.engine import DataReady, EpochReport, ModelReady, Status, StepReport

    if isinstance(ev, StepReport):
        progress.bar(ev)
    elif isinstance(ev, EpochReport):
        val = f" val_loss {ev.val_loss:.4f} val_acc {ev.val_accuracy:.4f}" if ev.val_loss is not None else ""
        progress.line(
            f"epoch {ev.epoch}/{ev.epochs} loss {ev.train_loss:.4f} acc {ev.train_accuracy:.4f}{val} "
            f"lr {ev.lr:.2e} {ev.seconds:.1f}s {ev.samples_per_second:.0f} img/s{' *' if ev.best else ''}"
        )
    elif isinstance(ev, DataReady):
        for problem in ev.problems:
            err.write(f"skipped {problem}\n")
        c, h, w = ev.input_shape
        progress.line(
            f"data: {ev.train_samples} training, {ev.val_samples} validation images, {len(ev.labels)} classes, "
            f"input {c}x{h}x{w}, {len(ev.problems)} unusable files ({ev.seconds:.1f}s)"
        )
    elif isinstance(ev, ModelReady):
        start = f", resuming after epoch {ev.start_epoch}" if ev.start_epoch else ""
        progress.line(f"model: {ev.arch}, {ev.num_parameters:,} parameters, device {ev.device}{start}")
    elif isinstance(ev, Status):
        progress.line(ev.message)


def _run(trainer: Any, progress: _Progress, err: TextIO) -> Any:
    """Runs ``trainer`` to its end; the first Ctrl-C asks it to stop, the second aborts."""
    from explorer.engine import Finished

    def on_sigint(signum: int, frame: Any) -> None:
        if trainer.stop_requested:
            raise KeyboardInterrupt
        progress.line("stopping after this batch (Ctrl-C again to abort)...")
        trainer.request_stop()

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_sigint) if main_thread else None
    finished: Any = None
    try:
        for ev in trainer.run():
            if isinstance(ev, Finished):
                finished = ev
            else:
                _report(ev, progress, err)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    assert finished is not None
    return finished


def _summary(finished: Any, out_dir: Path, out: TextIO, err: TextIO) -> int:
    m = finished.metrics
    summary = f"{finished.status}: {m.get('epochs', 0)} epochs"
    if "train_seconds" in m:
        summary += f", {m['train_seconds']:.1f}s, {m['samples_per_second']:.0f} img/s on {m['device']}"
    if m.get("val_accuracy") is not None:
        summary += f"; val_accuracy {m['val_accuracy']:.4f} (best epoch {m['best_epoch']})"
    out.write(summary + "\n")
    if finished.message:
        err.write(finished.message + "\n")
    if finished.run_dir is not None:
        out.write(f"run folder: {out_dir}\n")
    return _exit_code(finished.status)


def _exit_code(status: str) -> int:
    if status == "failed":
        return EXIT_FAILED
    if status == "stopped":
        return EXIT_INTERRUPTED
    return EXIT_OK


def cmd_train(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from explorer.engine.distributed import from_env

    if args.nproc_per_node is not None:
        return _launch(args.nproc_per_node, getattr(args, "train_argv", []))
    dist = from_env()
    dist.start()
    previous = _end_on_sigterm(dist, err) if dist.enabled else None
    try:
        return _train(args, dist, out, err)
    except Exception as e:
        if dist.enabled and _lost_contact(e):
            err.write(
                f"model-explorer train: rank {dist.rank} of {dist.world_size} lost contact with the other "
                f"processes (one failed or was ended: see its message). {_KEEPS}\n"
            )
            return EXIT_FAILED
        if not dist.is_main:
            return _other_rank_failed(dist, e, err)
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        dist.stop()


_KEEPS = "The run folder keeps its last completed epoch; train --resume RUN_DIR continues it."


def _lost_contact(e: Exception) -> bool:
    """A collective failed because another process went away: torch.distributed's errors, and
    gloo's, which reach Python as a RuntimeError from its transport."""
    import torch.distributed as torch_dist

    if isinstance(e, torch_dist.DistError):
        return True
    text = str(e)
    return isinstance(e, RuntimeError) and "gloo" in text and "Connection closed by peer" in text


def _end_on_sigterm(dist: Any, err: TextIO) -> Any:
    """torchrun ends the other processes with SIGTERM when one fails: rank 0 says so, and every
    rank leaves through its ``finally`` blocks (the run folder's lock, the process group)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def on_sigterm(signum: int, frame: Any) -> None:
        if dist.is_main:
            err.write(
                f"model-explorer train: rank {dist.rank} of {dist.world_size} was ended by torchrun "
                f"(another process failed or the job was stopped). {_KEEPS}\n"
            )
        raise SystemExit(128 + signal.SIGTERM)

    return signal.signal(signal.SIGTERM, on_sigterm)


def _train(args: argparse.Namespace, dist: Any, out: TextIO, err: TextIO) -> int:
    from explorer.engine import Trainer

    if args.resume is not None:
        from explorer.engine.ownership import recover_now

        if dist.is_main:
            recover_now(args.resume)  # a run a killed --overwrite had moved aside comes back first
        dist.barrier()  # ... before any rank reads it
        cfg, out_dir = _resume_config(args), args.resume
    else:
        if not args.data:
            raise Usage("train: DATA is required (a folder, labels.csv or sample:NAME), unless --resume RUN_DIR")
        if args.out is None:
            raise Usage("train: --out RUN_DIR is required")
        check_data_path(args.data)
        cfg, out_dir = train_config(args), args.out
    trainer = Trainer(cfg, out_dir, resume=args.resume is not None, overwrite=args.overwrite, dist=dist)
    finished = _run(trainer, _Progress(err, args.quiet or not dist.is_main), err)
    if not dist.is_main:  # the same decisions as rank 0, which reports them
        return _exit_code(finished.status)
    return _summary(finished, out_dir, out, err)


def _other_rank_failed(dist: Any, e: Exception, err: TextIO) -> int:
    """A rank other than 0 failed: an error every rank meets (bad input) is rank 0's to
    report; anything else is this rank's own, named, and re-raised for ``main`` to report."""
    from explorer.data import DataError, DecodeError
    from explorer.engine import ConfigError, RunFolderError
    from models import ParamError

    if isinstance(e, ConfigError | ParamError | DataError | DecodeError | RunFolderError | Usage):
        return EXIT_USAGE
    err.write(f"model-explorer train: rank {dist.rank} of {dist.world_size} failed:\n")
    raise e


def _launch(nproc: int, argv: Sequence[str]) -> int:
    """``train --nproc-per-node N``: torchrun (one node, ``--standalone``) runs ``explorer train``
    with the rest of the command line in N processes; returns torchrun's exit code."""
    from explorer.engine import ConfigError

    if "WORLD_SIZE" in os.environ:
        raise Usage("train: --nproc-per-node starts torchrun; a process started by torchrun cannot use it")
    if nproc < 1:
        raise ConfigError("--nproc-per-node", f"expected at least 1 process, got {nproc}")
    rest = without_nproc(argv)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    cmd += ["-m", "explorer", "train", *rest]
    proc = subprocess.Popen(cmd)
    try:
        return proc.wait()
    except KeyboardInterrupt:  # torchrun got the Ctrl-C too and ends its workers
        proc.wait()
        return EXIT_INTERRUPTED


def without_nproc(argv: Sequence[str]) -> list[str]:
    """``argv`` without ``--nproc-per-node N`` / ``--nproc-per-node=N``."""
    rest, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc-per-node":
            skip = True
        elif not arg.startswith("--nproc-per-node="):
            rest.append(arg)
    return rest
