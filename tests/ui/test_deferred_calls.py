"""Every deferred call in the app names the object it belongs to.

``QTimer.singleShot(ms, callable)`` in PySide6 runs the callable even after Qt deleted the
object behind it (a closed window's probe view): the call then meets deleted C++ widgets and
raises in the event loop. ``QTimer.singleShot(ms, receiver, callable)`` is dropped with its
receiver. This test reads the source (``ast``) of ``explorer/ui`` and flags every
``singleShot`` call without a receiver argument.
"""

from __future__ import annotations

import ast
from pathlib import Path

UI = Path(__file__).resolve().parents[2] / "explorer" / "ui"


def _calls_without_receiver(source: str, name: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "singleShot"
            and len(node.args) + len(node.keywords) < 3
        ):
            found.append(f"{name}:{node.lineno}")
    return found


def test_every_single_shot_names_its_receiver() -> None:
    sources = sorted(UI.rglob("*.py"))
    assert len(sources) > 20  # the scan sees the app
    offenders = [w for p in sources for w in _calls_without_receiver(p.read_text(encoding="utf-8"), p.name)]
    assert offenders == [], f"QTimer.singleShot without a receiver (give the owning QObject): {offenders}"


def test_the_check_flags_a_call_without_receiver() -> None:
    source = "QTimer.singleShot(0, self.poll)\nQTimer.singleShot(0, self, self.poll)\n"
    assert _calls_without_receiver(source, "x.py") == ["x.py:1"]
