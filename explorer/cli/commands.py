"""``archs``, ``evaluate``, ``export``, ``bench`` and ``gui``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from .common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, check_data_path
from .output import dump_json

__all__ = ["cmd_archs", "cmd_bench", "cmd_evaluate", "cmd_export", "cmd_gui"]


def cmd_archs(args: argparse.Namespace, out: TextIO, err: TextIO = sys.stderr) -> int:
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
        dump_json({"families": families}, out, err)
        return EXIT_OK
    for fam in families:
        out.write(f"{fam['name']}: {fam['description']} (tasks: {', '.join(fam['tasks'])})\n")
        for prm in fam["params"]:
            out.write(_param_line(prm))
    return EXIT_OK


def _param_line(prm: dict[str, Any]) -> str:
    rng = ""
    if prm["choices"]:
        rng = " {" + ", ".join(map(str, prm["choices"])) + "}"
    elif prm["min"] is not None or prm["max"] is not None:
        rng = f" [{prm['min']}, {prm['max']}]"
    default = ",".join(map(str, prm["default"])) if isinstance(prm["default"], list) else prm["default"]
    return f"  {prm['name']} = {default}{rng}  {prm['help']}\n"


def cmd_evaluate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from explorer.engine import load_run
    from explorer.engine.api import evaluate_run

    check_data_path(args.data)
    run = load_run(args.run_dir, device=args.device)
    result = evaluate_run(run, args.data)
    for problem in result["problems"]:
        err.write(f"skipped {problem}\n")
    if args.json:
        dump_json(result, out, err)
        return EXIT_OK
    headline = {k: v for k, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    out.write("  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in headline.items()) + "\n")
    if "per_class" in result:
        width = max(len(label) for label in run.labels)
        for label, acc in result["per_class"].items():
            shown = "  n/a" if acc is None else f"{acc:.4f}"
            out.write(f"  {label:<{width}}  {shown}  ({result['support'][label]} images)\n")
    return EXIT_OK


def cmd_export(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from explorer.engine import load_run
    from explorer.engine.export import ExportError, ExportTargetError, export_files, export_run

    run = load_run(args.run_dir)
    try:
        export_files(run, args.format, args.out)  # refuse a bad destination before loading the exporter
        result = export_run(
            run, args.format, args.out, verify=not args.no_verify, progress=lambda i, n, what: err.write(f"{what}\n")
        )
    except ExportTargetError as e:
        err.write(f"model-explorer export: error: {e}\n")
        return EXIT_USAGE
    except ExportError as e:
        err.write(f"model-explorer export: error: {e}\n")
        return EXIT_FAILED
    out.write("wrote " + ", ".join(result.files) + "\n")
    for g in result.graphs:
        check = g["check"]
        if check is not None:
            runtime = "onnxruntime" if result.format == "onnx" else "torch.export"
            out.write(f"{g['file']}: {runtime} vs PyTorch on inputs {check['inputs']}: max abs difference "
                      f"{check['max_abs_diff']:.2e}\n")  # fmt: skip
    for limit in result.limits:
        out.write(f"limit: {limit}\n")
    return EXIT_OK


def cmd_bench(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.bench == "ui":
        from explorer.ui.bench import bench_ui

        ui = bench_ui(
            epochs=args.epochs, data=args.data, arch=args.arch, params=dict(args.params), device=args.device,
            overhead=not args.no_overhead, repeats=args.repeats, block=args.block,
        )  # fmt: skip
        if args.json:
            dump_json(ui, out, err, indent=None)
        else:
            for k, v in ui.items():
                out.write(f"{k}: {v}\n")
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
        dump_json(result, out, err)
    else:
        out.write(
            f"{result['arch']} on {result['data']} ({result['train_samples']} images, {result['epochs']} epochs, "
            f"batch {result['batch_size']}, {result['device']}):\n"
            f"  bare PyTorch loop  {result['bare_seconds']:.3f} s  {result['bare_samples_per_second']:.0f} img/s\n"
            f"  engine             {result['engine_seconds']:.3f} s  {result['engine_samples_per_second']:.0f} img/s\n"
            f"  ratio bare/engine  {result['ratio']:.3f}\n"
        )
    return EXIT_OK


def cmd_gui(path: str | None, follow: str | None = None) -> int:
    if follow is not None and Path(follow).exists() and not Path(follow).is_dir():
        sys.stderr.write(f"--follow {follow}: is a file; give the run folder another process is writing\n")
        return EXIT_USAGE
    try:
        from explorer.ui.app import run_app
    except ImportError as e:
        sys.stderr.write(f"the desktop app is not available: {e}\n")
        return EXIT_FAILED
    return run_app(path, follow)
