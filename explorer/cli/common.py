"""What every command module shares: exit codes, the usage error, ``KEY=VALUE`` arguments."""

from __future__ import annotations

import argparse

__all__ = ["EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_INTERRUPTED", "Usage", "key_value"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class Usage(Exception):
    """Bad usage or input that argparse cannot see; ``main`` prints it and exits 2."""


def key_value(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    k, v = text.split("=", 1)
    return k.strip(), v.strip()
