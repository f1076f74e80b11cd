"""The live probe view: what the model sees in one image, drawn from the model's declaration.

``view`` holds :class:`ProbeView`; one module per kind of section (``feature_maps``, ``recurrent``,
``spatial``, ``attention``, ``outputs``), ``plan`` turns the declaration into sections and
``paint`` holds the shared colour maps, levels and plots.
"""

from .view import ProbeContext, ProbeView

__all__ = ["ProbeView", "ProbeContext"]
