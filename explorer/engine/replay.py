"""Epoch replay: one probe snapshot per epoch in the run folder, read back as probe reports.

The probe hook writes, at the end of every epoch (its last training step, so the weights are
the epoch's), what it reports for the probe image(s) (:func:`write_snapshot`). Layout::

    RUN_DIR/probes/epoch_0003.npz    arrays, per probe image i (0, 1, ...):
                                       "i/image"           uint8 (H, W, C) as the model saw it
                                       "i/probabilities"   float32, as reported
                                       "i/x.<entry>"       float16 intermediates (see the cap below)
                                       "i/c.<j>.<key>"     float16 arrays of beam candidate j (its
                                                           attention "alphas"), captioner only
    RUN_DIR/probes/epoch_0003.json   {"format", "version", "epoch", "probes": [{"path", "epoch",
                                       "global_step", "text", "tokens", "info", "output_info",
                                       "channels": {entry: channels before the cap},
                                       "candidates": [{"words", "score", "logp", "ended"}, ...]}]}

``candidates`` (the probe's beam candidates, best first) is present only when the report had
some; its numbers are JSON floats, so scores round-trip exactly (a non-finite one, from a
diverged model, is written as the string ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``). A
snapshot written before candidates were kept loads with ``candidates`` None, as a report
without any (the format's version is unchanged: older readers ignore the new key).

Both are written atomically, the ``.npz`` first: an epoch is listed only once its ``.json``
exists. Loading never unpickles (``allow_pickle=False``; text lives in the JSON).

Size cap: intermediates are stored as float16 (clipped to its range), and an entry whose
declaration has a ``channel`` (feature maps, spatial states) or ``out`` (filters) axis keeps
only its first :data:`MAX_CHANNELS` channels; ``channels`` in the JSON records how many there
were. Recurrent states, gates, attention and CTC frames are kept whole; ``tokens`` entries
(word ids) keep their exact values. The ``.npz`` is
compressed. Measured (one epoch, default parameters, the default probe image, Grad-CAM
included): the ``cnn`` on ``sample:shapes`` (48x48 RGB; 32/64/128 channels, the last capped to
64) 47.5 KB per epoch; the ``captioner`` on ``sample:shape-scenes`` (64x64 RGB; encoder
32/64/128/256 channels, attention, decoder states and gates, tokens, a Grad-CAM map per word,
three beam candidates with their attention) 137 KB per epoch, 3.2 KB of it the candidates.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_write, read_json, write_json
from .candidates import join_candidates, split_candidates
from .events import ProbeReport
from .runfolder import PROBES

__all__ = [
    "MAX_CHANNELS",
    "Snapshot",
    "snapshot_paths",
    "reduce_intermediate",
    "write_snapshot",
    "list_epochs",
    "load_snapshot",
    "snapshot_bytes",
]

MAX_CHANNELS = 64  # channels kept per feature map / spatial state / filter bank
FORMAT, VERSION = "model-explorer-probes", 1
_F16_MAX = float(np.finfo(np.float16).max)
_EXACT_KINDS = {"tokens"}  # ids: float16 is exact only up to 2048
_NAME = re.compile(r"^epoch_(\d{4,})\.json$")


@dataclass
class Snapshot:
    """One epoch's probe snapshot: the reports as the probe made them (intermediates capped and
    float16, see the module notes) and, per report, entry -> channels before the cap."""

    epoch: int
    reports: list[ProbeReport]
    channels: list[dict[str, int]]


def snapshot_paths(run_dir: str | os.PathLike[str], epoch: int) -> tuple[Path, Path]:
    """(``.npz``, ``.json``) of ``epoch``'s snapshot."""
    base = Path(run_dir) / PROBES / f"epoch_{epoch:04d}"
    return base.with_suffix(".npz"), base.with_suffix(".json")


def _channel_axis(info: dict[str, Any] | None) -> int | None:
    axes = list((info or {}).get("axes", ()))
    for name in ("channel", "out"):
        if name in axes:
            return axes.index(name)
    return None


def reduce_intermediate(array: np.ndarray, info: dict[str, Any] | None) -> tuple[np.ndarray, int | None]:
    """The stored form of one intermediate: float16, at most :data:`MAX_CHANNELS` channels along
    its declared channel axis. Returns (array, channels before the cap or None without one)."""
    a = np.asarray(array)
    axis = _channel_axis(info)
    channels = None
    if axis is not None and a.ndim > axis:
        channels = int(a.shape[axis])
        a = np.take(a, np.arange(min(channels, MAX_CHANNELS)), axis=axis)
    if np.issubdtype(a.dtype, np.floating) and (info or {}).get("kind") not in _EXACT_KINDS:
        a = np.clip(a, -_F16_MAX, _F16_MAX).astype(np.float16)
    return np.ascontiguousarray(a), channels


def _entry(i: int, name: str) -> str:
    return f"{i}/{name}"


