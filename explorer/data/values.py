"""The application's one reader of yes/no words (``--set``, ``--augment``, configs, forms).

``models`` keeps a private copy because it may not import the application (see
``tests/engine/test_settings.py``, which checks that both read every word alike).
"""

from __future__ import annotations

from typing import Any

__all__ = ["TRUE_WORDS", "FALSE_WORDS", "parse_bool"]

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def parse_bool(value: Any) -> bool:
    """``True``/``False`` from a bool, 0/1, or a word (case and surrounding spaces ignored).

    Raises:
        ValueError: for anything else (``"maybe"``, ``2``, ``None``).
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in TRUE_WORDS:
            return True
        if text in FALSE_WORDS:
            return False
    raise ValueError(f"cannot read {value!r} as true/false")
