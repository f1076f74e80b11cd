"""Work-arounds for bugs of the Qt binding, applied when :mod:`explorer.ui` is imported.

PySide6 6.12.0 on CPython < 3.12 returns ``None`` from every void method without taking a
reference to it (harmless on 3.12+, where ``None`` is immortal). Each call then lowers ``None``'s
reference count by one, and after a few thousand calls the interpreter aborts with
"Fatal Python error: none_dealloc". ``None`` is never freed anyway, so giving it a huge reference
count makes it effectively immortal, as CPython 3.12 does; the fix in the project's dependencies
is to skip that release (``PySide6-Essentials!=6.12.0``).
"""

from __future__ import annotations

import ctypes
import platform
import sys

__all__ = ["protect_none", "NONE_REFCOUNT_BUG"]


def _affected() -> bool:
    if sys.version_info >= (3, 12) or platform.python_implementation() != "CPython":
        return False
    try:
        import PySide6
    except ImportError:
        return False
    return tuple(PySide6.__version_info__[:2]) == (6, 12)


NONE_REFCOUNT_BUG = _affected()
_BOOST = 1 << 40  # ~10^12 leaked references before trouble


def protect_none() -> bool:
    """Makes ``None`` effectively immortal where the binding leaks its references. Returns True if applied."""
    if not NONE_REFCOUNT_BUG or getattr(protect_none, "_done", False):
        return False
    # ob_refcnt is the first field of every CPython object (release builds).
    ctypes.c_ssize_t.from_address(id(None)).value += _BOOST
    protect_none._done = True  # type: ignore[attr-defined]
    return True
