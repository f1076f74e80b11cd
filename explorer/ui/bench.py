"""``bench ui``: how smooth the app stays, and how fast each view paints, while the real worker trains.

The inspector panel (:class:`~explorer.ui.inspector.InspectorPanel`, every probe view of the model
open) follows a run trained by the real :class:`~explorer.ui.worker.TrainingController`, while a
10 ms precise QTimer on the GUI thread records how late each tick fires. Lateness beyond the 10 ms
period is an event-loop stall: the time a user's click or a repaint would have waited. Every
section's paint is timed and reported per view kind; a timer scrolls the inspector to each section
in turn (sections out of view are not painted, so a user scrolls to see them) and another switches
the recurrent and spatial selectors (state / gates / cell state) as a user would, so gate views are
painted too. The kinds the model's probe reports declare are reported beside the kinds painted.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from PySide6.QtCore import QEventLoop, Qt, QTimer

__all__ = ["bench_ui", "declared_kinds", "VIEW_KINDS"]

TICK_MS = 10
SCROLL_MS = 400  # the inspector is scrolled to its next section this often
VIEW_KINDS = ("feature_maps", "filters", "hidden_states", "gates", "spatial_states", "attention", "ctc", "gradcam")


@contextlib.contextmanager
def _private_home(path: str) -> Iterator[None]:
    old = os.environ.get("MODEL_EXPLORER_HOME")
    os.environ["MODEL_EXPLORER_HOME"] = path
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MODEL_EXPLORER_HOME", None)
        else:
            os.environ["MODEL_EXPLORER_HOME"] = old


def _entry_kind(cls: type, d: dict) -> str | None:
    """The bench's name of what a section of class ``cls`` paints for declared entry ``d``."""
    from .probe.feature_maps import FeatureMapSection, FilterSection
    from .probe.gradcam import GradCamSection
    from .probe.outputs import CtcSection
    from .probe.recurrent import RecurrentSection
    from .probe.spatial import SpatialStateSection

    if issubclass(cls, (RecurrentSection, SpatialStateSection)):
        gate = d["kind"] in ("gate", "cell_state") or d.get("gate") is not None
        return "gates" if gate else ("hidden_states" if issubclass(cls, RecurrentSection) else "spatial_states")
    names = {FeatureMapSection: "feature_maps", FilterSection: "filters", CtcSection: "ctc", GradCamSection: "gradcam"}
    for c, name in names.items():
        if issubclass(cls, c):
            return name
    from .probe.attention import AttentionSection

    return "attention" if issubclass(cls, AttentionSection) else None


def _kind_of(section: Any) -> str | None:
    """The bench's name of what ``section`` paints now (a recurrent section showing a gate: gates)."""
    from .probe.outputs import OutputPanel

    if isinstance(section, OutputPanel):
        return "ctc" if section.ctc_shown else None
    info = getattr(section, "_info", None)
    d = info[section.selected] if isinstance(info, dict) and hasattr(section, "selected") else {"kind": ""}
    return _entry_kind(type(section), d)


def declared_kinds(report: Any) -> set[str]:
    """The view kinds (:data:`VIEW_KINDS`) a probe report's declaration asks the inspector for: each
    planned section's entries (as the probe view plans them) and the output's own plot (the output
    declaration planned like an entry: a ``ctc_frames`` output is drawn as a CTC section draws one)."""
    from .probe.plan import plan_sections
    from .probe.view import SECTIONS

    kinds = set()
    for p in plan_sections(report.info):
        if all(k in report.intermediates for k in p.keys):
            kinds |= {_entry_kind(SECTIONS[p.view], report.info[k]) for k in p.keys}
    for p in plan_sections({"output": report.output_info} if report.output_info else {}):
        kinds.add(_entry_kind(SECTIONS[p.view], report.output_info))
    return kinds - {None}


