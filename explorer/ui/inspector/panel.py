"""The inspector: what the model sees in the images the user picks, live while it trains and
afterwards, with epoch replay, the evaluation and runs side by side.

One entry point for the window: :class:`InspectorPanel`. During training it forwards the picked
images to the training controller (``set_probe_paths``) and draws the reports the trainer sends
(:meth:`InspectorPanel.show_report`); after training, and for a reopened run, it probes the run's
model itself on a worker thread (:func:`explorer.engine.probe_run.probe_run`). The replay slider
shows the probe snapshot kept for any epoch (:mod:`explorer.engine.replay`).

:meth:`InspectorPanel.set_model` points it at a model already loaded by
:func:`~explorer.engine.load_run` (File > Open Model): a run folder, or an exported bundle or state
dict, which has no history, snapshots or data; the user adds or drops the images to look at, and
the views that need a run folder (epoch replay, evaluation, runs side by side) are hidden with a
line saying why.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from explorer.engine import ProbeReport, replay

from .compare import CompareArea
from .jobs import Jobs
from .strip import ThumbnailStrip, image_paths, load_thumbnails

__all__ = ["InspectorPanel"]


#: why the run-folder views are not there for a model opened from an export or a state dict
NO_RUN_FOLDER = (
    "Opened from {name}, which holds the final model only: epoch replay, evaluation on the validation "
    "images and runs side by side need the run folder (its history, epoch snapshots and data)."
)


class InspectorPanel(QWidget):
    """``controller``: the training controller (``set_probe_paths``, ``is_running``), or None."""

    #: images the user added to look at (button or drop), after :meth:`set_model`
    imagesAdded = Signal(list)

    def __init__(self, controller: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.run_dir: Path | None = None
        self.run: Any = None  # the loaded Run (after training / reopened)
        self.epochs: list[int] = []
        self.replayed: int | None = None  # the epoch shown, None = the newest (live / the run's model)
        self.probed = 0  # reports this panel computed itself (tests)
        self.jobs = Jobs("inspector", self)
        self._generation = 0  # results of older requests are dropped

        self.status = QLabel("")
        self.status.setProperty("role", "hint")
        self.strip = ThumbnailStrip()
        self.strip.chosen.connect(self._on_chosen)
        self.compare = CompareArea()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.compare, "Inside the model")
        self.extra_tabs: dict[str, QWidget] = {}

        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 0)
        self.slider.setPageStep(1)
        self.slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.slider.valueChanged.connect(self._on_slider)
        self.epoch_label = QLabel("epoch replay: no snapshots yet")
        self.live_button = QPushButton("Newest")
        self.live_button.setToolTip("Back to the newest model (live while training)")
        self.live_button.clicked.connect(self.show_newest)
        self.replay_row = QWidget()
        replay_row = QHBoxLayout(self.replay_row)
        replay_row.setContentsMargins(0, 0, 0, 0)
        replay_row.addWidget(self.epoch_label)
        replay_row.addWidget(self.slider, 1)
        replay_row.addWidget(self.live_button)
        self.add_btn = QPushButton("Add images…")
        self.add_btn.setToolTip("Images to look inside the model with (or drop files and folders here)")
        self.add_btn.clicked.connect(self.choose_images)
        self.folder_note = QLabel("")
        self.folder_note.setProperty("role", "hint")
        self.folder_note.setWordWrap(True)
        self.images_row = QWidget()
        images_row = QHBoxLayout(self.images_row)
        images_row.setContentsMargins(0, 0, 0, 0)
        images_row.addWidget(self.add_btn)
        images_row.addWidget(self.folder_note, 1)
        self.images_row.hide()  # a model opened with set_model: the user brings the images

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.images_row)
        layout.addWidget(self.strip)
        layout.addWidget(self.replay_row)
        layout.addWidget(self.status)
        layout.addWidget(self.tabs, 1)
        self._add_tabs()

    def _add_tabs(self) -> None:
        """The evaluation and runs-side-by-side tabs, when their modules are there."""
        try:
            from .evaluation import EvaluationView
        except ImportError:
            return
        self.evaluation = EvaluationView(self.jobs)
        self.evaluation.open_image.connect(self._open_from_evaluation)
        self.tabs.addTab(self.evaluation, "Evaluation")
        self.extra_tabs["evaluation"] = self.evaluation
        from .runs_compare import RunsCompare

        self.runs_compare = RunsCompare()
        self.tabs.addTab(self.runs_compare, "Runs side by side")

    # -- the window's calls ------------------------------------------------------------------
    def set_labels(self, labels: Sequence[str]) -> None:
        """Class names, charset or vocabulary of the model being looked at (index = id)."""
        self.compare.set_labels(labels)

    def set_probe_candidates(self, paths: Sequence[str]) -> None:
        """The images the strip offers (e.g. the run's validation images); thumbnails load off the GUI thread."""
        paths = [str(p) for p in paths]
        self.jobs.submit(lambda: load_thumbnails(paths), self.strip.set_candidates)

    @Slot(object)
    def show_report(self, report: ProbeReport) -> None:
        """A live report from the trainer: drawn unless an older epoch is being replayed."""
        if self.replayed is not None:
            return
        self.compare.show_report(report, add=not self.compare.views)
        self.refresh_epochs()

    def set_run(self, run_dir: str | os.PathLike[str] | None, load_model: bool | None = None) -> None:
        """The run being looked at: its epoch snapshots, and (when not training, or ``load_model``)
        its model, labels and validation images, loaded on a worker thread."""
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.run = None
        self.images_row.hide()
        self.setAcceptDrops(False)  # a training run's images come from its data, drops go to the window
        self._show_folder_views(True)
        self.refresh_epochs()
        if self.run_dir is None:
            return
        if load_model is None:
            load_model = not self._training()
        if load_model:
            self.status.setText(f"loading {self.run_dir.name}…")
            rd = self.run_dir
            self.jobs.submit(lambda: _open_run(rd), self._on_run_loaded, self._on_error)

    def set_controller(self, controller: Any) -> None:
        self.controller = controller

    def set_model(self, run: Any) -> None:
        """Looks inside an already loaded :class:`~explorer.engine.Run` (File > Open Model). The
        user adds or drops images (:meth:`add_images`); a run folder's validation images are
        offered too, and its epoch replay and evaluation work as after training; a bundle or a
        state dict has none of those, and a line says so."""
        self.run = run
        self.run_dir = getattr(run, "run_dir", None)
        self.replayed = None
        self._next()  # probes of a model before are dropped
        self.compare.set_paths([])
        self.strip.set_candidates([])
        self.set_labels(run.labels)
        self.images_row.show()
        self.setAcceptDrops(True)
        self._show_folder_views(self.run_dir is not None)
        self.refresh_epochs()
        if self.run_dir is None:
            self.folder_note.setText(NO_RUN_FOLDER.format(name=Path(run.path).name))
            self.status.setText("Add images (or drop them here), then click one to look inside the model.")
            return
        self.folder_note.setText("")
        self.status.setText(f"loading the validation images of {self.run_dir.name}…")
        self.runs_compare.add_run(self.run_dir)
        if "evaluation" in self.extra_tabs:
            self.evaluation.set_run(run)
        self.jobs.submit(lambda: _candidates(run), self._on_candidates, self._on_error)

    def _show_folder_views(self, on: bool) -> None:
        """Epoch replay, evaluation and runs side by side: only for a run folder."""
        self.replay_row.setVisible(on)
        for i in range(1, self.tabs.count()):
            self.tabs.setTabVisible(i, on)
        self.tabs.tabBar().setVisible(on)  # one view left: no tab bar
        if not on:
            self.tabs.setCurrentWidget(self.compare)

    def _on_candidates(self, loaded: tuple[list[str], list]) -> None:
        paths, thumbs = loaded
        self.strip.add_candidates(thumbs)
        self.status.setText(
            f"{len(paths)} validation images of {self.run_dir.name if self.run_dir else ''}; add your own, "
            "click one to look inside"
        )

    # -- images the user brings (after set_model) -------------------------------------------------
    @Slot()
    def choose_images(self) -> None:
        from ..dataset_views import IMAGE_FILTER

        files, _ = QFileDialog.getOpenFileNames(self, "Add images to look at", str(Path.home()), IMAGE_FILTER)
        if files:
            self.add_images(files)

    def add_images(self, paths: Sequence[str | os.PathLike[str]], announce: bool = True) -> list[str]:
        """Offers the images among ``paths`` (folders walked) in the strip and looks at the first
        new one when nothing is shown yet; ``imagesAdded`` follows unless ``announce`` is False.
        Returns the images."""
        images = image_paths(list(paths))
        if not images:
            return []
        self.strip.add_candidates([(p, None) for p in images])  # at once; thumbnails follow
        self.jobs.submit(lambda: load_thumbnails(images), self.strip.add_candidates)
        if announce:
            self.imagesAdded.emit(images)
        if self.run is not None and not self.compare.paths() and not self._training():
            self.strip.show_paths(images[:1])
        return images

    def inspect(self, paths: Sequence[str]) -> None:
        """Looks at ``paths`` (side by side when several), adding those not offered yet."""
        paths = [str(p) for p in paths]
        new = [p for p in paths if p not in self.strip.paths()]
        if new:
            self.strip.add_candidates([(p, None) for p in new])
            self.jobs.submit(lambda: load_thumbnails(new), self.strip.add_candidates)
        self.strip.show_paths(paths)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt
        if self.images_row.isVisibleTo(self) and event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # noqa: N802, ANN001 - Qt
        self.dragEnterEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if self.images_row.isVisibleTo(self) and self.add_images(paths):
            event.acceptProposedAction()
        else:
            event.ignore()

    # -- epochs --------------------------------------------------------------------------------
    def refresh_epochs(self) -> None:
        epochs = replay.list_epochs(self.run_dir) if self.run_dir is not None else []
        if epochs == self.epochs:
            return
        self.epochs = epochs
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(len(epochs) - 1, 0))
        if self.replayed is None:
            self.slider.setValue(max(len(epochs) - 1, 0))
        self.slider.blockSignals(False)
        self.slider.setEnabled(bool(epochs))
        self._show_epoch_label()

    def replay_epoch(self, epoch: int) -> None:
        """Shows the probe snapshot kept at the end of ``epoch`` in every view."""
        if epoch not in self.epochs:
            return
        self.slider.blockSignals(True)
        self.slider.setValue(self.epochs.index(epoch))
        self.slider.blockSignals(False)
        self.replayed = epoch
        self._show_epoch_label()
        rd, gen = self.run_dir, self._next()
        self.jobs.submit(lambda: replay.load_snapshot(rd, epoch), lambda s: self._on_snapshot(gen, s), self._on_error)

    @Slot()
    def show_newest(self) -> None:
        self.replayed = None
        self._show_epoch_label()
        if self.run is not None and not self._training():
            self._probe(self.strip.selection() or self.compare.paths())

    def _show_epoch_label(self) -> None:
        if not self.epochs:
            self.epoch_label.setText("epoch replay: no snapshots yet")
        elif self.replayed is None:
            self.epoch_label.setText(f"newest model ({len(self.epochs)} epoch snapshots)")
        else:
            self.epoch_label.setText(f"replaying epoch {self.replayed} of {self.epochs[-1]}")
        self.live_button.setEnabled(self.replayed is not None)

    @Slot(int)
    def _on_slider(self, index: int) -> None:
        if 0 <= index < len(self.epochs):
            self.replay_epoch(self.epochs[index])

    def _on_snapshot(self, gen: int, snap: replay.Snapshot) -> None:
        if gen != self._generation:
            return
        paths = [r.path for r in snap.reports]
        self.compare.set_paths(paths)
        for r in snap.reports:
            self.compare.show_report(r)
        self.status.setText(f"epoch {snap.epoch}: the probe images of that epoch, as the model saw them then")

    # -- picking images ------------------------------------------------------------------------
    @Slot(list)
    def _on_chosen(self, paths: list[str]) -> None:
        if self.replayed is not None:  # picking an image returns to the newest model
            self.replayed = None
            self._show_epoch_label()
        self.compare.set_paths(paths)
        if self._training():
            self.controller.set_probe_paths(paths)
            self.status.setText("the trainer probes these images from its next probe on")
        elif self.run is not None:
            self._probe(paths)

    def _probe(self, paths: Sequence[str]) -> None:
        from explorer.engine.probe_run import probe_run

        run, gen = self.run, self._next()
        epoch = getattr(run, "final_epoch", 0)
        for p in paths:
            self.jobs.submit(
                lambda p=p, e=epoch: probe_run(run, p, epoch=e), lambda r, g=gen: self._on_probed(g, r), self._on_error
            )

    def _on_probed(self, gen: int, report: ProbeReport) -> None:
        if gen == self._generation and self.replayed is None:
            self.probed += 1
            self.compare.show_report(report)
            name = self.run_dir.name if self.run_dir else Path(getattr(self.run, "path", "")).name
            self.status.setText(f"what the trained model ({name}) computes for the images shown")

    def _on_run_loaded(self, loaded: tuple[Any, list[str], list]) -> None:
        run, paths, thumbs = loaded
        self.run = run
        self.set_labels(run.labels)
        self.runs_compare.add_run(run.path)
        self.strip.set_candidates(thumbs)
        self.status.setText(f"{len(paths)} validation images of {run.path.name}; click one to look inside")
        if "evaluation" in self.extra_tabs:
            self.evaluation.set_run(run)
        if not self.compare.paths() and paths:
            self.strip.choose(paths[0])
        else:
            self._probe(self.compare.paths())

    def _open_from_evaluation(self, path: str) -> None:
        self.tabs.setCurrentWidget(self.compare)
        self.strip.choose(path)

    def _on_error(self, message: str) -> None:
        self.status.setText(f"cannot show this: {message}")

    def _training(self) -> bool:
        c = self.controller
        running = getattr(c, "is_running", None) if c is not None else None
        return bool(running() if callable(running) else running)

    def _next(self) -> int:
        self._generation += 1
        return self._generation

    def shutdown(self, ms: int = 30000) -> bool:
        self.compare.stop()
        return self.jobs.wait(ms)


def _open_run(run_dir: Path) -> tuple[Any, list[str], list]:
    """Worker thread: the run, its validation images and their thumbnails."""
    from explorer.engine.api import load_run

    run = load_run(run_dir)
    return (run, *_candidates(run))


def _candidates(run: Any) -> tuple[list[str], list]:
    """Worker thread: a run folder's validation images and their thumbnails (none for a bundle)."""
    from explorer.data import DataError
    from explorer.engine.probe_run import validation_paths

    if getattr(run, "run_dir", None) is None:
        return [], []
    try:
        paths = validation_paths(run)
    except DataError:
        paths = []
    return paths, load_thumbnails(paths)
