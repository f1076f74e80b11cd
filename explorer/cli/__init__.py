"""``model-explorer``: the headless front door, over the same engine as the app.

With no subcommand it opens the desktop app. Exit codes: 0 success, 1 the work ran
but failed (training diverged, some images could not be read), 2 bad usage or
input (the message names the parameter or file), 130 interrupted.

Modules: :mod:`.parser` (the argument parser), :mod:`.flags` (``train``'s setting flags,
generated from the settings declarations), :mod:`.train`, :mod:`.show` (``predict`` and
``inspect`` output), :mod:`.commands` (the rest).
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Sequence
from typing import TextIO

from .commands import cmd_archs, cmd_bench, cmd_evaluate, cmd_export, cmd_gui
from .common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, Usage
from .output import SafeStream
from .parser import build_parser
from .show import cmd_inspect, cmd_predict
from .train import cmd_train

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_INTERRUPTED"]

_COMMANDS = {
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "predict": cmd_predict,
    "inspect": cmd_inspect,
    "export": cmd_export,
    "bench": cmd_bench,
}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        code = _main(argv)
        sys.stdout.flush()  # here, not at exit, so a closed pipe is caught below
        return code
    except BrokenPipeError:
        # the reader went away (`model-explorer archs | head -1`): stop quietly; point stdout
        # at devnull so that the interpreter's final flush does not complain either
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_FAILED


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        return cmd_gui(None)
    if args.command == "gui":
        return cmd_gui(args.path, args.follow)

    out, err = SafeStream(sys.stdout), SafeStream(sys.stderr)
    t0 = time.perf_counter()
    try:
        if args.command == "archs":
            return cmd_archs(args, out, err)
        if args.command in _COMMANDS:
            return _COMMANDS[args.command](args, out, err)
    except KeyboardInterrupt:
        err.write(f"model-explorer {args.command}: interrupted after {time.perf_counter() - t0:.0f}s\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        raise
    except Exception as e:  # noqa: BLE001 - every error reaches the user as a message
        return _report_error(args.command, e, err)
    parser.error(f"unknown command {args.command}")
    return EXIT_USAGE


def _report_error(command: str, e: Exception, err: TextIO) -> int:
    """One line on stderr for an error; its exit code (2: usage or input, 1: the work failed)."""
    from explorer.data import DataError, DecodeError
    from explorer.engine import ConfigError, RunFolderError, TrainingError
    from explorer.engine.resources import is_out_of_memory
    from models import ParamError

    prefix = f"model-explorer {command}: error: "
    if isinstance(e, ConfigError | ParamError | DataError | DecodeError | RunFolderError | Usage):
        err.write(f"{prefix}{e}\n")
        return EXIT_USAGE
    if isinstance(e, OSError):
        where = f"{e.filename}: " if e.filename else ""
        err.write(f"{prefix}{where}{e.strerror or e}\n")
        return EXIT_USAGE
    if is_out_of_memory(e):
        err.write(f"{prefix}out of memory ({type(e).__name__}); try a smaller --batch-size or --image-size\n")
        return EXIT_FAILED
    if isinstance(e, TrainingError):
        err.write(f"{prefix}{e}\n")
        return EXIT_FAILED
    if os.environ.get("MODEL_EXPLORER_DEBUG"):
        traceback.print_exc()
    first = str(e).splitlines()[0] if str(e) else ""
    err.write(
        f"model-explorer {command}: internal error: {type(e).__name__}: {first}\n"
        "(a bug: please report it with the command; MODEL_EXPLORER_DEBUG=1 shows the traceback)\n"
    )
    return EXIT_FAILED
