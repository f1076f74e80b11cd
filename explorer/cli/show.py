"""``predict`` and ``inspect``: what they print per image.

The text of one prediction is made in :func:`prediction_line` / :func:`inspection_said` only, so
asking the run's task for it later changes these two functions and nothing else.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, TextIO

from .common import EXIT_FAILED, EXIT_OK, Usage

__all__ = ["cmd_inspect", "cmd_predict", "inspection_said", "prediction_line"]


def prediction_line(r: dict[str, Any], top: int) -> str:
    """The text output of one successful prediction (label / text / caption), newline-terminated."""
    if "text" in r:
        return f"{r['path']}: {r['text']!r} ({r['confidence']:.3f})\n"
    if "caption" in r:
        lines = [f"{r['path']}: {r['caption']} (score {r['score']:.3f})\n"]
        lines += [f"    {c['caption']} ({c['score']:.3f})\n" for c in r.get("candidates", [])[1:]]
        return "".join(lines)
    ranked = sorted(r["probabilities"].items(), key=lambda kv: -kv[1])[:top]
    others = ", ".join(f"{k} {v:.3f}" for k, v in ranked[1:])
    return f"{r['path']}: {r['label']} ({r['confidence']:.3f})" + (f"  [{others}]" if others else "") + "\n"


def inspection_said(result: dict[str, Any]) -> str:
    """What ``inspect`` says the model predicted for one image."""
    pred = result.get("prediction") or {}
    return pred.get("caption") or pred.get("text") or f"{pred.get('label')} ({pred.get('confidence', 0):.3f})"


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
            if "error" not in r:
                out.write(prediction_line(r, args.top))
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
        out.write(f"{image}: {inspection_said(result)} -> {args.out / name} ({len(files)} files)\n")
    return EXIT_FAILED if failed else EXIT_OK
