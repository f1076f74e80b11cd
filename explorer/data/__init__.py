"""The data layer: files -> samples -> uint8 image arrays -> augmented tensors. No Qt.

Typical use (what the engine does for one training run)::

    from explorer.data import open_source, infer_image_size, load_images, stratified_split

    source = open_source("sample:shapes")            # or a folder / labels.csv
    height, width = infer_image_size(source.samples)
    loaded = load_images(source.samples, height=height, width=width)
    train, val = stratified_split([s.target for s in loaded.samples], 0.2, seed=0)
    problems = source.problems + loaded.problems     # one entry per unusable file

Prediction uses :func:`read_image` + :func:`prepare_image`, the same path as training.
"""

from .augment import AugmentConfig, augment_batch
from .cache import DecodedCache, default_cache_root
from .decode import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    MAX_FILE_BYTES,
    RESIZE_MODES,
    DecodeError,
    decode_image,
    fit_width,
    is_gray,
    pad_right,
    prepare_image,
    prepare_line_image,
    probe_display_size,
    probe_file,
    probe_size,
    read_image,
    resize_image,
    to_channels,
)
from .errors import DataError
from .layouts import MANIFEST_LAYOUTS, TargetLayout
from .loading import COLOR_MODES, LoadedImages, infer_image_size, load_images
from .memory import (
    COMPUTE_RESERVE_BYTES,
    MIN_BUDGET_BYTES,
    available_ram,
    budget_note,
    data_budget,
    memory_budget,
    release_free_heap,
    reuse_freed_heap,
    spill_array,
)
from .samples import SAMPLES, cache_dir, list_samples, materialize_sample
from .sources import (
    MANIFEST_NAME,
    MANIFEST_NAMES,
    Problem,
    Sample,
    Source,
    from_files,
    open_source,
    read_coco_captions,
    read_manifest,
    scan_folder,
)
from .split import random_split, stratified_split
from .text import SPECIALS, Vocabulary, tokenize

__all__ = [
    "COLOR_MODES",
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "MANIFEST_LAYOUTS",
    "MANIFEST_NAME",
    "MANIFEST_NAMES",
    "MAX_FILE_BYTES",
    "RESIZE_MODES",
    "SAMPLES",
    "AugmentConfig",
    "DataError",
    "DecodedCache",
    "DecodeError",
    "LoadedImages",
    "Problem",
    "Sample",
    "Source",
    "TargetLayout",
    "augment_batch",
    "cache_dir",
    "decode_image",
    "data_budget",
    "default_cache_root",
    "fit_width",
    "from_files",
    "infer_image_size",
    "is_gray",
    "list_samples",
    "load_images",
    "materialize_sample",
    "available_ram",
    "COMPUTE_RESERVE_BYTES",
    "MIN_BUDGET_BYTES",
    "budget_note",
    "memory_budget",
    "open_source",
    "pad_right",
    "prepare_image",
    "prepare_line_image",
    "probe_display_size",
    "probe_file",
    "probe_size",
    "random_split",
    "read_coco_captions",
    "read_image",
    "read_manifest",
    "resize_image",
    "scan_folder",
    "release_free_heap",
    "reuse_freed_heap",
    "spill_array",
    "stratified_split",
    "to_channels",
    "tokenize",
    "Vocabulary",
    "SPECIALS",
]
