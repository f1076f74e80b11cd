"""The decoded-image cache: prepared uint8 images kept on disk and memory-mapped on the next load.

A second run (or an app restart) on the same files with the same preprocessing maps the rows
it decoded before instead of decoding again, and a data set larger than RAM trains from the
map (the kernel pages rows in and out; they are file-backed pages, not the process's own).

**Keys.** A row is reused only when both match:

- the *preprocessing signature*: height, width (None for variable-width lines) and their
  maximum width, colour mode, resize mode, the pixel-count limit and :data:`CACHE_VERSION`
  (bumped whenever decoding or preparing would give other pixels). Each signature has its
  own folder ``<root>/<sha256(signature)[:20]>``;
- the *file identity*: absolute path, size, ``mtime_ns``, inode and device (``os.stat``;
  the inode and device stand in for a fully resolved path, at a fraction of its cost).

A file modified less than :data:`RACY_SECONDS` before it was looked at is decoded but not
cached (file systems keep coarse time stamps; git calls this "racy"): a file rewritten with
the same size in the same tick is never mistaken for the cached one.

**Storage.** One *entry* per list of files (named after a hash of the ordered paths): a raw
C-order uint8 file ``<name>-<token>.u8`` holding ``(N, H, W, C)`` rows and an index
``<name>.json`` with the shape, the colour, each file's identity and outcome (its row, its
true width, whether it was gray, or why it could not be used), a digest of eight spread rows
and a SHA-256 over the index itself. The data file is written first under a unique temporary
name, then renamed; the index is written to a temporary file and renamed over the old one last,
so a reader sees either the old entry or the new one, never a mix. Two writers (two runs,
DDP ranks) each decode and write their own data file; replacing the index (and deleting the
data file it replaces) happens under an ``flock`` of the signature folder, so the last writer
wins, no data file is left behind and every index points at a complete file.

**Trust.** An index is used only when its checksum, version, signature, shape, the data
file's exact size and the digest of the sampled rows all agree; anything else is a miss
(the entry is rebuilt). A cache folder that cannot be read or written never fails a load:
decoding goes on in memory and :attr:`CachePlan.note` says why.

**Partial hits.** When some files changed, or the list differs (a file added, the
evaluation subset of a training set), rows of every valid entry of the signature (the
:data:`MAX_ENTRIES` newest) are reused and only the rest is decoded; the result becomes a
new entry and the oldest entries beyond :data:`MAX_ENTRIES` are deleted.

**Memory budget.** :func:`~explorer.data.memory.data_budget` is how much RAM the decoded images of a run may
take: a set number of MiB, or by default half of the memory available when asked. Loads
through the cache decode straight into the memory-mapped file, so decoding never holds the
whole array in RAM; consumers (the engine's train/validation split) keep arrays larger
than the budget on disk (:func:`~explorer.data.memory.spill_array`) instead of copying them into memory.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import write_bytes
from .records import Sample
from .samples import cache_dir

__all__ = [
    "CACHE_VERSION",
    "MAX_ENTRIES",
    "RACY_SECONDS",
    "CachePlan",
    "DecodedCache",
    "default_cache_root",
    "row_sums",
]

log = logging.getLogger(__name__)

#: Bumped whenever the same file and settings would be prepared into other pixels.
CACHE_VERSION = 1
#: Entries kept per preprocessing signature (the least recently written are deleted).
MAX_ENTRIES = 8
#: Files modified this recently are decoded but not cached (coarse file-system time stamps).
RACY_SECONDS = 2.0
_PROBE_ROWS = 8
_COPY_ROWS_BYTES = 16 << 20  # chunk size of row copies between maps (bounded memory)

# (absolute path, size, mtime_ns, inode, device)
FileId = tuple[str, int, int, int, int]


def default_cache_root() -> Path:
    """``$MODEL_EXPLORER_CACHE/decoded``, else ``~/.cache/model-explorer/decoded``."""
    return cache_dir() / "decoded"


def file_identity(path: os.PathLike[str] | str) -> FileId | None:
    """What makes a cached row valid for ``path``; None when it cannot be stat-ed."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (os.path.abspath(path), st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _probe(images: np.ndarray) -> str:
    """SHA-256 of eight rows spread over the array (cheap, catches a shifted or zeroed file)."""
    h = hashlib.sha256(repr(images.shape).encode())
    n = images.shape[0]
    if n:
        for i in sorted({int(i) for i in np.linspace(0, n - 1, min(n, _PROBE_ROWS)).round()}):
            h.update(np.ascontiguousarray(images[i]).tobytes())
    return h.hexdigest()


