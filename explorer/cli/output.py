"""What the CLI writes: terminal text with control characters escaped, strict JSON.

Text that comes from data (class labels, file names, captions) may hold terminal escape
sequences; :class:`SafeStream` escapes every control character but newline and tab (C0,
DEL, C1, and the Unicode line separators and bidirectional overrides) as ``\\x1b`` /
``\\u202e``, so no file can move the cursor, recolour or retitle the user's terminal. The
progress bar's own ``\\r\\x1b[K`` goes through :meth:`SafeStream.control`.

:func:`dump_json` writes one strict JSON document: NaN and infinities (a diverged model's
outputs) become ``null``, with one warning on stderr naming where they were.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, TextIO

__all__ = ["SafeStream", "escape", "dump_json", "sanitize"]

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape_one(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(text: str) -> str:
    """``text`` with control characters (but newline and tab) escaped."""
    return _CONTROL.sub(_escape_one, text)


class SafeStream:
    """A text stream whose :meth:`write` escapes control characters (see the module docstring)."""

    def __init__(self, stream: TextIO) -> None:
        self.raw = stream

    def write(self, text: str) -> int:
        return self.raw.write(escape(text))

    def control(self, text: str) -> int:
        """Writes terminal control text of the CLI's own (never data) unescaped."""
        return self.raw.write(text)

    def __getattr__(self, name: str) -> Any:  # flush, isatty, fileno, encoding...
        return getattr(self.raw, name)


def sanitize(obj: Any, where: str = "", found: list[str] | None = None) -> Any:
    """A copy of ``obj`` with non-finite floats replaced by None; their paths go to ``found``."""
    if isinstance(obj, float) and not math.isfinite(obj):
        if found is not None:
            found.append(where or "(top)")
        return None
    if isinstance(obj, dict):
        return {k: sanitize(v, f"{where}.{k}" if where else str(k), found) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [sanitize(v, f"{where}[{i}]", found) for i, v in enumerate(obj)]
    return obj


def dump_json(obj: Any, out: TextIO, err: TextIO, indent: int | None = 2) -> None:
    """One strict JSON document on ``out`` (NaN/Inf -> null, warned about on ``err``)."""
    found: list[str] = []
    clean = sanitize(obj, "", found)
    if found:
        shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
        err.write(f"warning: {len(found)} value(s) were NaN or infinite, written as null: {shown}\n")
    out.write(json.dumps(clean, indent=indent, allow_nan=False) + "\n")
