"""The probe-overhead helper of ``bench ui``: one run probed in every other block of steps."""

from __future__ import annotations

from pathlib import Path

import pytest

from explorer.data import open_source
from explorer.engine import RunConfig
from explorer.engine.hooks import AFTER_STEPS, next_probe_gap
from explorer.engine.probe_cost import StepTime, block_estimate, blocked_run, paired_runs, probe_overhead
from tests.datasets import write_two_class_folder


def _cfg(data: Path) -> RunConfig:
    cfg = RunConfig(arch="cnn", params={"channels": "8,16"})
    cfg.data.source = str(data)
    cfg.train.epochs = 2
    cfg.train.batch_size = 8
    return cfg


def test_probe_overhead_holds_the_probes_back_in_blocks_of_one_real_run(tmp_path: Path) -> None:
    cfg = _cfg(write_two_class_folder(tmp_path / "data", n=48, size=16))
    cfg.train.batch_size = 2  # 20 training steps per epoch
    logged: list[str] = []
    result = probe_overhead(cfg, interval=0.01, repeats=2, block=4, log=logged.append)
    assert len(logged) == 2 and "overhead" in logged[0]
    assert result["interval"] == 0.01 and result["repeats"] == 2 and result["block"] == 4
    assert result["probes"] >= 3 and result["snapshots"] == 2  # the first timed probe; every epoch end, kept
    with_probes, without = result["seconds_with_probes"], result["seconds_without"]
    assert len(result["overheads"]) == len(with_probes) == len(without) == 2
    assert result["probe_overhead"] == pytest.approx(1 - sum(without) / sum(with_probes))  # the runs pooled
    assert min(result["overheads"]) - 1e-9 <= result["probe_overhead"] <= max(result["overheads"]) + 1e-9
    assert -1.0 < result["probe_overhead"] < 1.0  # a fraction; its sign and size depend on machine load here
    assert 0.0 < result["probe_share"] < 1.0 and min(result["step_ms"]) > 0
    assert cfg.train.probe_interval == 0.0  # the caller's config is left as it was

    run = blocked_run(cfg, open_source(cfg.data.source), 0.01, block=4)
    rows = run["rows"]
    assert [r.held for r in rows[:12]] == [False] * 4 + [True] * 4 + [False] * 4  # blocks, the first probing
    assert not any(r.probed for r in rows if r.held and r.step < r.steps)  # held: only epoch ends probed
    assert any(r.probed for r in rows if not r.held and r.step < r.steps)  # timed probes (within the budget)
    assert all(r.probed for r in rows if r.step == r.steps)
    assert run["probes"] == sum(r.probed for r in rows)
    with pytest.raises(ValueError, match="interval must be > 0"):
        probe_overhead(cfg, interval=0.0)
    with pytest.raises(ValueError, match="block must be >= 1"):
        probe_overhead(cfg, block=0)


