"""Samples -> one uint8 array in memory: decode every file once, prepare it, report the rest.

The training loop reads images from the array this module builds, so later epochs cost no
file I/O or decoding. Decoding runs in a thread pool: OpenCV releases the GIL while it decodes
and resizes, so threads scale without the pickling cost of processes.

Memory bound: a full-resolution image exists only inside one decode job, and at most ``workers``
jobs run at once (default: the usable CPUs, at most 8). Each job is bounded by the limits of
:mod:`~explorer.data.limits`: the file it reads is at most ``max_pixels * BYTES_PER_PIXEL`` bytes
plus 16 MiB of slack, the decoded array at most ``max_pixels * BYTES_PER_PIXEL`` bytes (refused
from the header otherwise), and the conversions to 8 bits work in bands. So the peak memory of a
load, beyond the result array, stays under about ``4 * max_pixels * BYTES_PER_PIXEL * workers``.
Measured in a fresh process (``tests/data/test_hostile.py``): at the default 40-megapixel limit
(160 MB budget) one job peaks at 465 MB for a 40 MP float TIFF, 414 MB for an 8-bit RGBA PNG with
transparency, 337 MB for a 16-bit RGB PNG at the bytes budget, 241 MB for a JPEG; loading those
files took 465 MB with one worker and 708 MB with two; at a 5 MP limit (20 MB budget) 86 MB and
165 MB. Lower ``workers`` or ``max_pixels`` to lower it. Queued and finished-but-unread jobs hold
only prepared (model-sized) images.

With a :class:`~explorer.data.cache.DecodedCache` (what the engine passes unless the run says
``--no-cache``), rows prepared before with the same preprocessing are read from the cache instead
of decoded, and the result is written straight into a memory-mapped file of the cache: the
returned array is then a read-only-on-disk map (copy-on-write), not memory of the process, and a
load needs no more RAM than the decode jobs above whatever the size of the data set.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from .cache import CachePlan, DecodedCache
from .decode import (
    DEFAULT_MAX_PIXELS,
    RESIZE_MODES,
    DecodeError,
    is_gray,
    pad_right,
    prepare_image,
    prepare_line_image,
    probe_file,
    read_image,
)
from .errors import DataError
from .exif import jpeg_orientation
from .reader import HEADER_BYTES as _HEADER_BYTES
from .sources import Problem, Sample

__all__ = ["COLOR_MODES", "LoadedImages", "infer_image_size", "load_images"]

#: Accepted values of ``load_images(color=...)``.
COLOR_MODES: tuple[str, ...] = ("auto", "gray", "rgb")

# How many samples infer_image_size looks at: a median over an evenly spread thousand is as good
# as over a million, and reading headers of a huge folder would otherwise take minutes.
_MAX_SIZE_PROBES = 1000

# What decoding one sample gives: the prepared image, or None and the reason.
_Result = tuple[np.ndarray | None, str | None]


@dataclass
class LoadedImages:
    """Prepared images and what happened to the samples.

    Attributes:
        images: ``(N, H, W, C)`` uint8, C-contiguous; ``C`` is 1 for ``"gray"``, 3 for ``"rgb"``.
        samples: The samples whose image is in ``images``, in the same order (input order).
        problems: One entry per sample that could not be used.
        color: ``"gray"`` or ``"rgb"``.
        widths: For variable-width loading, each image's true width (the rest of its row in
            ``images`` is padding by :func:`~explorer.data.decode.pad_right`); else None.
        decoded: How many files were decoded (the rest came from the cache).
        note: Why the cache could not be used or was rebuilt, when that happened.
        sums: From the cache: per image and channel the sum and sum of squares of its real
            pixels, int64 ``(N, 2, C)`` (see :func:`~explorer.data.cache.row_sums`); else None.
    """

    images: np.ndarray
    samples: list[Sample]
    problems: list[Problem] = field(default_factory=list)
    color: str = "rgb"
    widths: np.ndarray | None = None
    decoded: int = 0
    note: str | None = None
    sums: np.ndarray | None = None

    @property
    def mapped(self) -> bool:
        """True when ``images`` is a memory map of the cache (pages on disk, not in the process)."""
        return isinstance(self.images, np.memmap)


# --------------------------------------------------------------------------------------------------
# Image size
# --------------------------------------------------------------------------------------------------


def _spread(items: Sequence[Sample], limit: int) -> Sequence[Sample]:
    """At most ``limit`` items, evenly spread over the sequence (deterministic)."""
    if len(items) <= limit:
        return items
    return [items[i] for i in np.linspace(0, len(items) - 1, limit).round().astype(int)]


def _stored_size(path: os.PathLike | str) -> tuple[int, int] | None:
    """(width, height) of an image file as displayed, from its header (bounded reads, never a whole file).

    None for files :func:`~explorer.data.decode.read_image` would refuse or whose header cannot be read.
    """
    try:
        header = probe_file(path)
        if header is None:
            return None
        if header.kind == "jpeg":  # the EXIF orientation sits in an APP1 segment near the start
            with open(path, "rb") as f:
                if jpeg_orientation(f.read(_HEADER_BYTES)) >= 5:
                    return header.height, header.width
        return header.width, header.height
    except (OSError, DecodeError):
        return None


def infer_image_size(samples: Sequence[Sample], *, min_side: int = 16, max_side: int = 128) -> tuple[int, int]:
    """Picks a model input size from the images' own sizes.

    Takes the median height and median width as displayed (after EXIF rotation; from headers only,
    with the checks and bounded reads of :func:`~explorer.data.decode.probe_file`; up to a thousand
    samples spread evenly over the list), scales both down keeping the aspect ratio if the larger
    side exceeds ``max_side``, or up if the smaller side is below ``min_side``; when the aspect
    ratio is too extreme to satisfy both, each side is clamped to ``[min_side, max_side]``.

    Args:
        samples: The samples (unreadable files are ignored).
        min_side: Smallest allowed side.
        max_side: Largest allowed side.

    Returns:
        ``(height, width)``.

    Raises:
        DataError: If no sample could be read.
        ValueError: If ``min_side`` or ``max_side`` is invalid.
    """
    if not 1 <= min_side <= max_side:
        raise ValueError(f"need 1 <= min_side <= max_side, got min_side={min_side}, max_side={max_side}")
    sizes = [s for s in (_stored_size(sample.path) for sample in _spread(samples, _MAX_SIZE_PROBES)) if s]
    if not sizes:
        raise DataError("cannot infer the image size: none of the images could be read")
    width = float(np.median([w for w, _ in sizes]))
    height = float(np.median([h for _, h in sizes]))
    scale = 1.0
    if max(height, width) > max_side:
        scale = max_side / max(height, width)
    elif min(height, width) < min_side:
        scale = min_side / min(height, width)
    h = min(max(round(height * scale), min_side), max_side)
    w = min(max(round(width * scale), min_side), max_side)
    return h, w


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------


def _load_one(
    sample: Sample, *, height: int, width: int | None, max_width: int, color: str, resize: str, max_pixels: int
) -> _Result:
    """Decodes and prepares one file: ``(prepared, None)`` or ``(None, reason)``.

    The full-resolution decode lives only inside this call, so at most ``workers`` of them exist.
    A gray image is prepared with one channel even when the result will be RGB: replication after
    resizing gives identical pixels, and the final choice needs every image's verdict first.
    """
    try:
        img = read_image(sample.path, max_pixels=max_pixels)
        channels = 1 if color == "gray" or (color == "auto" and is_gray(img)) else 3
        if width is None:
            return prepare_line_image(img, channels=channels, height=height, max_width=max_width, resize=resize), None
        return prepare_image(img, channels=channels, height=height, width=width, resize=resize), None
    except DecodeError as exc:
        return None, str(exc)
    except MemoryError:
        return None, "out of memory while decoding"


def load_images(
    samples: Sequence[Sample],
    *,
    height: int,
    width: int | None,
    color: str = "auto",
    resize: str = "auto",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    max_width: int = 2048,
    cache: DecodedCache | None = None,
) -> LoadedImages:
    """Decodes every sample's file once and stacks the prepared images.

    Each usable file goes through :func:`~explorer.data.decode.prepare_image`; each unusable one
    becomes exactly one :class:`Problem` and loading goes on.

    Args:
        samples: What to load.
        height: Target height.
        width: Target width; None keeps each image's aspect ratio at ``height`` (variable
            width, at most ``max_width``), right-pads rows to the widest and reports ``widths``.
        color: ``"gray"``, ``"rgb"``, or ``"auto"``: gray when every usable image is gray
            (2-D or three identical channels), else RGB.
        resize: Interpolation, see :func:`~explorer.data.decode.resize_image`.
        max_pixels: Largest accepted source image (width * height).
        workers: Decoding threads; default the usable CPUs, at most 8. 1 decodes in this thread.
            Peak memory grows with it, see the module docstring.
        progress: Called as ``progress(done, total)`` from the calling thread after each file.
        max_width: Widest variable-width image.
        cache: Where prepared rows are looked up and stored (see :mod:`~explorer.data.cache`);
            None decodes everything into memory.

    Returns:
        The images of the usable samples, in input order, plus the problems.
    """
    _check_options(height, width, max_width, color, resize)
    samples = list(samples)
    total = len(samples)
    workers = max(1, workers if workers is not None else min(8, _usable_cpus()))
    plan: CachePlan | None = None
    if cache is not None:
        signature = {
            "height": height,
            "width": width,
            "max_width": max_width if width is None else None,
            "color": color,
            "resize": resize,
            "max_pixels": max_pixels,
        }
        plan = cache.plan(signature, samples, fallback={**signature, "color": "auto"} if color != "auto" else None)
        if plan.complete is not None:
            if progress is not None:
                progress(total, total)
            return _from_entry(plan, samples)
    assembler = _Assembler(
        total,
        height,
        width if width is not None else max_width,
        color,
        variable=width is None,
        alloc=_cache_alloc(plan) if plan is not None and plan.writable else None,
    )
    decoded = [0]  # files decoded (a race between threads only blurs this count, which is a report)

    def job(item: tuple[int, Sample]) -> _Result:
        hit = plan.cached(item[0]) if plan is not None else None
        if hit is not None:
            return hit
        decoded[0] += 1
        return _load_one(
            item[1], height=height, width=width, max_width=max_width, color=color, resize=resize, max_pixels=max_pixels
        )

    try:
        _decode_all(job, samples, assembler, progress, workers)
        loaded = assembler.finish(samples)
    except BaseException:
        if plan is not None:
            plan.discard()
        raise
    loaded.decoded = decoded[0]
    if plan is not None:
        _commit(plan, loaded, assembler)
    return loaded


def _check_options(height: int, width: int | None, max_width: int, color: str, resize: str) -> None:
    """:func:`load_images`'s checks of its options: a ValueError naming the bad one."""
    if color not in COLOR_MODES:
        raise ValueError(f"color must be one of {', '.join(COLOR_MODES)}, got {color!r}")
    if height < 1 or (width if width is not None else max_width) < 1:
        raise ValueError(f"image size must be at least 1x1, got {height}x{width}")
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize mode must be one of {', '.join(RESIZE_MODES)}, got {resize!r}")


