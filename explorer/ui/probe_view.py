"""Kept for importers: the live probe view now lives in :mod:`explorer.ui.probe`."""

from .probe import ProbeView

__all__ = ["ProbeView"]
