"""The training loop: it learns, it is reproducible, it resumes exactly, it stops, it
survives a diverging loss."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from explorer.engine import EpochReport, Finished, ProbeReport, RunConfig, Status, StepReport, Trainer, runfolder
from explorer.engine.atomic import read_json, read_safetensors
from explorer.engine.control import FINISHED, IDLE, PAUSED, PREPARING, STOPPING, TRAINING, RunControl
from explorer.engine.hooks import Hook, StopDecision
from models import ExplorerModel, Params, param, register_model
from tests.datasets import write_two_class_folder


def _cfg(data: Path, **train) -> RunConfig:
    cfg = RunConfig(arch="cnn", params={"channels": "8,16"})
    cfg.data.source = str(data)
    cfg.train.epochs = 3
    cfg.train.batch_size = 8
    cfg.train.lr = 3e-3
    for k, v in train.items():
        setattr(cfg.train, k, v)
    return cfg


def _finish(trainer: Trainer) -> tuple[list, Finished]:
    events = list(trainer.run())
    assert isinstance(events[-1], Finished)
    return events, events[-1]


@pytest.fixture(scope="module")
def two_class(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_two_class_folder(tmp_path_factory.mktemp("two"), n=24, size=16)


def test_learns_and_writes_a_complete_run_folder(two_class: Path, tmp_path: Path) -> None:
    events, fin = _finish(Trainer(_cfg(two_class, epochs=4), tmp_path / "run", report_interval=0))
    epochs = [e for e in events if isinstance(e, EpochReport)]
    steps = [e for e in events if isinstance(e, StepReport)]
    assert len(epochs) == 4
    assert len(steps) == 4 * steps[0].steps  # report_interval=0: every step
    assert epochs[-1].train_loss < epochs[0].train_loss * 0.7
    assert fin.status == "completed"
    assert fin.metrics["val_accuracy"] >= 0.9
    run = tmp_path / "run"
    for name in (
        "config.json",
        "weights.safetensors",
        "metrics.json",
        "history.json",
        "checkpoint.safetensors",
        "problems.txt",
    ):
        assert (run / name).is_file(), name
    cfg = read_json(run / "config.json")
    assert cfg["labels"] == ["bottom", "top"]
    pre = cfg["preprocess"]
    assert (pre["channels"], pre["color"], pre["height"], pre["width"]) == (1, "gray", 16, 16)
    assert pre["scale"] == pytest.approx(1 / 255) and len(pre["mean"]) == len(pre["std"]) == 1
    metrics = read_json(run / "metrics.json")
    for key in ("val_accuracy", "epochs", "train_seconds", "samples_per_second", "device"):
        assert key in metrics
    assert len(read_json(run / "history.json")) == 4


def test_same_seed_same_weights(two_class: Path, tmp_path: Path) -> None:
    _finish(Trainer(_cfg(two_class, epochs=2), tmp_path / "a"))
    _finish(Trainer(_cfg(two_class, epochs=2), tmp_path / "b"))
    _finish(Trainer(_cfg(two_class, epochs=2, seed=1), tmp_path / "c"))
    a, b, c = (read_safetensors(tmp_path / x / "weights.safetensors") for x in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_resume_after_interruption_matches_an_uninterrupted_run(two_class: Path, tmp_path: Path) -> None:
    cfg = _cfg(two_class, epochs=3, restore_best=False)
    _finish(Trainer(cfg, tmp_path / "full"))

    # Interrupted mid-epoch 2: the checkpoint of epoch 1 is what survives.
    t = Trainer(_cfg(two_class, epochs=3, restore_best=False), tmp_path / "cut", report_interval=0)
    for ev in t.run():
        if isinstance(ev, StepReport) and ev.epoch == 2 and ev.step == 2:
            t.request_stop()
        if isinstance(ev, Finished):
            assert ev.status == "stopped"
    meta = runfolder.load_checkpoint(tmp_path / "cut")[3]
    assert meta["state"]["epoch"] == 1

    _finish(Trainer(_cfg(two_class, epochs=3, restore_best=False), tmp_path / "cut", resume=True))
    full = read_safetensors(tmp_path / "full" / "weights.safetensors")
    resumed = read_safetensors(tmp_path / "cut" / "weights.safetensors")
    assert full.keys() == resumed.keys()
    for k in full:
        assert torch.equal(full[k], resumed[k]), k
    assert len(read_json(tmp_path / "cut" / "history.json")) == 3


def test_stop_takes_effect_at_the_next_batch(two_class: Path) -> None:
    t = Trainer(_cfg(two_class, epochs=50), None, report_interval=0)
    seen = 0
    for ev in t.run():
        if isinstance(ev, StepReport):
            seen += 1
            if seen == 3:
                t.request_stop()
        if isinstance(ev, Finished):
            assert ev.status == "stopped"
    assert seen == 3


def test_pause_blocks_between_batches_until_resumed(two_class: Path) -> None:
    t = Trainer(_cfg(two_class, epochs=1), None, report_interval=0)
    it = t.run()
    while not isinstance(next(it), StepReport):
        pass
    t.request_pause()
    status = next(it)
    assert getattr(status, "message", "") == "paused"
    timer = threading.Timer(0.2, t.request_resume)
    timer.start()
    rest = list(it)  # blocks until the timer resumes it
    assert isinstance(rest[-1], Finished) and rest[-1].status == "completed"


@dataclass
class _NanParams(Params):
    after: int = param(3, help="forward passes before the output turns NaN", min=0, max=10_000)


class _NanNet(ExplorerModel):
    def __init__(self, num_outputs: int, after: int) -> None:
        super().__init__()
        self.fc = torch.nn.LazyLinear(num_outputs)
        self.after = after
        self.calls = 0

    def forward_intermediates(self, x):
        self.calls += 1
        out = self.fc(x.flatten(1))
        if self.training and self.calls > self.after:
            out = out * float("nan")
        return out, {}

    def forward(self, x):
        return self.forward_intermediates(x)[0]


@register_model("test_nan", params=_NanParams, description="test only: diverges after N steps")
def _build_nan(p: _NanParams, *, in_channels: int, num_outputs: int, image_size: tuple[int, int | None]) -> _NanNet:
    net = _NanNet(num_outputs, p.after)
    net(torch.zeros(1, in_channels, image_size[0], image_size[1] or 8))
    return net


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_weights(two_class: Path, tmp_path: Path) -> None:
    cfg = _cfg(two_class, epochs=5)
    cfg.arch, cfg.params = "test_nan", {"after": 12}  # 5 steps an epoch: epoch 3 diverges
    events, fin = _finish(Trainer(cfg, tmp_path / "run"))
    assert fin.status == "failed"
    assert "nan" in fin.message.lower() and "epoch 3" in fin.message and "--lr" in fin.message
    assert sum(isinstance(e, EpochReport) for e in events) == 2
    w = read_safetensors(tmp_path / "run" / "weights.safetensors")
    assert all(torch.isfinite(v).all() for v in w.values())
    assert read_json(tmp_path / "run" / "metrics.json")["status"] == "failed"


def test_stop_while_reading_data_ends_the_run_promptly(tmp_path: Path) -> None:
    data = write_two_class_folder(tmp_path / "data", n=60, size=16)
    t = Trainer(_cfg(data), tmp_path / "run")
    calls = []
    original = t._on_data_progress

    def progress(done: int, total: int) -> None:
        calls.append(done)
        if done == 5:
            t.request_stop()
        original(done, total)

    t._on_data_progress = progress  # type: ignore[method-assign]
    events = list(t.run())
    assert isinstance(events[-1], Finished) and events[-1].status == "stopped"
    assert "while reading data" in events[-1].message
    assert max(calls) < 120  # it did not decode everything first
    assert not any(isinstance(e, StepReport) for e in events)


# -- run control: pause, stop, progress, probes ------------------------------------------------------


def _consume(trainer: Trainer) -> tuple[threading.Thread, list]:
    """Runs the trainer's generator on a thread, as the UI's worker does."""
    events: list = []
    thread = threading.Thread(target=lambda: events.extend(trainer.run()), daemon=True)
    thread.start()
    return thread, events


def _wait(cond, timeout: float = 30.0) -> None:  # noqa: ANN001
    end = time.perf_counter() + timeout
    while not cond():
        assert time.perf_counter() < end, "timed out"
        time.sleep(0.01)


def test_run_control_states_and_listeners() -> None:
    c = RunControl()
    seen: list[str] = []
    c.add_listener(seen.append)
    assert c.state == IDLE
    c.set_phase(PREPARING)
    c.pause()
    assert c.state == PAUSED and c.pause_requested
    c.set_phase(TRAINING)  # still paused: the request outlives the phase change
    c.resume()
    assert c.state == TRAINING
    c.pause()
    c.request_stop()  # a stop also releases a pause
    assert c.state == STOPPING and not c.pause_requested and c.hold() == 0.0
    c.pause()  # ignored once stopping
    assert c.state == STOPPING
    c.set_phase(FINISHED)
    assert c.state == FINISHED
    assert seen == [PREPARING, PAUSED, TRAINING, PAUSED, STOPPING, FINISHED]


def test_pause_holds_the_step_counter_still_without_spinning(two_class: Path) -> None:
    t = Trainer(_cfg(two_class, epochs=500, batch_size=2), None, report_interval=0)
    thread, events = _consume(t)
    _wait(lambda: t.control.progress.global_step >= 3)
    assert t.control.state == TRAINING
    t.control.pause()
    assert t.control.state == PAUSED
    _wait(lambda: t.control.holding, 5)
    time.sleep(0.3)  # let thread pools settle
    step, cpu = t.control.progress.global_step, time.process_time()
    time.sleep(0.5)
    assert t.control.progress.global_step == step  # really held
    assert time.process_time() - cpu < 0.15  # blocked on an event, not spinning
    assert any(getattr(e, "message", "") == "paused" for e in events)
    t.control.resume()
    _wait(lambda: t.control.progress.global_step > step, 10)
    assert t.control.state == TRAINING and not t.control.holding
    t.request_stop()
    thread.join(10)
    assert events[-1].status == "stopped" and t.control.state == FINISHED


def test_stop_while_paused_ends_the_run(two_class: Path) -> None:
    t = Trainer(_cfg(two_class, epochs=500, batch_size=2), None, report_interval=0)
    thread, events = _consume(t)
    _wait(lambda: t.control.progress.global_step >= 2)
    t.control.pause()
    _wait(lambda: t.control.holding, 5)
    t0 = time.perf_counter()
    t.control.request_stop()
    thread.join(5)
    assert not thread.is_alive() and time.perf_counter() - t0 < 1.0
    assert isinstance(events[-1], Finished) and events[-1].status == "stopped"
    assert not any(getattr(e, "message", "") == "resumed" for e in events)
    assert t.control.state == FINISHED


@dataclass
class _SlowEvalParams(Params):
    delay: float = param(0.4, help="seconds each validation forward pass takes", min=0.0, max=10.0)


_ON_EVAL: list = []  # callables run once by the next validation forward pass


class _SlowEvalNet(ExplorerModel):
    def __init__(self, num_outputs: int, delay: float) -> None:
        super().__init__()
        self.fc = torch.nn.LazyLinear(num_outputs)
        self.delay = delay

    def forward_intermediates(self, x):
        if not self.training:
            while _ON_EVAL:
                _ON_EVAL.pop()()
            time.sleep(self.delay)
        return self.fc(x.flatten(1)), {}

    def forward(self, x):
        return self.forward_intermediates(x)[0]


@register_model("test_slow_eval", params=_SlowEvalParams, description="test only: slow validation")
def _build_slow(
    p: _SlowEvalParams, *, in_channels: int, num_outputs: int, image_size: tuple[int, int | None]
) -> _SlowEvalNet:
    net = _SlowEvalNet(num_outputs, p.delay)
    net(torch.zeros(1, in_channels, image_size[0], image_size[1] or 8))
    return net


def test_stop_during_validation_is_prompt_and_the_run_resumes_exactly(tmp_path: Path) -> None:
    data = write_two_class_folder(tmp_path / "data", n=300, size=8)  # 300 validation images: 2 batches

    def cfg() -> RunConfig:
        c = _cfg(data, epochs=3, batch_size=64, restore_best=False)
        c.arch, c.params = "test_slow_eval", {"delay": 0.4}
        c.data.val_fraction = 0.5
        return c

    _finish(Trainer(cfg(), tmp_path / "full"))

    t = Trainer(cfg(), tmp_path / "cut")
    asked: list[float] = []

    def stop() -> None:
        asked.append(time.perf_counter())
        assert t.control.progress.validating
        t.request_stop()

    for ev in t.run():
        if isinstance(ev, EpochReport) and ev.epoch == 1:
            _ON_EVAL.append(stop)  # the first validation batch of epoch 2 asks to stop
        if isinstance(ev, Finished):
            elapsed = time.perf_counter() - asked[0]
            assert ev.status == "stopped" and "epoch 2" in ev.message and "validation" in ev.message
    assert elapsed < 1.0, f"a stop during validation took {elapsed:.2f} s"  # one batch, not the whole pass
    assert runfolder.load_checkpoint(tmp_path / "cut")[3]["state"]["epoch"] == 1
    assert len(read_json(tmp_path / "cut" / "history.json")) == 1  # the cut epoch is not recorded
    assert "val_accuracy" in read_json(tmp_path / "cut" / "metrics.json")  # epoch 1's figures, no new pass

    _finish(Trainer(cfg(), tmp_path / "cut", resume=True))
    full = read_safetensors(tmp_path / "full" / "weights.safetensors")
    resumed = read_safetensors(tmp_path / "cut" / "weights.safetensors")
    assert full.keys() == resumed.keys()
    for k in full:
        assert torch.equal(full[k], resumed[k]), k
    assert len(read_json(tmp_path / "cut" / "history.json")) == 3


def test_probes_follow_the_chosen_images(two_class: Path, tmp_path: Path) -> None:
    outside = write_two_class_folder(tmp_path / "other", n=1, size=24) / "top" / "top_000.png"
    train_image = str(two_class / "bottom" / "bottom_005.png")
    t = Trainer(_cfg(two_class, epochs=40, probe_interval=0.05), None, report_interval=0)
    probes: list[ProbeReport] = []
    statuses: list[str] = []
    for ev in t.run():
        if isinstance(ev, ProbeReport):
            probes.append(ev)
            if len(probes) == 1:  # from the consuming thread, mid-run
                t.set_probe_paths([train_image, str(outside), str(tmp_path / "missing.png")])
            elif len(probes) >= 6:
                t.request_stop()
        elif isinstance(ev, Status):
            statuses.append(ev.message)
    default = probes[0]
    assert default.path == t.data.val.paths[0]  # the first validation image
    chosen = probes[1:]
    assert {p.path for p in chosen} == {train_image, str(outside)}
    assert chosen[0].global_step == default.global_step + 1  # a new choice is probed at once
    by_path = {p.path: p for p in chosen}
    assert by_path[str(outside)].image.shape == default.image.shape == (16, 16, 1)  # the model's input
    assert any("missing.png" in s for s in statuses)


class _Counting(Hook):
    def __init__(self) -> None:
        self.steps = 0

    def on_step(self, s, epoch):  # noqa: ANN001, ANN201
        self.steps += 1
        return iter(())

    def on_epoch_end(self, s, report):  # noqa: ANN001, ANN201
        return StopDecision("early_stopped", "enough") if report.epoch == 2 else None


def test_hooks_are_called_at_each_step_and_epoch_end_and_can_end_the_run(two_class: Path) -> None:
    counting = _Counting()

    class _Hooked(Trainer):
        def hooks(self) -> list[Hook]:
            return [*super().hooks(), counting]

    events, fin = _finish(_Hooked(_cfg(two_class, epochs=5), None))
    epochs = [e for e in events if isinstance(e, EpochReport)]
    assert fin.status == "early_stopped" and fin.message == "enough" and len(epochs) == 2
    assert counting.steps == 2 * next(e for e in events if isinstance(e, StepReport)).steps


# -- a full disk, out of memory ----------------------------------------------------------------


def _enospc_at(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    """The n-th file written by an epoch save fails halfway with ENOSPC."""
    import errno

    real, calls = runfolder._write_staged, [0]

    def write(tmp, writer):  # noqa: ANN001
        calls[0] += 1
        if calls[0] == n:
            tmp.write_bytes(b"half")
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp))
        real(tmp, writer)

    monkeypatch.setattr(runfolder, "_write_staged", write)


@pytest.mark.parametrize("n", [4, 5, 6])  # epoch 2's weights, checkpoint, history
def test_a_full_disk_stops_the_run_and_keeps_one_complete_epoch(
    n: int, two_class: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _enospc_at(monkeypatch, n)
    run = tmp_path / "run"
    _, fin = _finish(Trainer(_cfg(two_class, epochs=3), run))
    assert fin.status == "failed" and "No space left on device" in fin.message and "keeps epoch 1" in fin.message
    assert fin.metrics["epochs"] == 1
    assert runfolder.load_checkpoint(run)[3]["state"]["epoch"] == 1
    assert runfolder.weights_saved_epoch(run / "weights.safetensors") == 1
    assert [h["epoch"] for h in read_json(run / "history.json")] == [1]
    assert not (run / "metrics.json").exists()  # nothing written after the failed save
    assert sorted(p.name for p in run.iterdir()) == [
        "checkpoint.safetensors",
        "config.json",
        "events.jsonl",
        "history.json",
        "problems.txt",
        "weights.safetensors",
    ]
    monkeypatch.undo()
    _, fin = _finish(Trainer(_cfg(two_class, epochs=3), run, resume=True))  # space again: it resumes
    assert fin.status == "completed" and [h["epoch"] for h in read_json(run / "history.json")] == [1, 2, 3]


def test_a_full_disk_at_the_first_save_publishes_nothing(
    two_class: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _enospc_at(monkeypatch, 2)
    _, fin = _finish(Trainer(_cfg(two_class, epochs=2), tmp_path / "run"))
    assert fin.status == "failed" and "Nothing was written" in fin.message and fin.run_dir is None
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("error", ["cpu", "cuda"])
def test_out_of_memory_stops_the_run_and_keeps_the_last_good_checkpoint(
    error: str, two_class: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from explorer.engine import trainer as trainer_module

    real, calls = trainer_module.train_step, [0]
    oom = MemoryError() if error == "cpu" else torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")

    def step(s, idx):  # noqa: ANN001
        calls[0] += 1
        if s.state.epoch == 1 and calls[0] > 7:
            raise oom
        return real(s, idx)

    monkeypatch.setattr(trainer_module, "train_step", step)
    run = tmp_path / "run"
    _, fin = _finish(Trainer(_cfg(two_class, epochs=3), run))
    assert fin.status == "failed" and "out of memory" in fin.message and "--batch-size" in fin.message
    assert "keeps epoch 1" in fin.message
    assert runfolder.load_checkpoint(run)[3]["state"]["epoch"] == 1
    assert read_json(run / "metrics.json")["epochs"] == 1


# -- stop within a second, on the heavy families ---------------------------------------------------


def _stop_latency(cfg: RunConfig, out: Path, when: str) -> tuple[float, Finished]:
    """Seconds from a stop request (during a training step, or during validation) to Finished."""
    t = Trainer(cfg, out)
    asked: list[float] = []

    def watch() -> None:
        while t.control.state != FINISHED:
            p = t.control.progress
            if (when == "training" and p.step >= 1 and not p.validating) or (when == "validation" and p.validating):
                time.sleep(0.1)  # well inside a batch
                asked.append(time.perf_counter())
                t.request_stop()
                return
            time.sleep(0.005)

    threading.Thread(target=watch, daemon=True).start()
    events = list(t.run())
    assert asked, "the run ended before the stop"
    return time.perf_counter() - asked[0], events[-1]


def _caption_folder(root: Path) -> Path:
    write_two_class_folder(root, n=60, size=64, rgb=True)
    rows = ["path,caption"]
    for cls in ("top", "bottom"):
        rows += [f"{cls}/{p.name},a bright {cls} half" for p in sorted((root / cls).iterdir())]
    (root / "captions.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.mark.parametrize("family", [pytest.param("backbone", marks=pytest.mark.slow), "captioner", "crnn"])
def test_stop_ends_a_heavy_run_within_a_second_also_mid_validation(family: str, tmp_path: Path) -> None:
    if family == "backbone":  # resnet18 on 64x64: one validation batch alone takes seconds on a CPU
        data, params = write_two_class_folder(tmp_path / "data", n=100, size=64, rgb=True), {"arch": "resnet18"}
    elif family == "crnn":  # 300 validation images: an LSTM over one validation batch is one call a stop cannot cut
        data, params = write_two_class_folder(tmp_path / "data", n=300, size=48), {}
    else:
        data, params = _caption_folder(tmp_path / "data"), {}
    for when in ("training", "validation"):
        # a stop during training must land mid-epoch: small batches leave several steps after the first,
        # so a fast machine cannot finish the epoch inside the watcher's 0.1 s wait (CI did, at 2 steps)
        cfg = _cfg(data, epochs=2, batch_size=32 if when == "validation" else 8)
        cfg.arch, cfg.params, cfg.data.val_fraction = family, params, 0.5
        seconds, fin = _stop_latency(cfg, tmp_path / f"run-{when}", when)
        assert fin.status == "stopped" and (when == "validation") == ("validation" in fin.message)
        assert seconds < 2.0, f"{family}: a stop during {when} took {seconds:.2f} s"  # ~0.1-0.3 s measured
