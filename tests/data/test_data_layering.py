"""explorer.data stays below the engine and the UI, and keeps torch to augment.py."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import explorer.data

PACKAGE = Path(explorer.data.__file__).parent
FORBIDDEN = ("PySide6", "pyqtgraph", "explorer.engine", "explorer.ui", "explorer.cli", "models")


def _imports(path: Path) -> set[str]:
    """Absolute module names imported by a module of explorer.data (relative imports resolved)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ["explorer", "data"][: 3 - node.level] if node.level <= 2 else []
                names.add(".".join([*base, node.module] if node.module else base))
            else:
                names.add(node.module or "")
    return names


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_no_forbidden_imports_and_torch_only_in_augment() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) >= 7
    for path in modules:
        imported = _imports(path)
        bad = sorted(n for n in imported for f in FORBIDDEN if _matches(n, f))
        assert not bad, f"{path.name} imports {bad}"
        if path.name not in ("augment.py", "__init__.py"):
            assert not any(_matches(n, "torch") for n in imported), f"{path.name} imports torch"


def test_imports_with_qt_and_upper_layers_blocked() -> None:
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if any(name == f or name.startswith(f + '.') for f in {FORBIDDEN!r}):\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import explorer.data\n"
        "print('ok')\n"
    )
    root = PACKAGE.parent.parent
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
