"""The inspector studio: what the model sees in picked images (live, after training, replayed per
epoch), its evaluation, and runs side by side. The window mounts :class:`InspectorPanel`."""

from .panel import InspectorPanel

__all__ = ["InspectorPanel"]
