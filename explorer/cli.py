"""``model-explorer``: the headless front door, over the same engine as the app.

With no subcommand it opens the desktop app. Exit codes: 0 success, 1 the work ran
but failed (training diverged, some images could not be read), 2 bad usage or
input (the message names the parameter or file), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

__all__ = ["main", "build_parser"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


# -- parser -------------------------------------------------------------------------------


def _key_value(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    k, v = text.split("=", 1)
    return k.strip(), v.strip()


def build_parser() -> argparse.ArgumentParser:
    from explorer import __version__

    p = argparse.ArgumentParser(
        prog="model-explorer",
        description="Build, train and look inside CNN, RNN and hybrid image models. Without a command, opens the app.",
    )
    p.add_argument("--version", action="version", version=f"model-explorer {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    a = sub.add_parser("archs", help="list architecture families, their parameters, defaults and ranges")
    a.add_argument("--json", action="store_true", help="one JSON document on stdout")

    t = sub.add_parser("train", help="train a model on a folder, a manifest or a built-in sample")
    t.add_argument("data", nargs="?", help="folder, labels.csv, or sample:NAME (optional with --resume)")
    t.add_argument("--arch", default=None, help="architecture family (see `archs`); default cnn")
    t.add_argument(
        "--task",
        default=None,
        choices=["auto", "classify", "sequence", "caption"],
        help="default: detected from the data",
    )
    t.add_argument(
        "--set",
        dest="params",
        action="append",
        default=[],
        type=_key_value,
        metavar="KEY=VALUE",
        help="model parameter (repeatable)",
    )
    t.add_argument("--epochs", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float, help="peak learning rate (default 1e-3)")
    t.add_argument("--optimizer", choices=["adam", "adamw", "sgd"])
    t.add_argument("--schedule", choices=["none", "step", "cosine", "onecycle"])
    t.add_argument("--weight-decay", type=float)
    t.add_argument("--grad-clip", type=float, help="max gradient norm (0 = off)")
    t.add_argument("--early-stopping", type=int, metavar="PATIENCE", help="epochs without a better validation loss")
    t.add_argument("--val-fraction", type=float, help="held-out fraction for validation (default 0.2)")
    t.add_argument("--image-size", metavar="HxW", help="model input size, e.g. 32x32 (default: from the data)")
    t.add_argument("--color", choices=["auto", "gray", "rgb"])
    t.add_argument(
        "--augment",
        action="append",
        default=[],
        type=_key_value,
        metavar="KEY=VALUE",
        help="augmentation, e.g. hflip=true rotate=10 shift=0.1 noise=0.02 (repeatable)",
    )
    t.add_argument(
        "--regress",
        action="append",
        default=[],
        metavar="COLUMN",
        help="multi-task: also predict this numeric labels.csv column (repeatable)",
    )
    t.add_argument("--regression-weight", type=float, help="weight of the regression loss (default 1.0)")
    t.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"])
    t.add_argument("--seed", type=int)
    t.add_argument("--no-amp", action="store_true", help="no mixed precision on CUDA")
    t.add_argument("--config", type=Path, help="a RunConfig JSON file; flags override it")
    t.add_argument("--out", type=Path, help="run folder to write")
    t.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue an interrupted run from its checkpoint")
    t.add_argument("--quiet", action="store_true", help="only the final summary")

    e = sub.add_parser("evaluate", help="measure a trained run on labelled data")
    e.add_argument("run_dir", type=Path)
    e.add_argument("data")
    e.add_argument("--json", action="store_true")
    e.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda", "mps"])

    pr = sub.add_parser("predict", help="predict images with a trained run")
    pr.add_argument("run_dir", type=Path)
    pr.add_argument("images", nargs="+")
    pr.add_argument("--json", action="store_true")
    pr.add_argument("--top", type=int, default=3, help="classes shown per image in text output")
    pr.add_argument("--beam", type=int, default=0, help="beam width for text decoding (0 = greedy)")
    pr.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda", "mps"])

    ins = sub.add_parser("inspect", help="feature maps, hidden states, attention, CTC, Grad-CAM as PNG + npz")
    ins.add_argument("run_dir", type=Path)
    ins.add_argument("images", nargs="+")
    ins.add_argument("--out", type=Path, required=True, help="one sub-folder per image is written here")
    ins.add_argument("--target", help="class to explain with Grad-CAM (default: the predicted one)")
    ins.add_argument("--beam", type=int, default=1, help="caption runs: beam width of the decoded caption")
    ins.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda", "mps"])

    ex = sub.add_parser("export", help="export a trained model (safetensors bundle, ONNX, torch.export)")
    ex.add_argument("run_dir", type=Path)
    ex.add_argument("--format", required=True, choices=["safetensors", "onnx", "pt2"])
    ex.add_argument("--out", type=Path, required=True, help="model file; its JSON is written beside it")
    ex.add_argument("--no-verify", action="store_true", help="skip the onnxruntime check of an ONNX export")

    b = sub.add_parser("bench", help="benchmarks")
    bsub = b.add_subparsers(dest="bench", metavar="WHAT", required=True)
    bt = bsub.add_parser("train", help="engine training time vs a bare PyTorch loop on the same work")
    bt.add_argument("data", nargs="?", default="sample:shapes")
    bt.add_argument("--arch", default="cnn")
    bt.add_argument("--set", dest="params", action="append", default=[], type=_key_value, metavar="KEY=VALUE")
    bt.add_argument("--epochs", type=int, default=5)
    bt.add_argument("--batch-size", type=int, default=32)
    bt.add_argument("--repeats", type=int, default=3)
    bt.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    bt.add_argument("--json", action="store_true")

    bu = bsub.add_parser("ui", help="event-loop stalls of the app while the real worker trains")
    bu.add_argument("--data", default="sample:shapes")
    bu.add_argument("--epochs", type=int, default=2)
    bu.add_argument("--json", action="store_true")

    g = sub.add_parser("gui", help="open the app (optionally with a project or a folder)")
    g.add_argument("path", nargs="?")
    return p


# -- commands -----------------------------------------------------------------------------


def cmd_archs(args: argparse.Namespace, out: TextIO) -> int:
    from models import list_models, model_info

    families = []
    for name in list_models():
        info = model_info(name)
        families.append(
            {
                "name": name,
                "description": info.description,
                "tasks": list(info.tasks),
                "params": [i.to_dict() for i in info.params.describe()],
            }
        )
    if args.json:
        json.dump({"families": families}, out, indent=2)
        out.write("\n")
        return EXIT_OK
    for fam in families:
        out.write(f"{fam['name']}: {fam['description']} (tasks: {', '.join(fam['tasks'])})\n")
        for prm in fam["params"]:
            rng = ""
            if prm["choices"]:
                rng = " {" + ", ".join(map(str, prm["choices"])) + "}"
            elif prm["min"] is not None or prm["max"] is not None:
                rng = f" [{prm['min']}, {prm['max']}]"
            default = ",".join(map(str, prm["default"])) if isinstance(prm["default"], list) else prm["default"]
            out.write(f"  {prm['name']} = {default}{rng}  {prm['help']}\n")
    return EXIT_OK


def _train_config(args: argparse.Namespace) -> Any:
    from explorer.engine import ConfigError, RunConfig
    from explorer.engine.atomic import read_json

    if args.config is not None:
        try:
            cfg = RunConfig.from_dict(read_json(args.config))
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError("--config", f"cannot read {args.config}: {e}") from None
    else:
        cfg = RunConfig()
    if args.data:
        cfg.data.source = args.data
    if args.arch:
        if args.arch != cfg.arch:
            cfg.params = {}
        cfg.arch = args.arch
    cfg.params.update(dict(args.params))
    flags = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "optimizer": args.optimizer,
        "schedule": args.schedule,
        "weight_decay": args.weight_decay,
        "grad_clip": args.grad_clip,
        "early_stopping": args.early_stopping,
        "device": args.device,
        "seed": args.seed,
    }
    for key, value in flags.items():
        if value is not None:
            setattr(cfg.train, key, value)
    if args.no_amp:
        cfg.train.amp = False
    if args.task:
        cfg.data.task = args.task
    if args.val_fraction is not None:
        cfg.data.val_fraction = args.val_fraction
    if args.color:
        cfg.data.color = args.color
    if args.regress:
        cfg.data.regression_columns = list(args.regress)
    if args.regression_weight is not None:
        cfg.data.regression_weight = args.regression_weight
    if args.image_size:
        try:
            h, w = (int(v) for v in args.image_size.lower().split("x"))
        except ValueError:
            raise ConfigError("--image-size", f"expected HxW such as 32x32, got {args.image_size!r}") from None
        cfg.data.height, cfg.data.width = h, w
    if args.augment:
        from explorer.data import AugmentConfig

        merged = {**cfg.data.augment.to_dict(), **dict(args.augment)}
        try:
            cfg.data.augment = AugmentConfig.from_dict(_parse_scalars(merged))
        except ValueError as e:
            raise ConfigError("--augment", str(e)) from None
    cfg.validate()
    return cfg


def _parse_scalars(d: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, str):
            low = v.lower()
            if low in ("true", "yes", "on"):
                v = True
            elif low in ("false", "no", "off"):
                v = False
            else:
                try:
                    v = float(v)
                except ValueError:
                    pass
        out[k] = v
    return out


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
            self.stream.write("\r\x1b[K")
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
        self.stream.write("\r\x1b[K" + text)
        self.stream.flush()
        self._open = True


def _fmt_seconds(s: float) -> str:
    if not math.isfinite(s):
        return "?"
    s = int(s)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def cmd_train(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from explorer.engine import DataReady, EpochReport, Finished, ModelReady, RunConfig, Status, StepReport, Trainer
    from explorer.engine.runfolder import read_config

    if args.resume is not None:
        stored = read_config(args.resume)
        cfg = RunConfig.from_dict(
            {"arch": stored["arch"], "params": stored["params"], "data": stored["data"], "train": stored["train"]}
        )
        if args.epochs is not None:
            cfg.train.epochs = args.epochs
        if args.device is not None:
            cfg.train.device = args.device
        if args.data:
            cfg.data.source = args.data
        out_dir = args.resume
    else:
        if not args.data:
            raise _Usage("train: DATA is required (a folder, labels.csv or sample:NAME), unless --resume RUN_DIR")
        if args.out is None:
            raise _Usage("train: --out RUN_DIR is required")
        cfg = _train_config(args)
        out_dir = args.out
    trainer = Trainer(cfg, out_dir, resume=args.resume is not None)
    progress = _Progress(err, args.quiet)

    def on_sigint(signum: int, frame: Any) -> None:
        if trainer.stop_requested:
            raise KeyboardInterrupt
        progress.line("stopping after this batch (Ctrl-C again to abort)...")
        trainer.request_stop()

    previous = signal.signal(signal.SIGINT, on_sigint) if _main_thread() else None
    finished: Any = None
    try:
        for ev in trainer.run():
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
            elif isinstance(ev, Finished):
                finished = ev
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    assert finished is not None
    m = finished.metrics
    summary = f"{finished.status}: {m.get('epochs', 0)} epochs"
    if "train_seconds" in m:
        summary += f", {m['train_seconds']:.1f}s, {m['samples_per_second']:.0f} img/s on {m['device']}"
    if m.get("val_accuracy") is not None:
        summary += f"; val_accuracy {m['val_accuracy']:.4f} (best epoch {m['best_epoch']})"
    out.write(summary + "\n")
    if finished.message:
        err.write(finished.message + "\n")
    out.write(f"run folder: {out_dir}\n")
    if finished.status == "failed":
        return EXIT_FAILED
    if finished.status == "stopped":
        return EXIT_INTERRUPTED
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from explorer.engine import load_run
    from explorer.engine.api import evaluate_run

    run = load_run(args.run_dir, device=args.device)
    result = evaluate_run(run, args.data)
    for problem in result["problems"]:
        err.write(f"skipped {problem}\n")
    if args.json:
        json.dump(result, out, indent=2)
        out.write("\n")
        return EXIT_OK
    headline = {k: v for k, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    out.write("  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in headline.items()) + "\n")
    if "per_class" in result:
        width = max(len(label) for label in run.labels)
        for label, acc in result["per_class"].items():
            shown = "  n/a" if acc is None else f"{acc:.4f}"
            out.write(f"  {label:<{width}}  {shown}  ({result['support'][label]} images)\n")
    return EXIT_OK


def cmd_predict(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from explorer.engine import load_run

    run = load_run(args.run_dir, device=args.device)
    results = run.predict(args.images, beam=args.beam)
    failed = [r for r in results if "error" in r]
    for r in failed:
        err.write(f"cannot use {r['path']}: {r['error']}\n")
    if args.json:
        json.dump(results, out, indent=2)
        out.write("\n")
    else:
        for r in results:
            if "error" in r:
                continue
            if "text" in r:
                out.write(f"{r['path']}: {r['text']!r} ({r['confidence']:.3f})\n")
                continue
            if "caption" in r:
                out.write(f"{r['path']}: {r['caption']} (score {r['score']:.3f})\n")
                for c in r.get("candidates", [])[1:]:
                    out.write(f"    {c['caption']} ({c['score']:.3f})\n")
                continue
            top = sorted(r["probabilities"].items(), key=lambda kv: -kv[1])[: args.top]
            others = ", ".join(f"{k} {v:.3f}" for k, v in top[1:])
            out.write(f"{r['path']}: {r['label']} ({r['confidence']:.3f})" + (f"  [{others}]" if others else "") + "\n")
    return EXIT_FAILED if failed else EXIT_OK


def cmd_inspect(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from explorer.data import DecodeError
    from explorer.engine import load_run
    from explorer.engine.inspect import inspect_image, write_inspection

    run = load_run(args.run_dir, device=args.device)
    failed = 0
    used: set[str] = set()
    for image in args.images:
        stem = Path(image).stem
        name, k = stem, 1
        while name in used:  # two images with one stem get two folders
            k += 1
            name = f"{stem}-{k}"
        used.add(name)
        try:
            result = inspect_image(run, image, target=args.target, beam=args.beam)
        except DecodeError as e:
            err.write(f"cannot use {image}: {e}\n")
            failed += 1
            continue
        except ValueError as e:
            raise _Usage(f"inspect: {e}") from None
        files = write_inspection(result, args.out / name)
        pred = result.get("prediction") or {}
        said = pred.get("caption") or pred.get("text") or f"{pred.get('label')} ({pred.get('confidence', 0):.3f})"
        out.write(f"{image}: {said} -> {args.out / name} ({len(files)} files)\n")
    return EXIT_FAILED if failed else EXIT_OK


def cmd_export(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from explorer.engine import load_run
    from explorer.engine.export import ExportError, export_run

    run = load_run(args.run_dir)
    try:
        summary = export_run(run, args.format, args.out, verify=not args.no_verify)
    except ExportError as e:
        err.write(f"model-explorer export: error: {e}\n")
        return EXIT_FAILED
    out.write(f"wrote {summary['file']} and {summary['json']}\n")
    if isinstance(summary.get("verified"), dict):
        v = summary["verified"]
        out.write(f"onnxruntime check on input {v['input']}: max difference {v['max_abs_diff']:.2e}\n")
    elif summary.get("verified"):
        out.write(f"onnxruntime check {summary['verified']}\n")
    return EXIT_OK


def cmd_bench(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.bench == "ui":
        from explorer.ui.bench import bench_ui

        ui = bench_ui(epochs=args.epochs, data=args.data)
        if args.json:
            json.dump(ui, out)
            out.write("\n")
        else:
            out.write("  ".join(f"{k} {v:.1f}" for k, v in ui.items()) + "\n")
        return EXIT_OK
    from explorer.engine.bench import bench_train

    result = bench_train(
        args.data,
        arch=args.arch,
        params=dict(args.params),
        epochs=args.epochs,
        batch_size=args.batch_size,
        repeats=args.repeats,
        device=args.device,
        log=lambda s: err.write(s + "\n"),
    )
    if args.json:
        json.dump(result, out, indent=2)
        out.write("\n")
    else:
        out.write(
            f"{result['arch']} on {result['data']} ({result['train_samples']} images, {result['epochs']} epochs, "
            f"batch {result['batch_size']}, {result['device']}):\n"
            f"  bare PyTorch loop  {result['bare_seconds']:.3f} s\n"
            f"  engine             {result['engine_seconds']:.3f} s\n"
            f"  ratio bare/engine  {result['ratio']:.3f}\n"
        )
    return EXIT_OK


def cmd_gui(path: str | None) -> int:
    try:
        from explorer.ui.app import run_app
    except ImportError as e:
        sys.stderr.write(f"the desktop app is not available: {e}\n")
        return EXIT_FAILED
    return run_app(path)


class _Usage(Exception):
    pass


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        return cmd_gui(None)
    if args.command == "gui":
        return cmd_gui(args.path)

    from explorer.data import DataError, DecodeError
    from explorer.engine import ConfigError, RunFolderError
    from models import ParamError

    out, err = sys.stdout, sys.stderr
    t0 = time.perf_counter()
    try:
        if args.command == "archs":
            return cmd_archs(args, out)
        if args.command == "train":
            return cmd_train(args, out, err)
        if args.command == "evaluate":
            return cmd_evaluate(args, out, err)
        if args.command == "predict":
            return cmd_predict(args, out, err)
        if args.command == "inspect":
            return cmd_inspect(args, out, err)
        if args.command == "export":
            return cmd_export(args, out, err)
        if args.command == "bench":
            return cmd_bench(args, out, err)
    except (ConfigError, ParamError, DataError, DecodeError, RunFolderError, _Usage) as e:
        err.write(f"model-explorer {args.command}: error: {e}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        err.write(f"model-explorer {args.command}: interrupted after {time.perf_counter() - t0:.0f}s\n")
        return EXIT_INTERRUPTED
    parser.error(f"unknown command {args.command}")
    return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
