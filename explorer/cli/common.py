"""What every command module shares: exit codes, the usage error, ``KEY=VALUE`` arguments."""

from __future__ import annotations

import argparse
import os
import stat

__all__ = ["EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_INTERRUPTED", "Usage", "key_value", "check_data_path"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class Usage(Exception):
    """Bad usage or input that argparse cannot see; ``main`` prints it and exits 2."""


def key_value(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    k, v = text.split("=", 1)
    return k.strip(), v.strip()


def check_data_path(spec: str | None) -> None:
    """Refuses a DATA that is a pipe, device or socket (never opened: reading could block)."""
    if not spec or spec.startswith("sample:"):
        return
    try:
        mode = os.stat(os.path.expanduser(spec)).st_mode
    except OSError:
        return  # missing or unreadable: the data layer names it
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        raise Usage(
            f"{spec}: not a folder or a file (a pipe, device or socket); DATA is a folder, a manifest or sample:NAME"
        )