@contextlib.contextmanager
def _timed_paints(times: dict[str, list[float]], cpu: dict[str, list[float]] | None = None) -> Iterator[None]:
    """Times every section paint (``update_from``, ``select``) into ``times[kind]`` (wall ms) and
    ``cpu[kind]`` (the GUI thread's CPU ms: the paint's own work, without the waits for the GIL and
    for a core that the training thread and other processes cause)."""
    from .probe import view as probe_view
    from .probe.outputs import OutputPanel

    classes = {*probe_view.SECTIONS.values(), OutputPanel}
    saved = []
    for cls in classes:
        for name in ("update_from", "select"):
            if name in cls.__dict__:
                orig = cls.__dict__[name]
                saved.append((cls, name, orig))

                def timed(self, *a, _orig=orig, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
                    t0, c0 = time.perf_counter(), time.thread_time()
                    out = _orig(self, *a, **kw)
                    kind = _kind_of(self)
                    if kind is not None:
                        times.setdefault(kind, []).append((time.perf_counter() - t0) * 1000.0)
                        if cpu is not None:
                            cpu.setdefault(kind, []).append((time.thread_time() - c0) * 1000.0)
                    return out

                setattr(cls, name, timed)
    try:
        yield
    finally:
        for cls, name, orig in saved:
            setattr(cls, name, orig)


def _switch_selectors(panel: Any) -> None:
    """Shows the next state / gate of every recurrent and spatial section (as a user clicking)."""
    for view in panel.compare.views.values():
        for sec in view.sections:
            buttons = getattr(sec, "buttons", None)
            if isinstance(buttons, dict) and len(buttons) > 1 and getattr(sec, "_arrays", None):
                keys = list(buttons)
                sec.select(keys[(keys.index(sec.selected) + 1) % len(keys)])


def _scroll_sections(panel: Any, state: dict[str, int]) -> list[Any]:
    """Scrolls every probe view to its next section (as a user reading down the list; ``state``:
    view path -> index of the section shown last), so that each section comes into view in turn and
    paints (sections out of view are not painted). Returns the sections scrolled to."""
    shown = []
    for path, view in panel.compare.views.items():
        if not view.sections:
            continue
        i = (state.get(path, -1) + 1) % len(view.sections)
        state[path] = i
        view.scroll.ensureWidgetVisible(view.sections[i], 0, 0)
        shown.append(view.sections[i])
    return shown


def _config(data: str, arch: str, epochs: int, params: dict[str, Any] | None, device: str) -> Any:
    from explorer.engine import RunConfig
    from explorer.engine.probe_cost import DEFAULT_PROBE_INTERVAL

    cfg = RunConfig(arch=arch, params=dict(params or {}))
    cfg.data.source = data
    cfg.train.epochs = epochs
    cfg.train.batch_size = 32
    cfg.train.device = device
    cfg.train.probe_interval = DEFAULT_PROBE_INTERVAL  # the app's live probes, at the default rate
    cfg.validate()
    return cfg


class _StallClock:
    """A :data:`TICK_MS` precise timer on the GUI thread noting how late each tick fires (ms, in
    ``late``). Ticks across a CLI block of an :class:`~.app_cost.AppCliController`, when the event
    loop stands still on purpose, are left out."""

    def __init__(self, controller: Any) -> None:
        self.late: list[float] = []
        self._turns = lambda: getattr(controller, "turns", 0)  # CLI blocks so far (0: a plain controller)
        self._last, self._seen = time.perf_counter(), 0
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)

    def start(self) -> None:
        self._last, self._seen = time.perf_counter(), self._turns()
        self.timer.start()

    def _tick(self) -> None:
        now, turns = time.perf_counter(), self._turns()
        if turns == self._seen:
            self.late.append(max(0.0, (now - self._last) * 1000.0 - TICK_MS))
        self._last, self._seen = now, turns


def _simulated_user(panel: Any) -> list[QTimer]:
    """Timers (not started) that switch the selectors every 0.7 s and scroll to the next section
    every :data:`SCROLL_MS`, as a user reading the inspector."""
    switch = QTimer()
    switch.setInterval(700)
    switch.timeout.connect(lambda: _switch_selectors(panel))
    scrolled: dict[str, int] = {}
    scroll = QTimer()
    scroll.setInterval(SCROLL_MS)
    scroll.timeout.connect(lambda: _scroll_sections(panel, scrolled))
    return [switch, scroll]


