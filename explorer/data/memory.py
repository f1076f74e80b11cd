"""How much RAM the data layer may use, and giving back what it used.

* :func:`available_ram`: the memory available now (``MemAvailable``);
* :func:`memory_budget`: the RAM a run may take beyond the libraries it imports (a setting, or
  half of what is available); :func:`data_budget`: the part of it its decoded images may take,
  the rest (:data:`COMPUTE_RESERVE_BYTES`) being kept for the training and evaluation steps;
* :func:`spill_array`: a uint8 array backed by an unlinked file, for splits beyond the budget;
* :func:`release_free_heap`: hands the C heap's free pages back to the system after a phase
  that allocated and freed a lot from several threads (decoding). glibc keeps one arena per
  thread and returns freed memory only from each arena's top, so after a parallel decode of
  20,000 files the process kept ~130 MiB of freed, fragmented heap resident for the rest of
  the run (``tests/bench/cache_bench.py``: a cold run's peak anonymous memory, 364 MiB, was
  130 MiB over the warm run's, which decodes nothing);
* :func:`reuse_freed_heap`: the opposite for the training phase, whose every step allocates and
  frees the same tensors: glibc is told to keep up to :data:`KEEP_FREED_BYTES` of freed heap for
  the next step instead of handing it back and faulting the same pages in again.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import secrets
import sys
from functools import cache
from pathlib import Path

import numpy as np

__all__ = [
    "COMPUTE_RESERVE_BYTES",
    "MIN_BUDGET_BYTES",
    "available_ram",
    "budget_note",
    "data_budget",
    "memory_budget",
    "release_free_heap",
    "reuse_freed_heap",
    "spill_array",
]

#: What a run needs beside its data, kept out of the decoded images' share of the budget: the
#: training and evaluation steps (activations, gradients, optimizer moments, batches) and
#: PyTorch's own first-use allocations (thread pools, oneDNN primitives, autograd) with the C
#: heap's slack. Measured (``tests/bench/cache_bench.py``, ``cnn --set channels=8,16``, batch 32,
#: 96x96): 114-134 MiB for a run on 300 images (8 MiB decoded); 75-268 MiB of growth over a run
#: on 20,000 with every split on disk (one epoch and the final evaluation; the spread is the C
#: heap's fragmentation, which differs from run to run). A budget below what the steps need cannot
#: hold, whatever the data does; the step-memory check (:mod:`explorer.engine.resources`)
#: estimates a step before training.
COMPUTE_RESERVE_BYTES = 256 << 20

#: The smallest budget a run can keep to: the reserve and 64 MiB for the bookkeeping and the
#: batches gathered from the disk cache. A run with every split on disk grew by up to 268 MiB
#: (above); a run given less is told so at its start (:func:`budget_note`).
MIN_BUDGET_BYTES = COMPUTE_RESERVE_BYTES + (64 << 20)


def budget_note(mib: int) -> str | None:
    """What a run set a budget of ``mib`` MiB should be told: None when the budget can hold, else
    that the run will take more (its data still goes to disk, the steps need what they need)."""
    least = MIN_BUDGET_BYTES >> 20
    if 0 < mib < least:
        return (
            f"data.memory_budget: {mib} MiB is less than a run needs besides its images ({least} MiB: "
            f"training steps take about {COMPUTE_RESERVE_BYTES >> 20} MiB); every split trains from the "
            "disk cache, and the run may still take more than the budget"
        )
    return None


def available_ram() -> int | None:
    """Bytes of RAM available now (``MemAvailable``, else free pages); None when it cannot be told."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def memory_budget(mib: int = 0) -> int:
    """Bytes of RAM a run may take beyond the libraries it imports (its data, bookkeeping and
    steps; see :func:`data_budget` for the data's part).

    Args:
        mib: A set budget in MiB; 0 = automatic: half of the memory available now (1 GiB when
            that cannot be told).
    """
    if mib > 0:
        return int(mib) << 20
    free = available_ram()
    return free // 2 if free else 1 << 30


def data_budget(mib: int = 0) -> int:
    """Bytes of :func:`memory_budget` the decoded images (and their bookkeeping) may take: the
    budget less :data:`COMPUTE_RESERVE_BYTES`, at least 0 (then every split beyond RAM's reach
    trains from the disk cache)."""
    return max(0, memory_budget(mib) - COMPUTE_RESERVE_BYTES)


def spill_array(shape: tuple[int, ...], directory: str | os.PathLike[str]) -> np.ndarray:
    """A zero-filled uint8 array of ``shape`` backed by an anonymous file in ``directory``.

    The file is unlinked right after it is mapped (POSIX keeps it until the map goes; where that
    is refused it is removed at exit), so its pages are file-backed: the kernel writes them out
    under memory pressure instead of counting them against the process.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f".spill-{os.getpid()}-{secrets.token_hex(6)}.u8"
    arr = np.memmap(path, dtype=np.uint8, mode="w+", shape=shape) if int(np.prod(shape)) else np.zeros(shape, np.uint8)
    try:
        path.unlink()
    except OSError:  # Windows: a mapped file cannot be deleted
        import atexit

        atexit.register(lambda: path.unlink(missing_ok=True))
    return arr


@cache
def _glibc(name: str, *argtypes: type):  # noqa: ANN202
    """glibc's malloc call ``name`` taking ``argtypes`` and returning an int (None: not Linux, or
    a C library without it, as musl)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = getattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), name)
    except (OSError, AttributeError):
        return None
    fn.argtypes, fn.restype = list(argtypes), ctypes.c_int
    return fn


#: How much freed memory at the top of each C heap arena glibc keeps while a run trains (and the
#: size below which it allocates from the heap, not from fresh ``mmap`` pages). glibc's defaults
#: start both at 128 KiB and raise them only as it sees large blocks freed, so a training step's
#: tensors, allocated and freed every step, were often returned to the system and faulted in
#: again: a 1-epoch crnn run in the app's worker thread took 450-830 k page faults and 2.1-3.4 s
#: of system time, 427 k with these set after the data phase (350-380 k and 1.7-1.9 s set from the
#: process's start; a conv_rnn: 600 k -> 260 k); the CLI's whole run takes ~390 k. 32 MiB is glibc's own ceiling for the dynamic mmap threshold; the
#: freed memory kept is bounded by it per arena, well inside :data:`COMPUTE_RESERVE_BYTES`.
KEEP_FREED_BYTES = 32 << 20

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)


def reuse_freed_heap() -> bool:
    """Makes glibc keep freed memory for reuse (:data:`KEEP_FREED_BYTES`) instead of handing it
    back to the system at each free; False where there is no such call. For the phase whose steps
    allocate and free the same sizes over and over (training); :func:`release_free_heap` still
    returns the free pages when the phase ends. Process-wide and lasting."""
    mallopt = _glibc("mallopt", ctypes.c_int, ctypes.c_int)
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, KEEP_FREED_BYTES)) & bool(mallopt(_M_TRIM_THRESHOLD, KEEP_FREED_BYTES))


def release_free_heap() -> bool:
    """Returns the C heap's free pages to the system (glibc ``malloc_trim(0)``, which trims every
    arena); False where there is no such call. Cheap (a few ms); call it after a phase that
    freed much memory from several threads."""
    trim = _glibc("malloc_trim", ctypes.c_size_t)
    if trim is None:
        return False
    trim(0)
    return True
