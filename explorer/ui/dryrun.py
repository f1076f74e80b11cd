"""Model dry runs off the UI thread: the engine's :func:`~explorer.engine.preview.preview_model`
on a pool thread, only the newest request's result delivered."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Signal, Slot

from explorer.data import Sample
from explorer.engine.config import DataConfig
from explorer.engine.preview import ModelPreview, estimate_input_shape, preview_model
from explorer.engine.tasks import Task

from .project import bulk_objects
from .threads import new_pool, one_torch_thread

__all__ = ["DryRunner", "ModelPreview"]


class _DryRunJob(QRunnable):
    def __init__(
        self, runner: DryRunner, gen: int, task: Task, arch: str, params: dict[str, Any], samples: list[Sample],
        data: DataConfig,
    ) -> None:  # fmt: skip
        super().__init__()
        self.runner, self.gen, self.task, self.arch, self.params = runner, gen, task, arch, params
        self.samples, self.data = samples, data

    def run(self) -> None:
        one_torch_thread()  # the pool thread outlives the job: no OpenMP team beside training's
        task = self.task
        try:
            with bulk_objects(len(self.samples)):
                self.samples = [s if isinstance(s, Sample) else Sample(Path(s[0]), s[1]) for s in self.samples]
                c, h, w = self.runner.cached_shape(task, self.samples, self.data)
                labels = task.labels_from_targets([s.target for s in self.samples]) if self.samples else None
            result = preview_model(task, self.arch, self.params, c, (h, w), labels)
        except Exception as e:  # noqa: BLE001 - a dry run must never take the app down
            result = ModelPreview(input_shape=(0, 0, 0), num_outputs=0, error=f"{type(e).__name__}: {e}")
        self.runner._done.emit(self.gen, result)


class DryRunner(QObject):
    """Runs dry runs on a pool thread; only the newest request's result is delivered."""

    finished = Signal(object)  # ModelPreview
    _done = Signal(int, object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = new_pool("dry-run", 1, self)
        self._gen = 0
        self._shape_cache: dict[tuple, tuple[int, int, int | None]] = {}
        self._done.connect(self._on_done)

    def request(
        self,
        task: Task,
        arch: str,
        params: dict[str, Any],
        samples: Sequence[Sample | tuple[str, str]],
        data: DataConfig,
    ) -> None:
        """Preview ``arch`` as a run of ``task`` on ``samples`` (Samples or ``(path, target)`` pairs) with the
        data settings ``data`` would build it."""
        self._gen += 1
        job = _DryRunJob(self, self._gen, task, arch, dict(params), list(samples), dataclasses.replace(data))
        self._pool.start(job)

    def cancel(self) -> None:
        """Results of the requests made so far will not be delivered (e.g. another project opened)."""
        self._gen += 1

    def cached_shape(self, task: Task, samples: list[Sample], data: DataConfig) -> tuple[int, int, int | None]:
        first, last = (str(samples[0].path), str(samples[-1].path)) if samples else ("", "")
        key = (task.name, len(samples), first, last, data.height, data.width, data.color)
        if key not in self._shape_cache:
            self._shape_cache[key] = estimate_input_shape(task, samples, data)
        return self._shape_cache[key]

    @Slot(int, object)
    def _on_done(self, gen: int, result: ModelPreview) -> None:
        if gen == self._gen:
            self.finished.emit(result)

    def wait(self, msecs: int = 10000) -> bool:
        return self._pool.waitForDone(msecs)

    def close(self) -> None:
        self._pool.clear()
        self._pool.waitForDone()