def _train_with_views(
    cfg: Any,
    run_dir: str,
    timeout_s: float,
    cpu: dict[str, list[float]] | None = None,
    declared: set[str] | None = None,
    controller: Any = None,
) -> tuple[list[float], dict[str, list[float]], Any]:
    """(tick lateness ms, paint ms per kind, the Finished event) of one run with the inspector open;
    ``cpu`` collects each paint's GUI-thread CPU ms, ``declared`` the kinds the probe reports declare.
    ``controller``: the :class:`~.worker.TrainingController` to train with (a new one by default; an
    :class:`~.app_cost.AppCliController`'s CLI blocks are left out of the lateness)."""
    from .inspector import InspectorPanel
    from .worker import TrainingController, gui_friendly_threads

    controller = controller if controller is not None else TrainingController()
    panel = InspectorPanel(controller)
    panel.resize(1400, 900)
    panel.show()
    controller.probe.connect(panel.show_report)
    if declared is not None:
        controller.probe.connect(lambda r: declared.update(declared_kinds(r)))
    controller.started.connect(lambda d: panel.set_run(d, load_model=False))
    times: dict[str, list[float]] = {}
    stalls, user = _StallClock(controller), _simulated_user(panel)
    loop = QEventLoop()
    controller.idle.connect(loop.quit)
    QTimer.singleShot(int(timeout_s * 1000), loop, loop.quit)
    with _timed_paints(times, cpu):
        for t in user:
            t.start()
        stalls.start()
        controller.start(cfg, run_dir, cpu_threads=gui_friendly_threads())  # as the app trains
        loop.exec()
        for t in [stalls.timer, *user]:
            t.stop()
    fin = controller.last_finished
    if controller.is_running():
        controller.shutdown()
        raise RuntimeError(f"training did not finish within {timeout_s:.0f} s")
    panel.shutdown()
    panel.close()
    panel.deleteLater()
    return stalls.late, times, fin


def _blocked_runs(
    cfg: Any, home: str, repeats: int, timeout_s: float, cpu: dict[str, list[float]], declared: set[str], block: int
) -> tuple[list[float], dict[str, list[float]], list[dict[str, Any] | str]]:
    """``repeats`` runs of the app with the inspector open, each alternating app and CLI blocks of
    ``block`` steps (:mod:`.app_cost`): (tick lateness and paint ms pooled over the app blocks,
    each run's :func:`~.app_cost.app_cli_ratio`, or why it has none: too few steps)."""
    from explorer.engine.probe_cost import TooFewSteps

    from .app_cost import AppCliController, app_cli_ratio

    late: list[float] = []
    times: dict[str, list[float]] = {}
    runs: list[dict[str, Any] | str] = []
    for r in range(repeats):
        controller = AppCliController(block)
        run_late, run_times, fin = _train_with_views(
            cfg, os.path.join(home, f"run{r}"), timeout_s, cpu, declared, controller
        )
        if fin is None or fin.status not in ("completed", "early_stopped") or controller.trainer is None:
            raise RuntimeError(f"training {fin.status if fin else 'ended'}: {fin.message if fin else ''}")
        late.extend(run_late[1:])
        for k, v in run_times.items():
            times.setdefault(k, []).extend(v)
        try:
            runs.append(app_cli_ratio(controller.trainer, float(fin.metrics["train_seconds"])))
        except TooFewSteps as e:
            runs.append(str(e))
    return late, times, runs


def _stall_figures(late: list[float]) -> dict[str, float]:
    """p50, p99 and max of the tick lateness (ms) pooled over the app runs."""
    a = np.asarray(late or [0.0])
    return {
        "stall_p50_ms": round(float(np.percentile(a, 50)), 2),
        "stall_p99_ms": round(float(np.percentile(a, 99)), 2),
        "stall_max_ms": round(float(a.max()), 2),
    }


