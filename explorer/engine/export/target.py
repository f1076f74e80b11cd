"""Where an export goes: the files it writes, and the destinations it refuses.

The suffix rule: the format's suffix (``.onnx``...) is appended to ``--out`` only when it is
missing (``model`` -> ``model.onnx``, ``model.v2`` -> ``model.v2.onnx``); the name as given is
checked first, so ``--out /dev/null`` is refused as a device instead of becoming
``/dev/null.onnx``. The JSON is ``NAME.json`` beside it; a model exported as several graphs
writes ``NAME.<part>.onnx`` per graph (the captioner: ``NAME.encoder.onnx``, ``NAME.decoder.onnx``).

Refused, before anything is written: a run's own files (``config.json``, the weights, the
checkpoint... of the run folder, or the files an exported bundle was opened from), a folder
that does not exist (it is not created), a folder, a device or other special file (FIFO,
socket), a name ending in another format's suffix or ``.json``, and two targets that would be
one file.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from .. import runfolder
from ._common import SUFFIX, ExportTargetError

__all__ = ["ExportFiles", "plan_files", "run_files"]

#: files a run folder owns (an export never writes over them)
_RUN_FOLDER_FILES = (
    runfolder.CONFIG,
    runfolder.WEIGHTS,
    runfolder.METRICS,
    runfolder.HISTORY,
    runfolder.CHECKPOINT,
    runfolder.PROBLEMS,
)


@dataclass(frozen=True)
class ExportFiles:
    """The files one export writes: one model file per graph part ("" = the whole model), and the JSON."""

    models: dict[str, Path]
    json: Path

    def all(self) -> list[Path]:
        return [*self.models.values(), self.json]


def run_files(sources: list[Path]) -> set[Path]:
    """The resolved files a run was loaded from, with every file a run folder owns."""
    own: set[Path] = set()
    for src in sources:
        if src.is_dir():
            names = set(_RUN_FOLDER_FILES) | set(getattr(runfolder, "RUN_FILES", ()))
            own |= {(src / n).resolve() for n in names}
            own |= {p.resolve() for p in src.iterdir() if p.name.startswith(".")}  # locks, temporaries
        else:
            own.add(src.resolve())
    return own


def _refuse_special(path: Path) -> None:
    try:
        st = os.stat(path)  # follows links: a link to /dev/null is a device
    except FileNotFoundError:
        return
    except OSError as e:
        raise ExportTargetError(f"{path}: cannot be written ({e.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ExportTargetError(f"{path}: is a folder; name the file to write (e.g. {path / 'model'})")
    if not stat.S_ISREG(st.st_mode):
        raise ExportTargetError(f"{path}: is a device or special file, not a file an export can write")


def _refuse_own(path: Path, own: set[Path]) -> None:
    if path.resolve() in own:
        raise ExportTargetError(f"{path}: belongs to the run being exported; choose another file name")


def _with_suffix(given: Path, fmt: str) -> Path:
    suffix = SUFFIX[fmt]
    if given.suffix == suffix:
        return given
    others = {s for f, s in SUFFIX.items() if f != fmt}
    if given.suffix in others or given.suffix == ".json":
        raise ExportTargetError(
            f"{given}: a {fmt} export is written as {given.with_suffix(suffix).name}"
            f"{' (its JSON is written beside it)' if given.suffix == '.json' else ''}; name it so, or choose "
            f"the format its suffix names"
        )
    return Path(str(given) + suffix)


def plan_files(fmt: str, out: str | os.PathLike[str], parts: list[str], sources: list[Path]) -> ExportFiles:
    """The files an export of ``parts`` (graph parts, "" for one graph) to ``out`` writes.

    Raises:
        ExportTargetError: the destination is refused (see the module notes); nothing was written.
    """
    given = Path(out)
    own = run_files(sources)
    _refuse_special(given)
    _refuse_own(given, own)
    name = _with_suffix(given, fmt)
    base = str(name)[: -len(SUFFIX[fmt])]
    models = {part: Path(f"{base}.{part}{SUFFIX[fmt]}") if part else name for part in parts}
    files = ExportFiles(models, Path(base + ".json"))
    targets = files.all()
    for t in targets:
        parent = t.parent if str(t.parent) else Path(".")
        if not parent.is_dir():
            raise ExportTargetError(f"{parent}: no such folder (an export does not create folders; create it first)")
        _refuse_special(t)
        _refuse_own(t, own)
    if len({t.resolve() for t in targets}) != len(targets):
        raise ExportTargetError(f"{given}: the export's files would overwrite each other")
    return files