def _cache_alloc(plan: CachePlan) -> Callable[[tuple[int, ...]], np.ndarray]:
    """Allocates the assembler's rows in ``plan``'s cache file, or in memory once the cache cannot
    be written (e.g. no room on the disk: the plan is disabled with a note saying so)."""

    def alloc(shape: tuple[int, ...]) -> np.ndarray:
        if plan.writable:
            try:
                return plan.allocate(shape)
            except OSError as e:
                plan.disable(f"cannot write to {plan.folder} ({e.strerror or e}); decoding into memory")
        return np.empty(shape, np.uint8)

    return alloc


def _decode_all(
    job: Callable[[tuple[int, Sample]], _Result],
    samples: list[Sample],
    assembler: _Assembler,
    progress: Callable[[int, int], None] | None,
    workers: int,
) -> None:
    """Runs ``job`` on every (index, sample), in this thread or on ``workers`` threads, and hands
    the results to ``assembler`` in input order."""
    items = list(enumerate(samples))
    total = len(items)
    if workers == 1 or total <= 1:
        _consume(map(job, items), samples, assembler, progress, total)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="explorer-decode") as pool:
        _consume(_ordered(pool, job, items, window=4 * workers), samples, assembler, progress, total)


def _commit(plan: CachePlan, loaded: LoadedImages, assembler: _Assembler) -> None:
    """Makes the decoded rows ``plan``'s cache entry; ``loaded`` then reads the entry's map."""
    loaded.images = plan.commit(
        loaded.images,
        kept=assembler.kept,
        gray=assembler.gray,
        widths=assembler.widths if assembler.variable else None,
        reasons=assembler.reasons,
        color=loaded.color,
    )
    loaded.note = plan.note
    loaded.sums = plan.sums


