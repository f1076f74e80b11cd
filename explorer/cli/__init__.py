"""``model-explorer``: the headless front door, over the same engine as the app.

With no subcommand it opens the desktop app. Exit codes: 0 success, 1 the work ran
but failed (training diverged, some images could not be read), 2 bad usage or
input (the message names the parameter or file), 130 interrupted.

Modules: :mod:`.parser` (the argument parser), :mod:`.flags` (``train``'s setting flags,
generated from the settings declarations), :mod:`.train`, :mod:`.show` (``predict`` and
``inspect`` output), :mod:`.commands` (the rest).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from .commands import cmd_archs, cmd_bench, cmd_evaluate, cmd_export, cmd_gui
from .common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, Usage
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
        if args.command in _COMMANDS:
            return _COMMANDS[args.command](args, out, err)
    except (ConfigError, ParamError, DataError, DecodeError, RunFolderError, Usage) as e:
        err.write(f"model-explorer {args.command}: error: {e}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        err.write(f"model-explorer {args.command}: interrupted after {time.perf_counter() - t0:.0f}s\n")
        return EXIT_INTERRUPTED
    parser.error(f"unknown command {args.command}")
    return EXIT_USAGE
