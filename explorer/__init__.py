"""Model Explorer: build, train and look inside CNN, RNN and hybrid image models.

``from explorer import load_run`` is the stable Python API (see README). Heavy
modules load lazily so ``import explorer.data`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["load_run", "Run", "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from .engine.api import Run, load_run


def __getattr__(name: str) -> Any:
    if name in ("load_run", "Run"):
        from .engine import api

        return getattr(api, name)
    raise AttributeError(f"module 'explorer' has no attribute {name!r}")