def write_snapshot(run_dir: str | os.PathLike[str], epoch: int, reports: Sequence[ProbeReport]) -> Path:
    """Store ``epoch``'s probe reports (one per probe image); returns the ``.npz`` path."""
    npz, meta = snapshot_paths(run_dir, epoch)
    arrays: dict[str, np.ndarray] = {}
    probes = []
    for i, r in enumerate(reports):
        arrays[_entry(i, "image")] = np.ascontiguousarray(r.image, dtype=np.uint8)
        arrays[_entry(i, "probabilities")] = np.asarray(r.probabilities, dtype=np.float32)
        channels = {}
        for name, a in r.intermediates.items():
            stored, n = reduce_intermediate(a, r.info.get(name))
            arrays[_entry(i, f"x.{name}")] = stored
            if n is not None:
                channels[name] = n
        probe = {
            "path": r.path,
            "epoch": r.epoch,
            "global_step": r.global_step,
            "text": r.text,
            "tokens": r.tokens,
            "info": r.info,
            "output_info": r.output_info,
            "names": list(r.intermediates),
            "channels": channels,
        }
        if r.candidates is not None:
            fields, cand_arrays = split_candidates(r.candidates, _entry(i, "c"), _store_candidate)
            probe["candidates"] = [{k: _json_number(v) for k, v in c.items()} for c in fields]
            arrays.update(cand_arrays)
        probes.append(probe)

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)

    atomic_write(npz, save)
    write_json(meta, {"format": FORMAT, "version": VERSION, "epoch": epoch, "probes": probes})
    return npz


def list_epochs(run_dir: str | os.PathLike[str]) -> list[int]:
    """Epochs with a complete snapshot, ascending (empty when the run has none)."""
    folder = Path(run_dir) / PROBES
    if not folder.is_dir():
        return []
    epochs = []
    for p in folder.iterdir():
        m = _NAME.match(p.name)
        if m and p.with_suffix(".npz").is_file():
            epochs.append(int(m.group(1)))
    return sorted(epochs)


def load_snapshot(run_dir: str | os.PathLike[str], epoch: int) -> Snapshot:
    """``epoch``'s snapshot as probe reports (intermediates as float32 arrays).

    Raises:
        FileNotFoundError: the run has no snapshot of that epoch.
        ValueError: the files are damaged or of another format.
    """
    npz, meta_path = snapshot_paths(run_dir, epoch)
    if not meta_path.is_file() or not npz.is_file():
        raise FileNotFoundError(f"{meta_path}: no probe snapshot of epoch {epoch}")
    try:
        meta = read_json(meta_path)
    except (OSError, ValueError) as e:
        raise ValueError(f"{meta_path}: damaged probe snapshot ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{meta_path}: not a probe snapshot")
    try:
        with np.load(npz, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        reports = [_report(i, p, arrays) for i, p in enumerate(meta["probes"])]
        return Snapshot(int(meta["epoch"]), reports, [dict(p.get("channels", {})) for p in meta["probes"]])
    except (OSError, KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{npz} (with {meta_path.name}): damaged probe snapshot ({e})") from None


_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}  # JSON has no such numbers


def _json_number(v: Any) -> Any:
    """A non-finite float (a diverged model's score) as its usual JSON spelling, a string; the
    snapshot's JSON is strict (``allow_nan=False``)."""
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    return v


def _from_json(c: dict[str, Any]) -> dict[str, Any]:
    return {k: _NONFINITE[v] if isinstance(v, str) and v in _NONFINITE else v for k, v in c.items()}


def _store_candidate(a: np.ndarray) -> np.ndarray:
    return reduce_intermediate(a, None)[0]  # float16, no channel cap


def _report(i: int, p: dict[str, Any], arrays: dict[str, np.ndarray]) -> ProbeReport:
    cands = p.get("candidates")
    if cands is not None and not (isinstance(cands, list) and all(isinstance(c, dict) for c in cands)):
        raise ValueError(f"probe {i}: 'candidates' is not a list of objects")
    if cands is not None:
        cands = join_candidates([_from_json(c) for c in cands], arrays, _entry(i, "c"), _restore)
    return ProbeReport(
        epoch=int(p["epoch"]),
        global_step=int(p["global_step"]),
        path=str(p["path"]),
        image=arrays[_entry(i, "image")],
        probabilities=arrays[_entry(i, "probabilities")],
        intermediates={n: _restore(arrays[_entry(i, f"x.{n}")]) for n in p["names"]},
        text=p.get("text"),
        info=dict(p.get("info") or {}),
        output_info=p.get("output_info"),
        tokens=p.get("tokens"),
        candidates=cands,
    )


def _restore(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32) if a.dtype == np.float16 else a


def snapshot_bytes(run_dir: str | os.PathLike[str], epoch: int) -> int:
    """Bytes on disk of ``epoch``'s snapshot (both files)."""
    return sum(p.stat().st_size for p in snapshot_paths(run_dir, epoch) if p.is_file())
