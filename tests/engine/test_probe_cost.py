"""The probe-overhead helper of ``bench ui``: the same run with probes on and off."""

from __future__ import annotations

from pathlib import Path

import pytest

from explorer.data import open_source
from explorer.engine import RunConfig
from explorer.engine.hooks import AFTER_STEPS, next_probe_gap
from explorer.engine.probe_cost import DEFAULT_PROBE_INTERVAL, paired_runs, probe_overhead, timed_run
from tests.datasets import write_two_class_folder


def _cfg(data: Path) -> RunConfig:
    cfg = RunConfig(arch="cnn", params={"channels": "8,16"})
    cfg.data.source = str(data)
    cfg.train.epochs = 2
    cfg.train.batch_size = 8
    return cfg


def test_probe_overhead_compares_the_same_run_with_probes_on_and_off(tmp_path: Path) -> None:
    cfg = _cfg(write_two_class_folder(tmp_path / "data", n=24, size=16))
    logged: list[str] = []
    result = probe_overhead(cfg, interval=0.01, repeats=2, log=logged.append)
    assert len(logged) == 2 and "probes off" in logged[0]
    assert result["interval"] == 0.01 and result["repeats"] == 2
    assert result["probes"] >= 2 and result["snapshots"] == 2  # every epoch end is probed and kept
    on, off = result["seconds_on"], result["seconds_off"]
    assert len(on) == len(off) == 2 and min(on) > 0 and min(off) > 0
    each = [1 - f / n for f, n in zip(off, on, strict=True)]
    assert result["overheads"] == pytest.approx(each)
    assert result["probe_overhead"] == pytest.approx(sum(each) / 2)  # the median of two
    assert 0.0 < result["probe_share"] < 1.0
    assert result["probe_overhead"] < 1.0  # a fraction; its sign and size depend on machine load here
    assert cfg.train.probe_interval == 0.0  # the caller's config is left as it was
    off = timed_run(cfg, open_source(cfg.data.source), 0.0)
    assert off["probes"] == 0 and off["snapshots"] == 0 and off["probing"] == 0.0
    assert DEFAULT_PROBE_INTERVAL > 0
    with pytest.raises(ValueError, match="interval must be > 0"):
        probe_overhead(cfg, interval=0.0)


def test_pairs_run_back_to_back_in_alternating_order() -> None:
    calls: list[str] = []

    def run(name: str):  # noqa: ANN202
        return lambda: calls.append(name) or f"{name}{len(calls)}"

    logged: list[tuple] = []
    pairs = paired_runs(run("a"), run("b"), 3, lambda r, a, b: logged.append((r, a, b)))
    assert calls == ["a", "b", "b", "a", "a", "b"]  # neither side always runs first
    assert pairs == [("a1", "b2"), ("a4", "b3"), ("a5", "b6")]  # each pair as (first, second)
    assert logged == [(0, "a1", "b2"), (1, "a4", "b3"), (2, "a5", "b6")]


def test_the_overhead_is_the_median_of_the_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    """A burst of load that slows one run of a pair down twice over leaves the figure alone."""
    from explorer.engine import probe_cost

    seconds = iter([10.0, 10.5, 20.5, 10.0, 10.0, 10.5])  # off, on / on (the burst), off / off, on
    monkeypatch.setattr(probe_cost, "timed_run", lambda cfg, source, interval: {
        "seconds": next(seconds), "probing": 0.1 if interval else 0.0, "probes": 1, "snapshots": 1})  # fmt: skip
    cfg = RunConfig(arch="cnn")
    cfg.data.source = "sample:shapes"
    result = probe_overhead(cfg, repeats=3, source=object())
    assert result["overheads"] == pytest.approx([1 - 10 / 10.5, 1 - 10 / 20.5, 1 - 10 / 10.5])
    assert result["probe_overhead"] == pytest.approx(1 - 10 / 10.5)
    assert result["probe_share"] == pytest.approx(0.1 / 10.5)


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
) -> tuple[list[tuple[float, int, bool]], object, float]:
    """A run of ``epochs`` of ``steps`` steps of 0.5 s on a fake clock, ``between`` s of validation
    and checkpoint before each epoch, probes of ``probe_s`` s, interval 1 s, budget 4 %; the step
    right after each probe takes ``slower_after`` s longer; before step ``choose_at`` of the first
    epoch the user chooses other images. Returns (probes made as (time, step, epoch end), the
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
