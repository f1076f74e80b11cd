"""``load_run``: a trained model, rebuilt through the registry, ready to predict.

::

    from explorer import load_run
    run = load_run("runs/digits")
    run.predict(["a.png", "b.png"])   # [{"path", "label", "probabilities"}, ...]
    x = run.preprocess(["a.png"])     # exactly what evaluation feeds the model
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from torch import nn

from explorer.data import DEFAULT_MAX_PIXELS, DecodeError, pad_right
from models import ParamError, build_model

from . import runfolder
from .atomic import read_json
from .device import resolve_device
from .preprocess import Preprocess
from .tasks import Task, get_task
from .weights import STATE_SUFFIXES, fit_state, read_state_file

__all__ = ["MODEL_FILE_SUFFIXES", "Run", "evaluate_run", "load_run"]

#: the files :func:`load_run` opens besides run folders (an Open dialog's filter)
MODEL_FILE_SUFFIXES = (*STATE_SUFFIXES, ".json")


class Run:
    """A trained model with its labels and input contract. Build with :func:`load_run`."""

    def __init__(
        self,
        path: Path,
        config: dict[str, Any],
        state_dict: dict[str, torch.Tensor],
        device: str = "cpu",
        sources: list[Path] | None = None,
    ):
        self.path = path
        #: what the run was loaded from (its folder, or the weights file and its JSON): an export never writes there
        self.sources: list[Path] = list(sources) if sources is not None else [path]
        self.config = config
        self.arch: str = config["arch"]
        self.params: dict[str, Any] = dict(config["params"])
        self.task: str = config["task"]
        self.labels: list[str] = list(config["labels"])
        self.input_spec = Preprocess.from_dict(config["preprocess"])
        spec = config["model"]
        self.device = resolve_device(device)
        try:
            model = build_model(
                self.arch,
                in_channels=spec["in_channels"],
                num_outputs=spec["num_outputs"],
                image_size=tuple(spec["image_size"]),
                **{k: v for k, v in self.params.items() if k != "weights"},
            )
        except ParamError as e:
            raise runfolder.RunFolderError(f"{path}: cannot rebuild the model ({e})") from None
        fit_state(model, state_dict, path)
        self.model: nn.Module = model.to(self.device).eval()
        self._task: Task | None = None
        self._final_epoch: int | None = None
        #: held while the model runs (predict, probes): a window may predict on one thread and
        #: inspect on another, and a probe's Grad-CAM hooks must never meet a prediction
        self.lock = threading.RLock()

    # -- what it was loaded from ----------------------------------------------------------
    @property
    def run_dir(self) -> Path | None:
        """The run folder, or None for an exported bundle or a state dict: what needs the run's
        history, epoch snapshots or data (curves, epoch replay, evaluation) is there only then."""
        return self.path if self.path.is_dir() else None

    @property
    def final_epoch(self) -> int:
        """Epochs in the run folder's history (0 for a bundle, which keeps no history)."""
        if self._final_epoch is None:
            self._final_epoch = len(runfolder.read_history(self.path)) if self.run_dir is not None else 0
        return self._final_epoch

    # -- shape & metadata ---------------------------------------------------------------
    @property
    def task_object(self) -> Task:
        """The run's :class:`~explorer.engine.tasks.Task` (with its saved ``task_extra``):
        ask it whatever differs by task (formatting a prediction, the headline figure...)."""
        if self._task is None:
            self._task = get_task(self.task, self.config.get("task_extra"))
        return self._task

    @property
    def input_shape(self) -> tuple[int, int, int | None]:
        return self.input_spec.input_shape()

    @property
    def metrics(self) -> dict[str, Any] | None:
        p = self.path / runfolder.METRICS if self.path.is_dir() else None
        return read_json(p) if p is not None and p.is_file() else None

    # -- inputs -------------------------------------------------------------------------
    def load_uint8(
        self, paths: Sequence[str | os.PathLike[str]], max_pixels: int = DEFAULT_MAX_PIXELS
    ) -> tuple[torch.Tensor, torch.Tensor, list[str], dict[str, str]]:
        """Read files into uint8 (B, H, W, C), variable-width images right-padded per the
        run's rule. Returns (batch, true widths, readable paths, {path: error})."""
        arrays, ok, errors = [], [], {}
        for p in paths:
            try:
                arrays.append(self.input_spec.load_uint8(p, max_pixels=max_pixels))
                ok.append(str(p))
            except DecodeError as e:
                errors[str(p)] = str(e)
        c, h, w = self.input_shape
        widths = torch.tensor([a.shape[1] for a in arrays], dtype=torch.int64)
        if not arrays:
            return torch.zeros((0, h, w or 1, c), dtype=torch.uint8), widths, ok, errors
        widest = int(widths.max())
        batch = torch.from_numpy(np.stack([pad_right(a, widest) for a in arrays]))
        return batch, widths, ok, errors

    def preprocess(self, paths: Sequence[str | os.PathLike[str]]) -> torch.Tensor:
        """Files -> float (B, C, H, W), exactly what evaluation feeds the model.

        Raises:
            DecodeError: naming the first file that cannot be used.
        """
        batch, _, _, errors = self.load_uint8(paths)
        if errors:
            path, reason = next(iter(errors.items()))
            raise DecodeError(f"{path}: {reason}")
        return self.input_spec.to_tensor(batch)

    # -- inference ----------------------------------------------------------------------
    def predict(
        self, paths: Sequence[str | os.PathLike[str]], batch_size: int = 64, beam: int = 0
    ) -> list[dict[str, Any]]:
        """One dict per input path, in order: ``path`` plus the task's prediction (see the
        task's ``predict``; ``run.task_object.format_prediction(d)`` makes it one line of
        text), or ``error`` for a file that cannot be used."""
        task = self.task_object
        results: list[dict[str, Any]] = []
        for i in range(0, len(paths), batch_size):
            chunk = list(paths[i : i + batch_size])
            batch, widths, ok, errors = self.load_uint8(chunk)
            preds: list[dict[str, Any]] = []
            if ok:
                with self.lock, torch.no_grad():
                    x = self.input_spec.to_tensor(batch.to(self.device))
                    preds = task.predict(self.model, x, widths, self.labels, beam=beam)
            row = {p: j for j, p in enumerate(ok)}
            for p in chunk:
                key = str(p)
                if key in errors:
                    results.append({"path": key, "error": errors[key]})
                else:
                    results.append({"path": key, **preds[row[key]]})
        return results


