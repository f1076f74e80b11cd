"""The layer rule of DESIGN.md: models/, explorer/data and explorer/engine never import Qt."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

BLOCK_QT = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6'):
            raise ImportError('Qt is blocked in the core: ' + name)
sys.meta_path.insert(0, Block())
import models, explorer.data, explorer.engine, explorer.cli, explorer.engine.bench
from explorer import load_run
assert not any(m.split('.')[0] in ('PySide6', 'pyqtgraph') for m in sys.modules)
print('core ok')
"""


def test_core_imports_without_qt() -> None:
    r = subprocess.run([sys.executable, "-c", BLOCK_QT], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "core ok" in r.stdout


def test_import_linter_contracts_hold() -> None:
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    if not Path(exe).exists():
        pytest.fail("import-linter is a test dependency; install '.[test]'")
    r = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
