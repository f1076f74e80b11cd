"""``predict`` and ``inspect``: what they print per image.

The words of one prediction come from the run's task (``Task.format_prediction``), never from
the keys of the result.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .common import EXIT_FAILED, EXIT_OK, Usage
from .output import dump_json

if TYPE_CHECKING:  # the engine is imported when a command runs, not when the CLI starts
    from explorer.engine.tasks import Task

__all__ = ["cmd_inspect", "cmd_predict", "prediction_lines"]


def prediction_lines(task: Task, r: dict[str, Any], top: int) -> str:
    """The text output of one successful prediction, as the run's task words it (newline-terminated)."""
    lines = [f"{r['path']}: {task.format_prediction(r, top=top)}", *task.format_candidates(r)]
    return "".join(line + "\n" for line in lines)


def cmd_predict(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from explorer.engine import load_run

    run = load_run(args.run_dir, device=args.device)
    results = run.predict(args.images, beam=args.beam)
    failed = [r for r in results if "error" in r]
    for r in failed:
        err.write(f"cannot use {r['path']}: {r['error']}\n")
    if args.json:
        dump_json(results, out, err)
    else:
        for r in results:
            if "error" not in r:
                out.write(prediction_lines(run.task_object, r, args.top))
    return EXIT_FAILED if failed else EXIT_OK


def _folder_names(images: list[str]) -> list[str]:
    """One output folder name per image: its stem, ``stem-2``... when two images share one."""
    used: set[str] = set()
    names = []
    for image in images:
        stem = Path(image).stem
        name, k = stem, 1
        while name in used:
            k += 1
            name = f"{stem}-{k}"
        used.add(name)
        names.append(name)
    return names


def cmd_inspect(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from explorer.data import DecodeError
    from explorer.engine import load_run
    from explorer.engine.inspect import inspect_image, write_inspection

    run = load_run(args.run_dir, device=args.device)
    failed = 0
    for image, name in zip(args.images, _folder_names(args.images), strict=True):
        try:
            result = inspect_image(run, image, target=args.target, beam=args.beam)
        except DecodeError as e:
            err.write(f"cannot use {image}: {e}\n")
            failed += 1
            continue
        except ValueError as e:
            raise Usage(f"inspect: {e}") from None
        files = write_inspection(result, args.out / name)
        out.write(f"{image}: {result['prediction_text']} -> {args.out / name} ({len(files)} files)\n")
    return EXIT_FAILED if failed else EXIT_OK