def _from_entry(plan: CachePlan, samples: list[Sample]) -> LoadedImages:
    """A full cache hit: the entry's map itself, nothing decoded or copied."""
    entry = plan.complete
    assert entry is not None
    kept = [i for i, r in enumerate(entry.rows) if r >= 0]
    return LoadedImages(
        images=entry.images,
        samples=[samples[i] for i in kept],
        problems=[
            Problem(str(samples[i].path), entry.reasons.get(i, "cannot be used"))
            for i, r in enumerate(entry.rows)
            if r < 0
        ],
        color=entry.color,
        widths=np.asarray(entry.widths, dtype=np.int64) if entry.widths is not None else None,
        note=plan.note,
        sums=entry.sums,
    )


def _usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _ordered(
    pool: ThreadPoolExecutor,
    job: Callable[[tuple[int, Sample]], _Result],
    samples: list[tuple[int, Sample]],
    window: int,
) -> Iterator[_Result]:
    """Like ``pool.map`` but with at most ``window`` jobs queued or finished-and-unread at a time.

    ``Executor.map`` submits every job at once: for a million files that is a million futures, and
    results that finish ahead of a slow file pile up. A bounded window keeps memory flat while
    still yielding in input order.
    """
    pending: deque[Future[_Result]] = deque()
    for sample in samples:
        pending.append(pool.submit(job, sample))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _consume(
    results: Iterable[_Result],
    samples: list[Sample],
    assembler: _Assembler,
    progress: Callable[[int, int], None] | None,
    total: int,
) -> None:
    for index, (image, reason) in enumerate(results):
        if image is None:
            assembler.drop(index, Problem(str(samples[index].path), reason or "cannot be used"))
        else:
            assembler.put(index, image)
        if progress is not None:
            progress(index + 1, total)


