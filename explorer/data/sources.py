"""Where samples come from: class folders, manifest files, dropped files and built-in samples.

A *source* is only a list of ``(path, target)`` samples plus the problems found while listing
them. Nothing here decodes pixels: every file is decoded exactly once, later, by
:mod:`explorer.data.loading`, which reports the files that turn out to be unusable.

Supported layouts (``DATA`` on the command line):

* **class per folder**: ``root/<class>/**/<image>``; every immediate sub-folder is a class.
* **manifest**: ``root/labels.csv`` (or any ``.csv`` given directly) with a header row. The first
  column is ``path`` (relative to the manifest), the second the target: ``label`` (task
  ``classify``), ``text`` (``sequence``) or ``caption`` (``caption``, several rows per image allowed),
  as declared once in :mod:`explorer.data.layouts`.
  Further columns whose values are all numbers become :attr:`Sample.extras`.
* **dropped files**: explicit files and folders, all given one label.
* ``sample:NAME``: a built-in data set generated on first use (:mod:`explorer.data.samples`).

The parts live beside this module and are re-exported here: the records in
:mod:`~explorer.data.records`, the manifest layouts in :mod:`~explorer.data.layouts`, folder walks in
:mod:`~explorer.data.walk`, class folders and dropped files in :mod:`~explorer.data.folders`, CSV
manifests in :mod:`~explorer.data.manifest`, COCO captions in :mod:`~explorer.data.coco`.
"""

from __future__ import annotations

import os
from pathlib import Path

from .coco import COCO_CAPTIONS_NAME, read_coco_captions
from .errors import DataError
from .folders import from_files, scan_folder
from .layouts import TARGET_COLUMNS
from .manifest import MANIFEST_NAME, MANIFEST_NAMES, read_manifest
from .records import Problem, Sample, Source
from .samples import SAMPLE_PREFIX, materialize_sample

__all__ = [
    "MANIFEST_NAME",
    "MANIFEST_NAMES",
    "COCO_CAPTIONS_NAME",
    "read_coco_captions",
    "TARGET_COLUMNS",
    "DataError",
    "Problem",
    "Sample",
    "Source",
    "from_files",
    "open_source",
    "read_manifest",
    "scan_folder",
]


def open_source(spec: str | Path) -> Source:
    """Opens what the user typed as ``DATA``: ``sample:NAME``, a ``.csv`` manifest or a folder.

    Args:
        spec: The specification.

    Returns:
        The source; its ``origin`` is ``spec`` for built-in samples, else the path.

    Raises:
        DataError: If the spec names nothing usable; the message names the spec.
    """
    text = os.fspath(spec)
    if isinstance(spec, str) and text.startswith(SAMPLE_PREFIX):
        source = scan_folder(materialize_sample(text[len(SAMPLE_PREFIX) :]))
        source.origin = text
        return source
    path = Path(text).expanduser()
    if path.is_dir():
        return scan_folder(path)
    if path.is_file():
        if path.suffix.lower() == ".csv":
            return read_manifest(path)
        if path.suffix.lower() == ".json":
            return read_coco_captions(path)
        raise DataError(f"{text}: not a data folder, a .csv manifest, a COCO captions .json or sample:NAME")
    raise DataError(f"{text}: no such folder or file (expected a data folder, a .csv manifest or sample:NAME)")