def evaluate_run(run: Run, data: str | os.PathLike[str] | Any) -> dict[str, Any]:
    """Measure a trained run on labelled data (a folder, manifest, ``sample:NAME`` or a Source).

    Returns the task's report (for classify: ``accuracy``, ``loss``, ``per_class``,
    ``confusion``, ...) plus ``problems``, one line per file that could not be used.

    Raises:
        DataError: the data cannot be opened, or holds no usable labelled image.
    """
    from explorer.data import DataError, open_source

    source = data if hasattr(data, "samples") else open_source(str(data))
    task = run.task_object
    max_pixels = run.config.get("data", {}).get("max_pixels", DEFAULT_MAX_PIXELS)
    split, problems = task.prepare_eval(
        source, run.input_spec, run.labels, run.config.get("task_extra") or {}, max_pixels
    )
    if len(split) == 0:
        raise DataError(f"{getattr(source, 'origin', data)}: no usable labelled image to evaluate")
    ev = task.evaluate(run.model, split, run.input_spec, run.device, nullcontext, run.labels)
    result = task.report(ev, run.labels)
    result["problems"] = problems
    return result


def load_run(
    path: str | os.PathLike[str],
    device: str = "cpu",
    *,
    config: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    arch: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> Run:
    """Load a run folder, an exported bundle, or a plain state dict.

    Args:
        path: a run folder; an exported ``.safetensors`` (with ``NAME.json`` beside it) or that
            ``NAME.json``; or a ``.pt`` / ``.pth`` / ``.safetensors`` state dict. ``.pt`` / ``.pth``
            files are read with ``torch.load(weights_only=True)`` only: a file that needs other
            Python objects is refused and nothing in it runs.
        device: where the model goes ("cpu", "cuda", "auto"...).
        config: for a weights file: the run folder, JSON file or dict that describes its model
            (arch, params, task, labels, preprocess, model); default: ``NAME.json`` beside it.
        arch: replaces the config's architecture family; ``params`` replaces its parameters.

    Raises:
        RunFolderError: naming the file that is missing, damaged, refused or inconsistent; weights
            that do not fit the architecture list the missing, unexpected and mis-shaped keys.
    """
    p = Path(path)
    if p.is_dir():
        if config is not None:
            raise runfolder.RunFolderError(f"{p}: a run folder carries its own config; config= is for weights files")
        cfg, weights, sources = runfolder.read_config(p), p / runfolder.WEIGHTS, [p]
        if not weights.exists():
            raise runfolder.RunFolderError(f"{weights}: missing; the run has no trained weights yet")
    elif p.suffix == ".json":
        cfg = _read_json_config(p)
        weights, sources = _bundle_weights(p, cfg), [p]
        sources.append(weights)
    elif p.suffix in STATE_SUFFIXES:
        weights = p
        cfg, sources = _config_for(p, config)
    else:
        raise runfolder.RunFolderError(
            f"{p}: not a run folder, an exported bundle (.safetensors + .json) or a state dict (.pt, .pth)"
        )
    if arch is not None or params is not None:
        cfg = {**cfg, "arch": arch or cfg["arch"], "params": dict(params if params is not None else cfg["params"])}
    # weights checked against the model the config describes (built on the meta device)
    state = runfolder.check_weights(p, cfg, read_state_file(weights), weights)
    return Run(p, cfg, state, device=device, sources=sources)


def _read_json_config(path: Path) -> dict[str, Any]:
    if path.exists() and not path.is_file():
        raise runfolder.RunFolderError(f"{path}: not a regular file (a FIFO or device is never read as a config)")
    return runfolder.read_config_file(path)


def _bundle_weights(side: Path, cfg: Mapping[str, Any]) -> Path:
    """The ``.safetensors`` an export's JSON describes."""
    fmt = cfg.get("export_format", "safetensors")
    if fmt != "safetensors":
        raise runfolder.RunFolderError(
            f"{side}: describes a {fmt} export, which PyTorch does not load back; open the .safetensors export "
            "or the run folder"
        )
    weights = side.with_suffix(".safetensors")
    if not weights.exists():
        raise runfolder.RunFolderError(f"{weights}: missing; the bundle's weights belong beside {side.name}")
    return weights


def _config_for(weights: Path, config: str | os.PathLike[str] | Mapping[str, Any] | None) -> tuple[dict, list[Path]]:
    """(config, source files) of a weights file: from ``config`` or ``NAME.json`` beside it."""
    if isinstance(config, Mapping):
        missing = [k for k in ("arch", "params", "task", "labels", "preprocess", "model") if k not in config]
        if missing:
            raise runfolder.RunFolderError(f"config for {weights}: incomplete, missing {', '.join(missing)}")
        return dict(config), [weights]
    if config is not None:
        c = Path(config)
        return (runfolder.read_config(c) if c.is_dir() else _read_json_config(c)), [weights, c]
    side = weights.with_suffix(".json")
    if not side.exists():
        raise runfolder.RunFolderError(
            f"{side}: missing; weights alone do not say which model they belong to: keep the export's JSON beside "
            "them, or name a run folder or JSON that describes the model (config=)"
        )
    return _read_json_config(side), [weights, side]


def weights_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    with safe_open(str(path), framework="pt") as f:
        return json.loads((f.metadata() or {}).get("meta", "{}"))
