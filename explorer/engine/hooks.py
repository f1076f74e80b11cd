"""Hooks: small objects the training loop calls at defined points (Lightning's callbacks).

The loop calls :meth:`Hook.on_step` after every optimizer step (a generator: the events
it yields go to the consumer as they come) and :meth:`Hook.on_epoch_end` after every
completed, checkpointed epoch (returning a :class:`StopDecision` ends the run). Early
stopping and the live probes are hooks; the loop knows neither.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from explorer.data import DecodeError

from . import gradcam, replay
from .control import RunControl
from .events import EpochReport, Event, ProbeReport, Status

if TYPE_CHECKING:
    from .session import Session
    from .tasks.base import Task

__all__ = [
    "Hook",
    "StopDecision",
    "EarlyStopping",
    "ProbeHook",
    "PROBE_BUDGET",
    "next_probe_gap",
    "probe",
    "probe_report",
]


#: steps after a probe timed against the usual step; what they take beyond it is charged to probing
AFTER_STEPS = 3
#: how many recent usual steps give the usual step time (their median)
USUAL_STEPS = 32
#: the share of a run's time live probing may take (:class:`ProbeHook`). What probing costs beyond
#: what the hook counts (the epoch end's slower steps, caches the probes cooled) came to about 1-2
#: points more in runs measured in blocks (:mod:`.probe_cost`; docs/inspector_bench.md, ninth
#: round): 3 % keeps the lost throughput under 5 %; a probe still comes every second or two.
PROBE_BUDGET = 0.03


@dataclass(frozen=True)
class StopDecision:
    status: str  # the Finished status, e.g. "early_stopped"
    message: str


class Hook:
    """Does nothing; subclasses override the points they need."""

    def on_step(self, s: Session, epoch: int) -> Iterator[Event]:
        """After each optimizer step; may yield events (the model is in training mode after)."""
        return iter(())

    def on_epoch_end(self, s: Session, report: EpochReport) -> StopDecision | None:
        """After each completed epoch has been reported and checkpointed."""
        return None


class EarlyStopping(Hook):
    """Ends the run after ``patience`` epochs without a better validation loss.

    The count lives in the checkpointed counters (``bad_epochs``), so a resumed run keeps it.
    """

    def __init__(self, patience: int) -> None:
        self.patience = patience

    def on_epoch_end(self, s: Session, report: EpochReport) -> StopDecision | None:
        if self.patience and s.state.bad_epochs >= self.patience:
            return StopDecision(
                "early_stopped",
                f"no better validation loss for {self.patience} epochs; best was epoch {s.state.best_epoch}",
            )
        return None


class ProbeHook(Hook):
    """Every ``interval`` seconds (a timer, not every step), the intermediates of the probe
    image(s) for the UI: by default the first validation image (the first training image
    without a validation set), or the images chosen with :meth:`RunControl.set_probe_paths`.
    A new choice is probed at the next step.

    Epoch replay: the last step of every epoch is probed too, whatever the timer, and (with
    ``snapshots`` and a run folder) those reports are kept as the epoch's snapshot in
    ``RUN_DIR/probes`` (:mod:`.replay`). With ``interval <= 0`` nothing is probed or kept.

    Cost bound: when a probe takes long compared with ``interval`` (a big model, a slow or busy
    CPU), the next one waits longer, so that probing stays within ``budget`` of the time
    (:func:`next_probe_gap`). The epoch-end probes are always made, and they count: a timed
    probe is made only while all the probing so far (epoch ends included) is within ``budget``
    of the time since the first step, so short epochs do not add their epoch-end probes on top
    of the timed ones. The first timed probe, and the first after the user chooses other images,
    are always made (the user sees the model at once).

    What a probe costs is more than its own time: the steps right after it run slower (on a 2-core
    CPU the window paints the new report while training resumes, and training's threads start
    again cold), measured at 5-8 % of a cnn's throughput where the probes' own time was 1 %. So
    the :data:`AFTER_STEPS` steps after each probe are timed against the usual step (the median
    of recent steps not right after one), and what they took beyond it is charged to probing
    (``after_seconds``, part of ``seconds``): the budget holds what probing costs the run. Not
    for the first probe of a run or of a new choice of images: the window builds its views for
    them once (a crnn's steps after its first probe: 414 and 515 ms against 272), and charging
    that would hold the next live view back for ~10 s.

    Work that a probe causes outside the trainer counts too: the consumer's handling of the reports
    (yielded inside the probe's time) and what others charge through
    :meth:`RunControl.charge_probing` (the app's window: its CPU time drawing each report), taken at
    every step (``charged_seconds``, part of ``seconds``). So a window slow to draw thins the live
    probes out instead of slowing training down."""

    def __init__(
        self,
        interval: float,
        control: RunControl,
        snapshots: bool = True,
        budget: float = PROBE_BUDGET,
        gradcam: bool = True,
    ) -> None:
        self.interval = interval
        self.gradcam = gradcam
        self.budget = budget
        self.control = control
        self.snapshots = snapshots
        self.due = time.perf_counter() + interval if interval > 0 else math.inf
        self._version = -1
        self._images: list[tuple[str, torch.Tensor]] = []
        self.seconds = 0.0  # spent probing, handing the reports over and keeping snapshots, and charged
        self.started: float | None = None  # the first step's time
        self._chosen = False  # the user chose other images: probe them at the next step
        self.after_seconds = 0.0  # of ``seconds``: the steps right after probes, beyond the usual step
        self._usual: deque[float] = deque(maxlen=USUAL_STEPS)  # durations of steps not right after a probe
        self._charging: list[float] | None = None  # the steps since the last probe (None: not timing them)
        self._last: tuple[int, int, float] | None = None  # (epoch, step, time) when the last call ended
        self._since: int | None = None  # steps since the last probe (None: none yet)
        self.probes = 0  # probes made (each a report per probe image)
        self.charged_seconds = 0.0  # of ``seconds``: probing's work outside the trainer (RunControl.charge_probing)
        self._held: float | None = None  # when timed probes were held back (None: not held)
        self.held_seconds = 0.0  # time timed probes were held back, in all

    def on_step(self, s: Session, epoch: int) -> Iterator[Event]:
        if self.interval <= 0:
            return
        try:
            yield from self._on_step(s, epoch)
        finally:
            self._last = (epoch, self.control.progress.step, time.perf_counter())

    def _time_step(self, epoch: int, step: int, now: float) -> None:
        """Times the step that just ended (from the end of the last call): one of the
        :data:`AFTER_STEPS` right after a probe, whose excess over the usual step is charged to
        probing, or a usual one."""
        last = self._last
        if self._since is not None:
            self._since += 1
        if last is None or last[:2] != (epoch, step - 1):
            self._charging = None  # a run's or an epoch's first step: its time holds validation, a checkpoint
            return
        took = now - last[2]
        if self._charging is None:
            self._usual.append(took)
            return
        self._charging.append(took)
        if len(self._charging) == AFTER_STEPS:
            if self._usual:  # no usual step yet to compare with (the run's first probe): not charged
                extra = max(0.0, sum(self._charging) - statistics.median(self._usual) * AFTER_STEPS)
                self.seconds += extra  # the steps' excess summed with its sign first: noise cancels
                self.after_seconds += extra
            self._charging = None

    def _on_step(self, s: Session, epoch: int) -> Iterator[Event]:
        version, paths = self.control.probe_paths
        if version != self._version:
            if self._version >= 0:  # a new choice: show it now, not an interval later, whatever the budget
                self.due = time.perf_counter()
                self._chosen = True
            self._version = version
            self._images, problems = _probe_images(s, paths)
            for problem in problems:
                yield Status(f"probe image skipped: {problem}")
        progress = self.control.progress
        epoch_end = progress.steps > 0 and progress.step == progress.steps
        now = time.perf_counter()
        self._time_step(epoch, progress.step, now)
        charged = self.control.take_probing_charge()
        self.seconds += charged
        self.charged_seconds += charged
        if self.started is None:
            self.started = now
        over = self.seconds > self.budget * (now - self.started)
        timing = self._since is not None and self._since <= AFTER_STEPS  # the last probe's cost is not known yet
        held = self._held is not None
        if not epoch_end and not self._chosen and (held or now < self.due or over or timing):
            return
        first = self._chosen or self._since is None  # the views are built for it: a one-off cost
        self._chosen = False
        t0 = time.perf_counter()
        with one_thread():
            reports = [probe(s, epoch, path, img, self.gradcam) for path, img in self._images]
        if epoch_end and self.snapshots and s.out_dir is not None and reports:
            replay.write_snapshot(s.out_dir, epoch, reports)
        s.model.train()
        self._charging, self._since = (None if first else []), 0
        yield from reports  # the consumer's handling (the app's copies, a log's files) is probing too
        spent = time.perf_counter() - t0
        self.seconds += spent
        self.probes += 1
        self.due = time.perf_counter() + next_probe_gap(self.interval, spent, self.budget)

    def hold(self, held: bool) -> None:
        """Holds the timed probes back (``True``) or lets them go on (``False``), to measure what
        probing costs within one run (:mod:`.probe_cost`). While held, the steps are still timed and
        epoch ends still probed, and the interval's and the budget's clocks stand still: once let
        go, the probes come as they would have if the held time had never passed."""
        now = time.perf_counter()
        if held and self._held is None:
            self._held = now
        elif not held and self._held is not None:
            pause, self._held = now - self._held, None
            self.held_seconds += pause
            self.due += pause
            if self.started is not None:
                self.started += pause


@contextmanager
def one_thread() -> Iterator[None]:
    """PyTorch's intra-op threads set to 1 for the block (this thread's ops), then back.

    A probe is one image: too little work to share between threads, and each op's threads wait
    for each other. Measured on the 2-core CPU with a GUI and other jobs busy (load ~5), one
    conv_rnn probe with Grad-CAM took a median 142-203 ms wall on 2 threads and 12-37 ms on 1;
    a crnn's 88-496 ms and 21-24 ms (``probe_pass`` timed 10 times; quiet, the two are alike)."""
    n = torch.get_num_threads()
    if n == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def next_probe_gap(interval: float, spent: float, budget: float) -> float:
    """Seconds until the next probe after one that took ``spent``: ``interval``, or longer so
    that ``spent / (spent + gap) <= budget``."""
    return max(interval, spent * (1.0 - budget) / budget) if budget > 0 else interval


def _probe_images(s: Session, paths: tuple[str, ...]) -> tuple[list[tuple[str, torch.Tensor]], list[str]]:
    """(path, uint8 (1, H, W, C)) of each chosen image; problems for those that cannot be used."""
    if not paths:
        split = s.data.val if len(s.data.val) else s.data.train  # uint8, as the user sees it
        img, _ = s.task.batch(split, torch.zeros(1, dtype=torch.long))
        return [(split.paths[0], img)], []
    images, problems = [], []
    for path in paths:
        img = _from_dataset(s, path)
        if img is None:
            try:
                img = torch.from_numpy(s.data.preprocess.load_uint8(path)).unsqueeze(0)
            except DecodeError as e:
                problems.append(f"{path}: {e}")
                continue
        images.append((path, img))
    return images, problems


def _from_dataset(s: Session, path: str) -> torch.Tensor | None:
    """The cached uint8 image of ``path`` when it is part of the data set (its own width)."""
    for split in (s.data.val, s.data.train):
        if path in split.paths:
            i = split.paths.index(path)
            x = split.x[i : i + 1]
            if split.widths is not None:
                x = x[:, :, : int(split.widths[i])]
            return x
    return None


def probe(s: Session, epoch: int, path: str, img: torch.Tensor, with_gradcam: bool = True) -> ProbeReport:
    """The live probe of one uint8 image (1, H, W, C) during training: :func:`probe_report` of the
    session's model (left in eval mode; the hook puts it back in training)."""
    return probe_report(
        s.model,
        s.task,
        s.data.preprocess.to_tensor,
        s.data.labels,
        img.to(s.device),
        path=path,
        epoch=epoch,
        global_step=s.state.global_step,
        with_gradcam=with_gradcam,
    )


def probe_report(
    model: torch.nn.Module,
    task: Task,
    to_tensor: Callable[[torch.Tensor], torch.Tensor],
    labels: list[str],
    img: torch.Tensor,
    *,
    path: str,
    epoch: int,
    global_step: int = 0,
    with_gradcam: bool = True,
    ranked: int = 0,
) -> ProbeReport:
    """The intermediates of one uint8 image (1, H, W, C) on the model's device, for the UI to
    draw, with the model's declaration of each (``info``, ``output_info``), the words of a
    declared ``tokens`` entry and the task's candidates (beam search). The live probes and the
    probes of a loaded run (:mod:`.probe_run`) both come from here, so the views draw them alike.

    With ``with_gradcam``, models with a spatial feature map also get their Grad-CAM maps, one
    per class / character / word (:func:`explorer.engine.gradcam.probe_pass`; ``ranked``: a
    classifier's most probable classes instead of the predicted one), under the key
    ``"gradcam"`` in ``intermediates`` (n, H, W) and ``info`` (kind ``"gradcam"``)."""
    model.eval()
    x = to_tensor(img)
    info, output_info = _declarations(model, (int(x.shape[-2]), int(x.shape[-1])))
    out, inter, cam = gradcam.probe_pass(
        model,
        x,
        lambda xx: task.forward_intermediates(model, xx),
        labels,
        with_gradcam=with_gradcam and bool(info),
        ranked=ranked,
    )
    with torch.no_grad():
        probs, text = task.probe_output(out, labels)
        arrays = {k: v[0].float().cpu().numpy().copy() for k, v in inter.items()}
        if cam is not None:
            arrays[gradcam.GRADCAM_KEY], info[gradcam.GRADCAM_KEY] = cam
        token_keys = [k for k, d in info.items() if d["kind"] == "tokens" and k in inter]
        tokens = [labels[int(i)] for i in inter[token_keys[0]][0].tolist()] if token_keys else None
        return ProbeReport(
            epoch=epoch,
            global_step=global_step,
            path=path,
            image=img[0].cpu().numpy().copy(),
            probabilities=probs,
            text=text,
            intermediates=arrays,
            info=info,
            output_info=output_info,
            tokens=tokens,
            candidates=task.probe_candidates(model, x, labels),
        )


def _declarations(model: torch.nn.Module, image_size: tuple[int, int]) -> tuple[dict[str, dict], dict | None]:
    """(entry -> declaration, output declaration) as plain dicts; empty for an undeclared model."""
    if not hasattr(model, "intermediate_info"):
        return {}, None
    try:
        info = {k: d.to_dict() for k, d in model.intermediate_info(image_size).items()}
        return info, model.output_info(image_size).to_dict()
    except NotImplementedError:
        return {}, None