def _simulated_rows(held_in_blocks: int, epochs: int = 3, steps: int = 40) -> tuple[list[StepTime], float]:
    """A run on a made-up clock: steps of 100 ms; a timed probe every 4th step (when not held)
    adds 20 ms to its step and 10 ms to the next; an epoch-end probe 50 ms to the last step and
    10 ms to the next epoch's second step (the first runs after validation); 1 s of validation
    between epochs. ``held_in_blocks``:
    timed probes held back in every other block of that many steps (0: never)."""
    rows, clock, g, after = [], 0.0, 0, 0.0
    for epoch in range(1, epochs + 1):
        clock += 1.0 if epoch > 1 else 0.0
        for step in range(1, steps + 1):
            held = bool(held_in_blocks) and (g // held_in_blocks) % 2 == 1
            last = step == steps
            probed = last or (not held and g % 4 == 3 and (epoch == 1 or step > AFTER_STEPS))
            if step == 1 and epoch > 1:  # runs after validation: the epoch end's slower step is the next
                clock += 0.1
                g += 1
                rows.append(StepTime(epoch, step, steps, clock, held, False))
                continue
            clock += 0.1 + after + (0.05 if last else 0.02 if probed else 0.0)
            after = 0.01 if probed else 0.0
            rows.append(StepTime(epoch, step, steps, clock, held, probed))
            g += 1
    return rows, clock


def test_the_block_estimate_gives_the_runs_with_probes_everywhere_and_nowhere() -> None:
    """On a made-up clock, the estimate from a run probed in every other block equals what a run
    probed all through and a run never probed take (the latter: the same clock without any probe)."""
    rows, seconds = _simulated_rows(held_in_blocks=8)
    _, everywhere = _simulated_rows(held_in_blocks=0)
    nowhere = 3 * 40 * 0.1 + 2 * 1.0
    est = block_estimate(rows, seconds)
    assert est["step_ms"] == pytest.approx(100.0)
    assert est["end_seconds"] == pytest.approx(3 * 0.05 + 2 * 0.01)
    assert est["seconds_with_probes"] == pytest.approx(everywhere, abs=0.02)
    assert est["seconds_without"] == pytest.approx(nowhere, abs=0.02)
    assert est["probe_overhead"] == pytest.approx(1 - nowhere / everywhere, abs=0.002)
    assert est["probe_overhead"] > 0.05  # (30 ms per 4 steps of 100 ms, and the epoch ends)
    with pytest.raises(ValueError, match="too few steps"):
        block_estimate(_simulated_rows(held_in_blocks=0)[0], seconds)  # never held: nothing to compare


def test_pairs_run_back_to_back_in_alternating_order() -> None:
    calls: list[str] = []

    def run(name: str):  # noqa: ANN202
        return lambda: calls.append(name) or f"{name}{len(calls)}"

    logged: list[tuple] = []
    pairs = paired_runs(run("a"), run("b"), 3, lambda r, a, b: logged.append((r, a, b)))
    assert calls == ["a", "b", "b", "a", "a", "b"]  # neither side always runs first
    assert pairs == [("a1", "b2"), ("a4", "b3"), ("a5", "b6")]  # each pair as (first, second)
    assert logged == [(0, "a1", "b2"), (1, "a4", "b3"), (2, "a5", "b6")]


def test_a_slow_probe_waits_longer_so_probing_stays_within_its_budget() -> None:
    assert next_probe_gap(1.0, 0.01, 0.04) == 1.0  # cheap probes: the timer decides
    gap = next_probe_gap(1.0, 0.2, 0.04)  # 200 ms probes: 4.8 s apart
    assert gap == pytest.approx(4.8) and 0.2 / (0.2 + gap) == pytest.approx(0.04)
    assert next_probe_gap(0.5, 0.2, 0.0) == 0.5  # no budget: the timer alone


def _fake_run(
    monkeypatch: pytest.MonkeyPatch,
    *,
    epochs: int,
    steps: int,
    probe_s: float,
    between: float = 0.0,
    slower_after: float = 0.0,
    choose_at: int | None = None,
    held: range = range(0),
    window_s: float = 0.0,
) -> tuple[list[tuple[float, int, bool]], object, float]:
    """A run of ``epochs`` of ``steps`` steps of 0.5 s on a fake clock, ``between`` s of validation
    and checkpoint before each epoch, probes of ``probe_s`` s, interval 1 s, budget 4 %; the step
    right after each probe takes ``slower_after`` s longer; before step ``choose_at`` of the first
    epoch the user chooses other images; timed probes are held back from step ``held.start``
    to ``held.stop`` (not included) of the first epoch; each probe's report costs the window
    ``window_s`` s, charged through the run control. Returns (probes made as (time, step, epoch end), the
    hook, the run's seconds)."""
    from types import SimpleNamespace

    from explorer.engine import hooks
    from explorer.engine.control import RunControl

    clock = [0.0]
    monkeypatch.setattr(hooks.time, "perf_counter", lambda: clock[0])
    made: list[tuple[float, int, bool]] = []
    after = [0.0]

    def fake_probe(s, epoch, path, img, gradcam):  # noqa: ANN001, ANN202
        made.append((clock[0], control.progress.step, control.progress.step == control.progress.steps))
        clock[0] += probe_s
        after[0] = slower_after
        control.charge_probing(window_s)  # the window's drawing of the report (in the app: the GUI thread)
        return object()

    monkeypatch.setattr(hooks, "probe", fake_probe)
    monkeypatch.setattr(hooks, "_probe_images", lambda s, paths: ([("a.png", None)], []))
    control = RunControl()
    hook = hooks.ProbeHook(1.0, control, snapshots=False, budget=0.04)
    s = SimpleNamespace(model=SimpleNamespace(train=lambda: None), out_dir=None)
    for epoch in range(1, epochs + 1):
        clock[0] += between
        for step in range(1, steps + 1):
            clock[0] += 0.5 + after[0]
            after[0] = 0.0
            control.update(epoch=epoch, step=step, steps=steps)
            if epoch == 1 and step == choose_at:
                control.set_probe_paths(["b.png"])
            if epoch == 1 and step in (held.start, held.stop):
                hook.hold(step == held.start)
            list(hook.on_step(s, epoch))
    return made, hook, clock[0]


def test_epoch_end_probes_count_against_the_budget_of_the_timed_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """A model whose probe costs 0.25 s, epochs of 10 s (20 steps of 0.5 s), interval 1 s, budget 4 %:
    the first timed probe is made at once, every epoch end is probed, and the timed probes made
    besides keep all the probing within the budget of the time (on a fake clock)."""
    made, hook, total = _fake_run(monkeypatch, epochs=6, steps=20, probe_s=0.25)
    ends = [t for t, _, end in made if end]
    timed = [t for t, _, end in made if not end]
    assert len(ends) == 6  # every epoch end, whatever the budget
    assert timed and timed[0] == pytest.approx(1.0)  # the first at once (its first due time)
    assert len(timed) >= 2  # the timer still runs between the epoch ends
    assert hook.seconds == pytest.approx(0.25 * len(made))
    assert hook.seconds <= 0.04 * total + 0.25 + 0.25  # within budget, give or take the first and last


def test_the_slower_steps_after_a_probe_are_charged_to_probing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Probing's cost includes the steps it slows down (the window painting the report while
    training resumes): charged against the budget, they thin out the timed probes so that all of
    it stays within the budget; steps as fast as usual are charged nothing."""
    run = {"epochs": 4, "steps": 40, "probe_s": 0.05, "between": 3.0}
    made, hook, _ = _fake_run(monkeypatch, **run)
    assert hook.after_seconds == pytest.approx(0.0)
    cheap = len(made)
    made, hook, total = _fake_run(monkeypatch, **run, slower_after=0.3)
    # charged: each timed probe but the run's first (the window builds its views for it, once) and
    # one too close to its epoch's end to time AFTER_STEPS steps after it; an epoch end's probe is
    # followed by validation
    timed = [step for _, step, end in made if not end]
    charged = [step for step in timed[1:] if step <= 40 - AFTER_STEPS]
    assert len(charged) >= 4 and hook.after_seconds == pytest.approx(0.3 * len(charged), rel=0.01)
    assert hook.seconds == pytest.approx(0.05 * len(made) + hook.after_seconds)
    assert len(made) < cheap / 2  # the budget now holds the slower steps too
    assert sum(1 for _, _, end in made if end) == 4  # every epoch end is still probed
    assert hook.seconds <= 0.04 * (total - 3.0) + 0.35  # within budget of the time since the first step, +- a probe


def test_the_views_built_for_a_first_probe_are_not_charged(monkeypatch: pytest.MonkeyPatch) -> None:
    """The run's first probe and the first of a new choice of images make the window build its
    views, once: the steps after them are not charged (else the next live view would wait ~10 s);
    those after the other timed probes are."""
    made, hook, _ = _fake_run(monkeypatch, epochs=1, steps=80, probe_s=0.05, slower_after=0.3, choose_at=40)
    steps = [step for _, step, end in made if not end]
    assert steps[0] == 2 and 40 in steps  # the first at its due time (usual steps timed before it); the choice at once
    charged = [step for step in steps if step not in (2, 40) and step <= 80 - AFTER_STEPS]
    assert charged and hook.after_seconds == pytest.approx(0.3 * len(charged), rel=0.01)


def test_held_probes_wait_and_their_clocks_stand_still(monkeypatch: pytest.MonkeyPatch) -> None:
    """``hold`` (what probe_cost's blocks use): no timed probe while held, the epoch end still
    probed, and the held time counts for neither the interval nor the budget."""
    made, hook, _ = _fake_run(monkeypatch, epochs=1, steps=80, probe_s=0.05, held=range(20, 60))
    timed = [step for _, step, end in made if not end]
    assert not [step for step in timed if 20 <= step < 60]
    assert made[-1][1:] == (80, True)  # the epoch end
    assert hook.held_seconds == pytest.approx(40 * 0.5)
    assert hook.started == pytest.approx(0.5 + 40 * 0.5)  # the first step's time, moved on by the time held
    before, after = (sum(1 for step in timed if lo <= step < lo + 20) for lo in (0, 60))
    assert before >= 4 and abs(after - before) <= 1  # after it, probes as often as before


def test_what_the_window_charges_for_drawing_the_reports_counts_as_probing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A window that takes 0.2 s to draw each report (charged through RunControl.charge_probing,
    as the app's training controller does): the hook takes the charges at the next step, counts
    them against the budget, and probes less often; probing stays within the budget."""
    run = {"epochs": 2, "steps": 80, "probe_s": 0.01}
    made, hook, _ = _fake_run(monkeypatch, **run)
    free = len(made)
    assert hook.charged_seconds == 0.0
    made, hook, total = _fake_run(monkeypatch, **run, window_s=0.2)
    assert hook.charged_seconds == pytest.approx(0.2 * (len(made) - 1))  # the last report's charge comes after the run
    assert hook.seconds == pytest.approx(0.01 * len(made) + hook.charged_seconds)
    assert len(made) < free / 2
    assert hook.seconds <= 0.04 * total + 0.21 + 0.21  # within budget, give or take the first and last
