"""Files the desktop app ships: the style sheet (``style.qss``) and SVG icons (``icons/``)."""

from pathlib import Path

#: The folder holding ``style.qss`` and ``icons/``.
RESOURCES_DIR = Path(__file__).resolve().parent