def _view_figures(times: dict[str, list[float]], cpu: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """kind -> paints, wall p50 / p99 ms and CPU p99 ms, for every kind painted."""
    return {
        k: {
            "paints": len(times[k]),
            "p50_ms": round(float(np.percentile(times[k], 50)), 2),
            "p99_ms": round(float(np.percentile(times[k], 99)), 2),
            "cpu_p99_ms": round(float(np.percentile(cpu[k], 99)), 2),
        }
        for k in VIEW_KINDS
        if times.get(k)
    }


def bench_ui(
    epochs: int = 2,
    data: str = "sample:shapes",
    arch: str = "cnn",
    params: dict[str, Any] | None = None,
    *,
    device: str = "auto",
    overhead: bool = True,
    repeats: int = 1,
    block: int = 8,
    timeout_s: float = 900.0,
) -> dict[str, Any]:
    """Trains ``arch`` on ``data`` in the real worker with the inspector open and measures GUI
    event-loop stalls, each view's paint time and the app's throughput against the CLI's; with
    ``overhead``, also the probe overhead (:func:`explorer.engine.probe_cost.probe_overhead`:
    ``repeats`` headless runs, same settings, each probed in every other block of steps).

    Each of the ``repeats`` app runs alternates blocks of ``block`` steps trained as the app (the
    window live, probes on) and as the CLI (the window standing still, probes held back), so both
    sides see the machine of the same few seconds (:mod:`.app_cost`; on the 2-core machine the same
    run's samples/s drifted by 10-20 % from one minute to the next, and pairs of separate runs
    spread from 0.71 to 1.13). Stalls and paints are those of the app blocks, pooled over the runs.

    Returns:
        ``stall_p50_ms``, ``stall_p99_ms``, ``stall_max_ms``; ``throughput_ratio`` (the app's
        samples/s over the CLI's: the runs pooled, each run's in ``throughput_ratios``),
        ``samples_per_second`` and ``cli_samples_per_second`` (the medians over a training step of
        the app blocks, with what the app added, and of the CLI blocks); ``None`` with
        ``throughput_error`` when the runs are too short for blocks; ``cli_run_samples_per_second``
        (:func:`~.app_cost.cli_throughput`: the same run trained by ``model-explorer train`` in its own
        process, ``metrics.json``: a check that the CLI blocks train as the CLI does); ``views``
        (kind -> {``paints``, ``p50_ms``, ``p99_ms``, ``cpu_p99_ms``}, for every kind painted; p50 / p99
        are wall time on the GUI thread, ``cpu_p99_ms`` its CPU time, which leaves out the waits a
        busy machine adds), ``kinds_declared`` (:func:`declared_kinds` of the run's probe reports),
        ``missing`` (declared kinds never painted; empty when every view was painted) and
        ``probe_overhead`` (fraction of throughput lost to probing: the runs pooled, each
        run's in ``probe_overheads``; with ``probe_share``, the time the probe hook accounts for;
        ``None`` with ``probe_overhead_error`` saying why when the run is too short to measure it).

    Raises:
        RuntimeError: the run did not complete (its message says why).
    """
    from .app import ensure_app
    from .app_cost import cli_throughput

    with tempfile.TemporaryDirectory(prefix="me-bench-ui-") as home, _private_home(home):
        ensure_app()
        cfg = _config(data, arch, epochs, params, device)
        out: dict[str, Any] = {
            "data": data,
            "arch": arch,
            "epochs": epochs,
            **_app_figures(cfg, home, max(1, repeats), timeout_s, block),
            "cli_run_samples_per_second": cli_throughput(cfg, os.path.join(home, "cli-run")),
            "repeats": max(1, repeats),
        }
        if overhead:  # headless runs on this (main) thread, with PyTorch's default threads as the CLI's
            out.update(_overhead_figures(_config(data, arch, epochs, params, device), max(1, repeats)))
        return out


def _app_figures(cfg: Any, home: str, repeats: int, timeout_s: float, block: int) -> dict[str, Any]:
    """Stalls, throughput against the CLI, paints per view and the kinds declared and missing, of
    ``repeats`` app runs (:func:`_blocked_runs`), the GUI thread on one PyTorch thread as in the app
    (``app._run``)."""
    from .app_cost import throughput_figures
    from .threads import one_thread_for_the_gui

    cpu: dict[str, list[float]] = {}
    declared: set[str] = set()
    with one_thread_for_the_gui():
        late, times, runs = _blocked_runs(cfg, home, repeats, timeout_s, cpu, declared, block)
    return {
        **_stall_figures(late),
        **throughput_figures(runs, cfg.train.batch_size),
        "views": _view_figures(times, cpu),
        "kinds_declared": [k for k in VIEW_KINDS if k in declared],
        "missing": [k for k in VIEW_KINDS if k in declared and not times.get(k)],
    }


def _overhead_figures(cfg: Any, repeats: int) -> dict[str, Any]:
    """``probe_overhead``, ``probe_overheads`` and ``probe_share`` of ``repeats`` runs
    (:func:`~explorer.engine.probe_cost.probe_overhead`); for a run too short for blocks of steps,
    ``None`` and ``probe_overhead_error`` saying so."""
    from explorer.engine.probe_cost import TooFewSteps, probe_overhead

    try:
        po = probe_overhead(cfg, repeats=repeats)
    except TooFewSteps as e:
        return {"probe_overhead": None, "probe_overheads": [], "probe_share": None, "probe_overhead_error": str(e)}
    return {
        "probe_overhead": round(float(po["probe_overhead"]), 4),
        "probe_overheads": [round(float(o), 4) for o in po["overheads"]],
        "probe_share": round(float(po["probe_share"]), 4),
    }
