"""The ``model-explorer`` argument parser: one small function per command."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .common import key_value

__all__ = ["build_parser"]

_DEVICES = ["auto", "cpu", "cuda", "mps"]


class _Parser(argparse.ArgumentParser):
    """A parser that adds some of its arguments on first use (``late``).

    ``train``'s setting flags are generated from the engine's declarations, which import torch;
    adding them late keeps ``--version``, ``--help`` and the other commands' parsing light.
    """

    def __init__(
        self,
        *args: Any,
        late: Callable[[argparse.ArgumentParser], None] | None = None,
        keep_argv: str | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(*args, **kw)
        self._late = late
        self._keep_argv = keep_argv  # the attribute that receives the command's own arguments

    def complete(self) -> argparse.ArgumentParser:
        """Adds the late arguments now (idempotent); returns ``self``."""
        if self._late is not None:
            late, self._late = self._late, None
            late(self)
        return self

    def parse_known_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:
        ns, rest = super(_Parser, self.complete()).parse_known_args(args, namespace)
        if self._keep_argv is not None and args is not None:
            setattr(ns, self._keep_argv, list(args))
        return ns, rest

    def format_usage(self) -> str:
        return super(_Parser, self.complete()).format_usage()

    def format_help(self) -> str:
        return super(_Parser, self.complete()).format_help()


def _setting_flags(parser: argparse.ArgumentParser) -> None:
    from .flags import add_setting_flags

    add_setting_flags(parser)
    parser.add_argument("--config", type=Path, help="a RunConfig JSON file; flags override it")
    parser.add_argument("--out", type=Path, help="run folder to write (a new or empty folder)")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run in --out (kept intact until the new run has completed its first epoch)",
    )
    parser.add_argument(
        "--resume", type=Path, metavar="RUN_DIR", help="continue an interrupted run from its checkpoint"
    )
    parser.add_argument("--quiet", action="store_true", help="only the final summary")


def build_parser() -> argparse.ArgumentParser:
    from explorer import __version__

    p = argparse.ArgumentParser(
        prog="model-explorer",
        description="Build, train and look inside CNN, RNN and hybrid image models. Without a command, opens the app.",
    )
    p.add_argument("--version", action="version", version=f"model-explorer {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    a = sub.add_parser("archs", help="list architecture families, their parameters, defaults and ranges")
    a.add_argument("--json", action="store_true", help="one JSON document on stdout")
    _train(sub)
    _evaluate(sub)
    _predict(sub)
    _inspect(sub)
    _export(sub)
    _bench(sub)
    g = sub.add_parser("gui", help="open the app (optionally with a project or a folder)")
    g.add_argument("path", nargs="?")
    g.add_argument(
        "--follow",
        metavar="RUN_DIR",
        help="show live the run another process writes in RUN_DIR (a CLI or torchrun training); it may start later",
    )
    return p


def _train(sub: Any) -> None:
    t = sub.add_parser(
        "train",
        help="train a model on a folder, a manifest or a built-in sample",
        late=_setting_flags,
        keep_argv="train_argv",  # what --nproc-per-node hands on to torchrun
    )
    t.add_argument("data", nargs="?", help="folder, labels.csv, or sample:NAME (optional with --resume)")
    t.add_argument("--arch", default=None, help="architecture family (see `archs`); default cnn")
    t.add_argument(
        "--set",
        dest="params",
        action="append",
        default=[],
        type=key_value,
        metavar="KEY=VALUE",
        help="model parameter (repeatable)",
    )
    t.add_argument(
        "--nproc-per-node",
        type=int,
        metavar="N",
        help="train with N processes on this machine (torchrun --standalone; DistributedDataParallel, "
        "NCCL on CUDA, gloo on the CPU); --batch-size is per process. Several machines: see the README",
    )


def _evaluate(sub: Any) -> None:
    e = sub.add_parser("evaluate", help="measure a trained run on labelled data")
    e.add_argument("run_dir", type=Path)
    e.add_argument("data")
    e.add_argument("--json", action="store_true")
    e.add_argument("--device", default="cpu", choices=_DEVICES)


def _predict(sub: Any) -> None:
    pr = sub.add_parser("predict", help="predict images with a trained run")
    pr.add_argument("run_dir", type=Path)
    pr.add_argument("images", nargs="+")
    pr.add_argument("--json", action="store_true")
    pr.add_argument("--top", type=int, default=3, help="classes shown per image in text output")
    pr.add_argument("--beam", type=int, default=0, help="beam width for text decoding (0 = greedy)")
    pr.add_argument("--device", default="cpu", choices=_DEVICES)


def _inspect(sub: Any) -> None:
    ins = sub.add_parser("inspect", help="feature maps, hidden states, attention, CTC, Grad-CAM as PNG + npz")
    ins.add_argument("run_dir", type=Path)
    ins.add_argument("images", nargs="+")
    ins.add_argument("--out", type=Path, required=True, help="one sub-folder per image is written here")
    ins.add_argument("--target", help="class to explain with Grad-CAM (default: the predicted one)")
    ins.add_argument("--beam", type=int, default=1, help="caption runs: beam width of the decoded caption")
    ins.add_argument("--device", default="cpu", choices=_DEVICES)


def _export(sub: Any) -> None:
    ex = sub.add_parser("export", help="export a trained model (safetensors bundle, ONNX, torch.export)")
    ex.add_argument("run_dir", type=Path)
    ex.add_argument("--format", required=True, choices=["safetensors", "onnx", "pt2"])
    ex.add_argument("--out", type=Path, required=True, help="model file; its JSON is written beside it")
    ex.add_argument("--no-verify", action="store_true", help="skip the onnxruntime check of an ONNX export")


def _bench(sub: Any) -> None:
    b = sub.add_parser("bench", help="benchmarks")
    bsub = b.add_subparsers(dest="bench", metavar="WHAT", required=True)
    bt = bsub.add_parser("train", help="engine training time vs a bare PyTorch loop on the same work")
    bt.add_argument("data", nargs="?", default="sample:shapes")
    bt.add_argument("--arch", default="cnn")
    bt.add_argument("--set", dest="params", action="append", default=[], type=key_value, metavar="KEY=VALUE")
    bt.add_argument("--epochs", type=int, default=5)
    bt.add_argument("--batch-size", type=int, default=32)
    bt.add_argument("--repeats", type=int, default=3)
    bt.add_argument("--device", default="auto", choices=_DEVICES)
    bt.add_argument("--json", action="store_true")

    bu = bsub.add_parser("ui", help="event-loop stalls of the app while the real worker trains")
    bu.add_argument("--data", default="sample:shapes")
    bu.add_argument("--arch", default="cnn", help="the model trained with the views open")
    bu.add_argument("--set", dest="params", action="append", default=[], type=key_value, metavar="KEY=VALUE")
    bu.add_argument("--epochs", type=int, default=2)
    bu.add_argument("--device", default="auto", choices=_DEVICES)
    bu.add_argument(
        "--no-overhead",
        action="store_true",
        help="skip measuring the probe overhead (runs probed in every other block of steps)",
    )
    bu.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="app runs (app and CLI blocks alternating) and probe-overhead runs, pooled",
    )
    bu.add_argument(
        "--block",
        type=int,
        default=8,
        help="steps per block of an app run: trained as the app, then as the CLI, and so on",
    )
    bu.add_argument("--json", action="store_true")
