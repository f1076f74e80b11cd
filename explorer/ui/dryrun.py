"""Model dry runs off the UI thread: the engine's :func:`~explorer.engine.preview.preview_model`
on a pool thread, only the newest request's result delivered."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Signal, Slot

from explorer.data import Sample
from explorer.engine.preview import ModelPreview, estimate_input_shape, preview_model

from .threads import new_pool

__all__ = ["DryRunner", "ModelPreview"]

#: (height or None, width or None, colour) as the project's data settings hold them.
InputSettings = tuple[int | None, int | None, str]


class _DryRunJob(QRunnable):
    def __init__(
        self, runner: DryRunner, gen: int, arch: str, params: dict[str, Any], samples: list[Sample],
        size: InputSettings, num_outputs: int,
    ) -> None:  # fmt: skip
        super().__init__()
        self.runner, self.gen, self.arch, self.params = runner, gen, arch, params
        self.samples, self.size, self.num_outputs = samples, size, num_outputs

    def run(self) -> None:
        try:
            h, w, color = self.size
            c, h, w = self.runner.cached_shape(self.samples, h, w, color)
            result = preview_model(self.arch, self.params, c, (h, w), self.num_outputs)
        except Exception as e:  # noqa: BLE001 - a dry run must never take the app down
            result = ModelPreview(input_shape=(0, 0, 0), num_outputs=self.num_outputs, error=f"{type(e).__name__}: {e}")
        self.runner._done.emit(self.gen, result)


class DryRunner(QObject):
    """Runs dry runs on a pool thread; only the newest request's result is delivered."""

    finished = Signal(object)  # ModelPreview
    _done = Signal(int, object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = new_pool("dry-run", 1, self)
        self._gen = 0
        self._shape_cache: dict[tuple, tuple[int, int, int]] = {}
        self._done.connect(self._on_done)

    def request(
        self, arch: str, params: dict[str, Any], samples: Sequence[Sample], size: InputSettings, num_outputs: int
    ) -> None:
        self._gen += 1
        self._pool.start(_DryRunJob(self, self._gen, arch, dict(params), list(samples), size, num_outputs))

    def cancel(self) -> None:
        """Results of the requests made so far will not be delivered (e.g. another project opened)."""
        self._gen += 1

    def cached_shape(self, samples: list[Sample], h: int | None, w: int | None, color: str) -> tuple[int, int, int]:
        first, last = (str(samples[0].path), str(samples[-1].path)) if samples else ("", "")
        key = (len(samples), first, last, h, w, color)
        if key not in self._shape_cache:
            self._shape_cache[key] = estimate_input_shape(samples, height=h, width=w, color=color)
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
