"""Atomic file writes: a crash mid-save always leaves the previous file usable.

Each writer produces a temporary file in the same directory, flushes and fsyncs
it, then ``os.replace``-s it over the target (atomic on POSIX and Windows). The
temporary file is created with mode 0o666 minus the process umask, so the result has
the user's normal file mode (``tempfile.mkstemp`` would leave it 0600).
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["atomic_write", "write_bytes", "write_text", "write_json", "read_json"]


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], None], *, parents: bool = True) -> None:
    """Call ``write(tmp_path)`` then atomically move the result to ``path``.

    Args:
        parents: create missing parent folders (else a missing folder raises FileNotFoundError).
    """
    path = Path(path)
    if parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _new_temp(path)
    mode = stat.S_IMODE(os.stat(tmp_path).st_mode)  # 0o666 less the umask, as the kernel applied it
    try:
        write(tmp_path)
        os.chmod(tmp_path, mode)  # some writers (safetensors) recreate the file as 0600
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _new_temp(path: Path) -> Path:
    """A new empty file beside ``path``, mode 0o666 less the umask (the kernel applies it)."""
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{path.parent}: no free temporary file name for {path.name}")


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    atomic_write(path, lambda p: p.write_bytes(data))


def write_text(path: str | os.PathLike[str], text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)