class _Assembler:
    """Writes prepared images into one preallocated array without ever holding two full copies.

    Results arrive in input order, so each kept image goes to the next free row and the array is
    compact at all times; rows reserved for dropped samples are cut off at the end, in place.
    In ``"auto"`` mode the colour is only known at the end, so images start out in a one-channel
    buffer; the first colour image switches to a three-channel buffer (gray images so far are
    replicated into it and the one-channel buffer is freed).

    ``alloc`` makes the buffers (default: memory); with the cache's allocator they are memory-mapped
    files, and every step here (switch to RGB, cut rows, cut padding) works on the map in place or
    by a chunked copy into a new map, never through a full copy in memory.
    """

    def __init__(
        self,
        total: int,
        height: int,
        width: int,
        color: str,
        variable: bool = False,
        alloc: Callable[[tuple[int, ...]], np.ndarray] | None = None,
    ) -> None:
        self.alloc = alloc or (lambda shape: np.empty(shape, np.uint8))
        self.channels = 3 if color == "rgb" else 1
        self.buffer = self.alloc((total, height, width, self.channels))
        self.kept: list[int] = []
        self.problems: list[Problem] = []
        self.reasons: dict[int, str] = {}
        self.variable = variable
        self.widths: list[int] = []
        self.gray: list[bool] = []  # per kept image: prepared with one channel

    def drop(self, index: int, problem: Problem) -> None:
        self.problems.append(problem)
        self.reasons[index] = problem.reason

    def put(self, index: int, image: np.ndarray) -> None:
        if image.shape[2] == 3 and self.channels == 1:
            self._switch_to_rgb()
        if self.variable:
            self.widths.append(image.shape[1])
            image = pad_right(image, self.buffer.shape[2])
        self.buffer[len(self.kept)] = image  # broadcasting replicates a one-channel image into three channels
        self.kept.append(index)
        self.gray.append(image.shape[2] == 1)

    def _switch_to_rgb(self) -> None:
        rgb = self.alloc((*self.buffer.shape[:3], 3))
        n = len(self.kept)
        _copy_rows(rgb, self.buffer, n)
        self.buffer = rgb
        self.channels = 3

    def finish(self, samples: list[Sample]) -> LoadedImages:
        n = len(self.kept)
        images, self.buffer = self.buffer, None  # drop our reference so the in-place resize is allowed
        mapped = isinstance(images, np.memmap)
        if n < images.shape[0]:
            if mapped:  # the file is cut to these rows when the cache stores it
                images = images[:n]
            else:
                try:
                    images.resize((n, *images.shape[1:]), refcheck=True)  # shrink in place, no copy
                except ValueError:  # someone else holds a reference: fall back to a compact copy
                    images = np.ascontiguousarray(images[:n])
        widths = None
        if self.variable:
            widths = np.asarray(self.widths, dtype=np.int64)
            widest = int(widths.max()) if n else 1
            if widest < images.shape[2]:  # every row is edge-padded, so cutting the tail is exact
                if mapped:
                    cut = self.alloc((n, images.shape[1], widest, images.shape[3]))
                    _copy_rows(cut, images[:, :, :widest], n)
                    images = cut
                else:
                    images = np.ascontiguousarray(images[:, :, :widest])
        return LoadedImages(
            images=images,
            samples=[samples[i] for i in self.kept],
            problems=self.problems,
            color="rgb" if self.channels == 3 else "gray",
            widths=widths,
        )


def _copy_rows(dst: np.ndarray, src: np.ndarray, n: int, chunk_bytes: int = 16 << 20) -> None:
    """``dst[:n] = src[:n]`` (broadcasting channels) a few MiB at a time."""
    step = max(1, chunk_bytes // max(1, int(np.prod(dst.shape[1:]))))
    for i in range(0, n, step):
        dst[i : min(n, i + step)] = src[i : min(n, i + step)]
