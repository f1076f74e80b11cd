"""The run's event log: what the trainer yields is appended to RUN_DIR/events.jsonl and a reader in
another process (here: another object) gets the same events back, incrementally, tolerating a
torn last line, a folder that appears later, a staging folder published meanwhile and a rewrite."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np

from explorer.engine import (
    DataReady,
    EpochReport,
    Finished,
    ModelReady,
    ProbeReport,
    RunConfig,
    Status,
    StepReport,
    Trainer,
    runfolder,
)
from explorer.engine.eventlog import (
    LIVE_PROBES_KEPT,
    EventLog,
    EventLogReader,
    LogStarted,
    follow,
)
from tests.datasets import write_two_class_folder


def _probe(step: int, path: str = "a.png") -> ProbeReport:
    rng = np.random.default_rng(step)
    return ProbeReport(
        epoch=1,
        global_step=step,
        path=path,
        image=rng.integers(0, 255, (8, 8, 1), dtype=np.uint8),
        probabilities=rng.random(3, dtype=np.float32),
        intermediates={"features.0": rng.random((4, 8, 8), dtype=np.float32)},
        text=None,
        info={"features.0": {"kind": "feature_map"}},
        output_info={"kind": "logits"},
    )


def _events() -> list:
    return [
        Status("reading data"),
        DataReady("classify", ["a", "b"], 10, 2, (1, 8, None), ["x.png: broken"], 0.5),
        ModelReady("cnn", {"channels": "8"}, 123, "cpu", 0),
        StepReport(1, 2, 1, 5, 1, 0.9, 0.5, 0.01, 100.0, 0.1, 1.0),
        _probe(1),
        EpochReport(1, 2, 0.8, 0.6, 0.7, float("nan"), 0.01, 1.0, 90.0, True, {"cer": 0.25}),
        Finished("completed", "done", {"val_accuracy": 0.5, "epochs": 2}, "/x/run"),
    ]


def _read_all(run: Path, **kw: bool) -> list:
    with EventLogReader(run, **kw) as reader:
        return reader.poll()


def _same(a: object, b: object) -> bool:
    if isinstance(a, ProbeReport):
        assert isinstance(b, ProbeReport)
        np.testing.assert_array_equal(a.image, b.image)
        np.testing.assert_array_equal(a.probabilities, b.probabilities)
        assert list(a.intermediates) == list(b.intermediates)
        for k in a.intermediates:
            np.testing.assert_array_equal(a.intermediates[k], b.intermediates[k])
        return (a.epoch, a.global_step, a.path, a.info, a.output_info) == (
            b.epoch,
            b.global_step,
            b.path,
            b.info,
            b.output_info,
        )
    if isinstance(a, EpochReport):  # NaN != NaN: compare the JSON forms
        return json.dumps(a.to_dict()) == json.dumps(b.to_dict())  # type: ignore[union-attr]
    return a == b


def test_every_event_type_round_trips(tmp_path: Path) -> None:
    log = EventLog(tmp_path, resumed=False)
    for ev in _events():
        log.append(ev, tmp_path)
    log.close()
    got = _read_all(tmp_path)
    assert isinstance(got[0], LogStarted) and got[0].pid == os.getpid() and not got[0].resumed
    assert len(got[1:]) == len(_events())
    for a, b in zip(_events(), got[1:], strict=True):
        assert type(a) is type(b) and _same(a, b), (a, b)
    assert isinstance(got[2], DataReady) and got[2].input_shape == (1, 8, None)
    lines = (tmp_path / runfolder.EVENTS).read_text().splitlines()
    assert len(lines) == 1 + len(_events())
    assert json.loads(lines[5])["file"].startswith("probes/live_")  # the arrays are in an npz the line names


def test_a_torn_last_line_is_read_once_complete_and_a_damaged_line_is_ignored(tmp_path: Path) -> None:
    log = EventLog(tmp_path, resumed=False)
    log.append(Status("one"), tmp_path)
    log.close()
    path = tmp_path / runfolder.EVENTS
    reader = EventLogReader(tmp_path)
    assert [type(e) for e in reader.poll()] == [LogStarted, Status]
    line = json.dumps({"type": "Status", "time": 0, "message": "two"}) + "\n"
    with open(path, "ab") as f:
        f.write(line[:10].encode())
    assert reader.poll() == []  # half a line: nothing yet
    with open(path, "ab") as f:
        f.write(line[10:].encode() + b'{"type": "Status", "mess\n' + b'{"type": "Nope"}\n')
        f.write((json.dumps({"type": "Status", "time": 0, "message": "three"}) + "\n").encode())
    assert reader.poll() == [Status("two"), Status("three")]
    assert reader.poll() == []
    reader.close()


def test_a_resumed_writer_ends_a_torn_line_and_starts_a_new_session(tmp_path: Path) -> None:
    log = EventLog(tmp_path, resumed=False)
    log.append(Status("one"), tmp_path)
    log.close()
    with open(tmp_path / runfolder.EVENTS, "ab") as f:
        f.write(b'{"type": "Status", "mes')  # killed mid-line
    log = EventLog(tmp_path, resumed=True)
    log.append(Status("again"), tmp_path)
    log.close()
    got = _read_all(tmp_path)
    assert [type(e) for e in got] == [LogStarted, Status, LogStarted, Status]
    assert got[2].resumed and got[3] == Status("again")


def test_follow_is_incremental_and_waits_for_the_folder(tmp_path: Path) -> None:
    run = tmp_path / "later" / "run"
    reader = EventLogReader(run)
    assert reader.poll() == []  # nothing there yet
    run.mkdir(parents=True)
    log = EventLog(run, resumed=False)
    assert [type(e) for e in reader.poll()] == [LogStarted]
    for i in range(3):
        log.append(Status(f"s{i}"), run)
        assert reader.poll() == [Status(f"s{i}")]
    assert reader.poll() == []
    log.close()
    reader.close()


def test_live_probe_files_are_bounded_and_a_late_reader_skips_deleted_ones(tmp_path: Path) -> None:
    log = EventLog(tmp_path, resumed=False)
    n = LIVE_PROBES_KEPT + 5
    for step in range(1, n + 1):
        log.append(_probe(step), tmp_path)
    log.close()
    files = sorted((tmp_path / runfolder.PROBES).glob("live_*.npz"))
    assert len(files) == LIVE_PROBES_KEPT
    got = [e for e in _read_all(tmp_path) if isinstance(e, ProbeReport)]
    assert [p.global_step for p in got] == list(range(n - LIVE_PROBES_KEPT + 1, n + 1))
    assert _same(got[-1], _probe(n))
    newest = [e for e in _read_all(tmp_path, newest_probes_only=True) if isinstance(e, ProbeReport)]
    assert [p.global_step for p in newest] == [n]


def _stage(dest: Path, name: str) -> Path:
    d = dest.parent / f".{dest.name}.new-{name}"
    d.mkdir(parents=True)
    return d


def test_the_reader_follows_a_staging_log_through_publish_and_a_later_overwrite(tmp_path: Path) -> None:
    dest = tmp_path / "run"
    staging = _stage(dest, "aaaa")
    log = EventLog(staging, resumed=False)
    log.append(Status("first"), staging)
    reader = EventLogReader(dest)
    assert [type(e) for e in reader.poll()] == [LogStarted, Status]
    os.replace(staging, dest)  # the first epoch save publishes the run
    log.append(_probe(3), dest)
    log.append(Finished("completed", "", {"val_accuracy": 1.0}, str(dest)), dest)
    log.close()
    got = reader.poll()
    assert [type(e) for e in got] == [ProbeReport, Finished] and got[0].global_step == 3
    assert reader.finished is not None
    # a new run with --overwrite: a newer log appears in a new staging folder
    staging2 = _stage(dest, "bbbb")
    log2 = EventLog(staging2, resumed=False)
    log2.append(Status("second run"), staging2)
    assert reader.poll() == []  # (the switch happens once the old log is read to its end)
    got = reader.poll()
    assert [type(e) for e in got] == [LogStarted, Status] and got[1] == Status("second run")
    assert reader.finished is None
    log2.close()
    # the same file rewritten shorter is read again from its start
    path = staging2 / runfolder.EVENTS
    path.write_text(json.dumps({"type": "Status", "time": 0, "message": "x"}) + "\n")
    reader.poll()
    assert reader.poll() == [Status("x")]
    reader.close()


def test_follow_ends_when_the_run_finished_and_its_writer_is_gone(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    log = EventLog(tmp_path / "run", resumed=False)
    log.append(Finished("stopped", "", {}, None), tmp_path / "run")
    log.close()
    got = list(follow(tmp_path / "run", interval=0.01, timeout=5))
    assert [type(e) for e in got] == [LogStarted, Finished]


def _config(data: Path, epochs: int = 2) -> RunConfig:
    cfg = RunConfig(arch="cnn", params={"channels": "8"})
    cfg.data.source = str(data)
    cfg.train.epochs = epochs
    cfg.train.batch_size = 8
    cfg.train.probe_interval = 0.001  # a probe at every chance
    return cfg


def _key(ev: object) -> tuple:
    if isinstance(ev, EpochReport):
        return ("EpochReport", ev.epoch, json.dumps(ev.to_dict()))
    if isinstance(ev, StepReport):
        return ("StepReport", ev.epoch, ev.step, ev.global_step, ev.loss, ev.accuracy)
    if isinstance(ev, Finished):
        return ("Finished", ev.status, json.dumps(ev.metrics, sort_keys=True), ev.run_dir)
    if isinstance(ev, ProbeReport):
        return ("ProbeReport", ev.epoch, ev.global_step, ev.path)
    if isinstance(ev, DataReady):
        return ("DataReady", ev.task, tuple(ev.labels), ev.train_samples, ev.val_samples, ev.input_shape)
    if isinstance(ev, ModelReady):
        return ("ModelReady", ev.arch, ev.num_parameters, ev.device, ev.start_epoch)
    return (type(ev).__name__, getattr(ev, "message", None))


def test_a_trainers_log_replays_the_events_it_yielded(tmp_path: Path) -> None:
    data = write_two_class_folder(tmp_path / "data", n=16, size=16)
    run = tmp_path / "run"
    yielded = list(Trainer(_config(data), run, report_interval=0).run())
    assert isinstance(yielded[-1], Finished) and yielded[-1].status == "completed"
    logged = list(follow(run, interval=0.01, timeout=10))
    assert isinstance(logged[0], LogStarted)
    probes = [e for e in yielded if isinstance(e, ProbeReport)]
    assert probes  # (with more than LIVE_PROBES_KEPT, the older ones are skipped: their files are gone)
    kept = [e for e in logged if isinstance(e, ProbeReport)]
    assert [_key(p) for p in kept] == [_key(p) for p in probes[-len(kept) :]] and kept
    assert _same(probes[-1], kept[-1])
    assert [_key(e) for e in yielded if not isinstance(e, ProbeReport)] == [
        _key(e) for e in logged[1:] if not isinstance(e, ProbeReport)
    ]
    assert len(list((run / runfolder.PROBES).glob("live_*.npz"))) <= LIVE_PROBES_KEPT


def test_a_caption_probe_round_trips_with_its_beam_candidates(tmp_path: Path) -> None:
    """Candidates carry arrays (each word's attention): they go to the npz, the rest to the line."""
    alphas = np.random.default_rng(0).random((2, 3, 4), dtype=np.float32)
    cands = [{"words": ["a", "dog"], "score": -0.5, "logp": -1.0, "ended": True, "alphas": alphas}]
    ev = dataclasses.replace(_probe(3), candidates=cands)
    log = EventLog(tmp_path, resumed=False)
    log.append(ev, tmp_path)
    log.close()
    (got,) = _read_all(tmp_path)[1:]
    assert isinstance(got, ProbeReport) and _same(ev, got)
    (c,) = got.candidates
    assert {k: v for k, v in c.items() if k != "alphas"} == {k: v for k, v in cands[0].items() if k != "alphas"}
    np.testing.assert_array_equal(c["alphas"], alphas)