def row_sums(images: np.ndarray, widths: Sequence[int] | None = None) -> np.ndarray:
    """Per row and channel: the sum and the sum of squares of its real pixels, int64 ``(N, 2, C)``.

    Exact integers, so the normalisation statistics of any subset of rows follow from a sum of
    rows (the same figures as a float64 pass over the pixels); read a few MiB at a time.
    """
    n, c = int(images.shape[0]), int(images.shape[-1])
    out = np.zeros((n, 2, c), np.int64)
    step = max(1, (4 << 20) // max(1, int(np.prod(images.shape[1:]))))  # 4 MiB of rows, 8 MiB as uint16
    for i in range(0, n, step):
        chunk = np.asarray(images[i : i + step]).astype(np.uint16)  # 255**2 fits
        if widths is not None:  # padding excluded (a row's tail repeats its last column)
            cols = np.arange(chunk.shape[2])[None, None, :, None]
            chunk *= cols < np.asarray(widths[i : i + step])[:, None, None, None]
        out[i : i + step, 0] = chunk.sum(axis=(1, 2), dtype=np.int64)
        np.square(chunk, out=chunk)
        out[i : i + step, 1] = chunk.sum(axis=(1, 2), dtype=np.int64)
    return out


@dataclass
class _Entry:
    """One valid entry, mapped read-only (copy-on-write, so torch may wrap it)."""

    index_path: Path
    images: np.ndarray  # (N, H, W, C) uint8 memmap
    files: list[FileId | None]
    rows: list[int]  # per file: its row, or -1
    gray: list[bool]  # per row
    widths: list[int] | None  # per row, variable width only
    reasons: dict[int, str]  # file position -> why it could not be used
    color: str
    sums: np.ndarray  # (rows, 2, C) int64, see row_sums


@dataclass
class CachePlan:
    """What the cache holds for one load, and where the load writes what it decodes.

    Built by :meth:`DecodedCache.plan`; :func:`~explorer.data.loading.load_images` asks it for
    each sample (:meth:`cached`), decodes the rest into :meth:`allocate`-d arrays and hands the
    result to :meth:`commit`. Every cache failure turns the plan off and sets :attr:`note`.
    """

    cache: DecodedCache | None
    folder: Path | None = None
    name: str = ""
    signature: dict[str, Any] = field(default_factory=dict)
    ids: list[FileId | None] = field(default_factory=list)
    known: dict[int, tuple[_Entry, int]] = field(default_factory=dict)  # file position -> (entry, file position there)
    complete: _Entry | None = None  # an entry holding exactly this list, all identities equal
    note: str | None = None
    writable: bool = False
    racy: set[int] = field(default_factory=set)  # files too new (or missing) to be cached
    sums: np.ndarray | None = None  # row_sums of the committed images
    _temps: list[Path] = field(default_factory=list)

    def disable(self, why: str) -> None:
        if self.note is None:
            self.note = why
            log.warning("decoded-image cache: %s", why)
        self.writable = False

    def cached(self, i: int) -> tuple[np.ndarray | None, str | None] | None:
        """``(prepared image, None)`` or ``(None, reason)`` from the cache for file ``i``; None if unknown."""
        hit = self.known.get(i)
        if hit is None:
            return None
        entry, j = hit
        row = entry.rows[j]
        if row < 0:
            return None, entry.reasons.get(j, "cannot be used")
        img = entry.images[row]
        if entry.widths is not None:
            img = img[:, : entry.widths[row]]
        if entry.gray[row] and img.shape[2] == 3:  # a gray image stored replicated in an RGB entry
            img = img[:, :, :1]
        return np.array(img), None

    def allocate(self, shape: tuple[int, ...]) -> np.ndarray:
        """A uint8 array of ``shape`` in a new temporary file of this entry (memory-mapped)."""
        assert self.folder is not None
        path = self.folder / f".tmp-{os.getpid()}-{secrets.token_hex(6)}.u8"
        self._temps.append(path)
        size = int(np.prod(shape))
        if size == 0:
            return np.zeros(shape, np.uint8)
        with open(path, "wb") as f:
            # reserve the blocks now: writing into the map of a sparse file on a full disk is a SIGBUS
            if hasattr(os, "posix_fallocate"):
                os.posix_fallocate(f.fileno(), 0, size)
            else:  # pragma: no cover - not Linux
                f.truncate(size)
        return np.memmap(path, dtype=np.uint8, mode="r+", shape=shape)

    def discard(self) -> None:
        """Removes this load's temporary files (all of them once committed or abandoned)."""
        for p in self._temps:
            try:
                p.unlink(missing_ok=True)
            except OSError:
                pass
        self._temps.clear()

    def commit(
        self,
        images: np.ndarray,
        *,
        kept: list[int],
        gray: list[bool],
        widths: list[int] | None,
        reasons: dict[int, str],
        color: str,
    ) -> np.ndarray:
        """Stores the finished load as this list's entry; returns the images as mapped from it.

        ``images`` is the load's result (a memmap from :meth:`allocate` or an array in memory);
        files in :attr:`racy` are left out of the index (they will be decoded again). On failure the
        images are returned as given and :attr:`note` says why.
        """
        if not self.writable or self.folder is None:
            self.discard()
            return images
        data_path: Path | None = None
        try:
            token = secrets.token_hex(6)
            data_name = f"{self.name}-{token}.u8"
            data_path = self.folder / data_name
            n = int(images.shape[0])
            self._write_data(images, data_path, token)
            files, rows, reason_map = self._file_rows(kept, reasons)
            mapped = np.memmap(data_path, dtype=np.uint8, mode="c", shape=tuple(images.shape)) if n else images
            self.sums = row_sums(mapped, widths)
            index = {
                "version": CACHE_VERSION,
                "signature": self.signature,
                "data": data_name,
                "shape": list(images.shape),
                "color": color,
                "files": files,
                "rows": rows,
                "gray": [bool(g) for g in gray],
                "widths": widths,
                "reasons": reason_map,
                "sums": self.sums.reshape(n, 2 * int(images.shape[-1])).tolist(),
                "probe": _probe(mapped),
            }
            index["checksum"] = _digest(index)
            self._publish(index)
            return mapped
        except OSError as e:
            self.disable(f"cannot write to {self.folder} ({e.strerror or e}); decoded images are kept in memory")
            kept = np.array(images) if isinstance(images, np.memmap) else images
            if data_path is not None:
                _remove(data_path)
            return kept
        finally:
            self.discard()

    def _write_data(self, images: np.ndarray, data_path: Path, token: str) -> None:
        """Puts the rows at ``data_path``: the temporary file :meth:`allocate` made, renamed (its
        dropped rows cut off the end), or a copy of rows held in memory, written then renamed."""
        assert self.folder is not None
        src = self._temps[-1] if isinstance(images, np.memmap) and self._temps else None
        if src is not None and os.path.abspath(getattr(images, "filename", None) or "") == os.path.abspath(src):
            images.flush()
            log.debug("decoded-image cache: %s becomes %s", src, data_path)
            os.truncate(src, int(np.prod(images.shape)))  # dropped rows sat at the end
            os.replace(src, data_path)
            self._temps.remove(src)
            return
        tmp = self.folder / f".tmp-{os.getpid()}-{token}.u8"
        with open(tmp, "wb") as f:
            step = max(1, _COPY_ROWS_BYTES // max(1, int(np.prod(images.shape[1:]))))
            for i in range(0, int(images.shape[0]), step):
                f.write(np.ascontiguousarray(images[i : i + step]).tobytes())
        os.replace(tmp, data_path)

    def _file_rows(self, kept: list[int], reasons: dict[int, str]) -> tuple[list[Any], list[int], dict[str, str]]:
        """The index's ``files`` (each file's identity; None for one that changed while read),
        ``rows`` (each file's row, -1 for none) and ``reasons`` (why an unusable file has none)."""
        files: list[Any] = []
        rows: list[int] = []
        reason_map: dict[str, str] = {}
        row_of = {pos: r for r, pos in enumerate(kept)}
        for pos, fid in enumerate(self.ids):
            if pos in self.racy or fid is None:
                files.append(None)
                rows.append(-1)
                continue
            files.append(list(fid))
            rows.append(row_of.get(pos, -1))
            if pos not in row_of:
                reason_map[str(pos)] = reasons.get(pos, "cannot be used")
        return files, rows, reason_map

    def _publish(self, index: dict[str, Any]) -> None:
        """Writes ``index`` as this list's entry (atomically), deletes the data it replaced and
        prunes old entries, one writer at a time."""
        assert self.folder is not None
        index_path = self.folder / f"{self.name}.json"
        with _locked(self.folder / ".lock"):
            old = _read_json(index_path)
            write_bytes(index_path, json.dumps(index, separators=(",", ":")).encode())
            if old and old.get("data") != index["data"]:
                _remove(self.folder / str(old.get("data", "")))
            self._prune()

    def _prune(self) -> None:
        assert self.folder is not None
        indexes = sorted(self.folder.glob("*.json"), key=lambda p: _mtime(p), reverse=True)
        for stale in indexes[MAX_ENTRIES:]:
            data = (_read_json(stale) or {}).get("data")
            _remove(stale)
            if data:
                _remove(self.folder / str(data))
        cutoff = time.time() - 86400  # temporaries of crashed writers: rows (.tmp-*), indexes (.*.tmp)
        for tmp in [*self.folder.glob(".tmp-*"), *self.folder.glob(".*.json.*.tmp")]:
            if _mtime(tmp) < cutoff:
                _remove(tmp)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (``flock``: released by the kernel if the process dies);
    without ``fcntl`` (Windows) no lock: each writer's files are still its own, see the module docstring."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(path, "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:
        return 0.0


def _remove(p: Path) -> None:
    try:
        if p.is_file():
            p.unlink()
    except OSError:
        pass


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as f:
            obj = json.loads(f.read())
        return obj if isinstance(obj, dict) else None
    except (OSError, ValueError, UnicodeDecodeError):
        return None


class DecodedCache:
    """The cache folder (see the module docstring for keys, storage and trust).

    Args:
        root: The folder; default :func:`default_cache_root`.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root).expanduser() if root else default_cache_root()

    def __repr__(self) -> str:
        return f"DecodedCache({str(self.root)!r})"

    def plan(
        self, signature: dict[str, Any], samples: Sequence[Sample], *, fallback: dict[str, Any] | None = None
    ) -> CachePlan:
        """What the cache holds for ``samples`` prepared with ``signature`` (never raises).

        ``fallback``: the signature with ``color="auto"`` when ``signature`` asks for a set colour
        (a resumed run or ``evaluate`` knows the colour the training run resolved): rows of its
        entries are reused where they are exact: every row for ``"rgb"`` (a gray row is replicated),
        the rows of gray images for ``"gray"``.
        """
        signature = {"version": CACHE_VERSION, **signature}
        sig_name = _digest(signature)[:20]
        folder = self.root / sig_name
        plan = CachePlan(self, folder, signature=signature)
        now = time.time_ns()
        plan.ids = [file_identity(s.path) for s in samples]
        plan.name = hashlib.sha256("\n".join(os.path.abspath(s.path) for s in samples).encode()).hexdigest()[:24]
        plan.racy = {i for i, fid in enumerate(plan.ids) if fid is None or now - fid[2] < RACY_SECONDS * 1e9}
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / f".tmp-{os.getpid()}-{secrets.token_hex(4)}.probe"
            probe.touch()
            probe.unlink()
            plan.writable = True
        except OSError as e:
            plan.disable(f"cannot use the cache folder {folder} ({e.strerror or e}); decoding without it")
            return plan
        own = folder / f"{plan.name}.json"
        entries = []
        if own.exists():
            entry = self._open(own, signature, plan)
            if entry is not None and not plan.racy and entry.files == plan.ids:
                plan.complete = entry  # the common case: nothing else to read
                return plan
            entries = [entry] if entry is not None else []
        others = sorted((p for p in folder.glob("*.json") if p != own), key=_mtime, reverse=True)
        entries += [e for e in (self._open(p, signature, plan) for p in others[: MAX_ENTRIES - 1]) if e is not None]
        by_id: dict[FileId, tuple[_Entry, int]] = {}
        for entry in entries:
            for j, fid in enumerate(entry.files):
                if fid is not None:
                    by_id.setdefault(fid, (entry, j))
        if fallback is not None:
            fallback = {"version": CACHE_VERSION, **fallback}
            other = self.root / _digest(fallback)[:20]
            paths = sorted(other.glob("*.json"), key=_mtime, reverse=True)[:MAX_ENTRIES] if other.is_dir() else []
            gray_only = signature.get("color") == "gray"
            for entry in (e for e in (self._open(p, fallback, plan) for p in paths) if e is not None):
                for j, fid in enumerate(entry.files):
                    row = entry.rows[j]
                    if fid is not None and (row < 0 or not gray_only or entry.gray[row]):
                        by_id.setdefault(fid, (entry, j))
        for i, fid in enumerate(plan.ids):
            if fid is not None and i not in plan.racy and fid in by_id:
                plan.known[i] = by_id[fid]
        return plan

    def _open(self, path: Path, signature: dict[str, Any], plan: CachePlan) -> _Entry | None:
        """The entry indexed by ``path`` if every check passes; else None (and it is removed)."""
        index = _read_json(path)
        problem = None
        if index is None:
            problem = "unreadable index"
        elif index.get("version") != CACHE_VERSION:
            problem = "another cache version"
        elif index.get("checksum") != _digest({k: v for k, v in index.items() if k != "checksum"}):
            problem = "index checksum mismatch"
        elif index.get("signature") != signature:
            problem = "signature mismatch"
        if problem is None:
            assert index is not None
            try:
                shape = tuple(int(v) for v in index["shape"])
                data_path = path.parent / str(index["data"])
                size = data_path.stat().st_size
                expected = int(np.prod(shape))
                if len(shape) != 4 or size != expected:
                    problem = f"data file is {size} bytes, expected {expected}"
                else:
                    images = (
                        np.memmap(data_path, dtype=np.uint8, mode="c", shape=shape)
                        if expected
                        else np.zeros(shape, np.uint8)
                    )
                    if _probe(images) != index["probe"]:
                        problem = "sampled rows do not match their digest"
                    else:
                        files = [tuple(f) if f is not None else None for f in index["files"]]
                        rows = [int(r) for r in index["rows"]]
                        gray = [bool(g) for g in index["gray"]]
                        widths = index["widths"]
                        sums = np.asarray(index["sums"], dtype=np.int64).reshape(shape[0], 2, shape[3])
                        if len(rows) != len(files) or len(gray) != shape[0] or max(rows, default=-1) >= shape[0]:
                            problem = "inconsistent index"
                        else:
                            return _Entry(
                                path,
                                images,
                                files,  # type: ignore[arg-type]
                                rows,
                                gray,
                                [int(w) for w in widths] if widths is not None else None,
                                {int(k): str(v) for k, v in index["reasons"].items()},
                                str(index["color"]),
                                sums,
                            )
            except (OSError, KeyError, TypeError, ValueError) as e:
                problem = f"unusable entry ({e})"
        log.info("decoded-image cache: %s: %s; rebuilding it", path, problem)
        plan.note = plan.note or f"cache entry {path.name} was invalid ({problem}) and is rebuilt"
        _remove(path)
        return None
