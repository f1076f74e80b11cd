"""Runs are owned: one writer at a time, never mixed, never overwritten by accident.

Trainings that must be killed run in a subprocess driven by a small script that pauses them
at a chosen moment (during the first epoch, halfway through writing a save, between the two
renames that replace an old run) and touches a marker file; the test then sends SIGKILL and
checks the folder: absent, the old run unchanged, or a consistent new run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from explorer.cli import main
from explorer.engine import Finished, RunConfig, Status, Trainer
from explorer.engine.ownership import RunLock, lock_path
from tests.datasets import write_two_class_folder

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and fcntl locks")

DRIVER = r"""
import os, sys, time
from pathlib import Path
mode, marker, *argv = sys.argv[1:]

def pause():
    Path(marker).write_text(str(os.getpid()))
    time.sleep(120)

from explorer.engine import ownership, runfolder, trainer
if mode == "step":
    real_step = trainer.train_step
    def step(*a, **k):
        pause()
        return real_step(*a, **k)
    trainer.train_step = step
elif mode.startswith("save"):  # save<N>: halfway through the N-th staged file write
    n, calls = int(mode[4:]), [0]
    real_write = runfolder._write_staged
    def write(tmp, w):
        calls[0] += 1
        if calls[0] == n:
            tmp.write_bytes(b"half a file")
            pause()
        real_write(tmp, w)
    runfolder._write_staged = write
elif mode == "publish":  # between moving the old run aside and moving the new one in
    real_replace, seen = os.replace, [False]
    real_publish = ownership.Destination.publish
    def publish(self):
        seen[0] = True
        real_publish(self)
    def replace(a, b):
        real_replace(a, b)
        if seen[0] and str(b).endswith("run"):
            pause()
    ownership.Destination.publish = publish
    ownership.os.replace = replace
from explorer.cli import main
sys.exit(main(argv))
"""


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_two_class_folder(tmp_path_factory.mktemp("own") / "two", n=12, size=16)


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three classes: a run on it cannot be mistaken for one on ``two``."""
    base = tmp_path_factory.mktemp("own3")
    root = write_two_class_folder(base / "three", n=12, size=16, seed=1)
    (root / "top").rename(root / "upper")
    extra = write_two_class_folder(base / "extra", n=12, size=16, seed=2)
    (extra / "top").rename(root / "middle")
    return root


def _train_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", str(data), "--set", "channels=8", "--batch-size", "8", "--out", str(out), "--quiet", *extra]


def _spawn(mode: str, marker: Path, argv: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, mode, str(marker), *argv],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait_marker(proc: subprocess.Popen, marker: Path, timeout: float = 90.0) -> None:
    end = time.monotonic() + timeout
    while not marker.exists():
        if proc.poll() is not None:
            err = proc.stderr.read().decode()  # type: ignore[union-attr]
            proc.stderr.close()  # type: ignore[union-attr]
            raise AssertionError(f"the driver ended early: {err}")
        assert time.monotonic() < end, "the driver never reached its pause"
        time.sleep(0.05)


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    if proc.stderr is not None:
        proc.stderr.close()


def _snapshot(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run.iterdir()) if p.is_file()}


def _consistent(run: Path, labels: set[str], image: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The run's labels are ``labels`` and its weights answer with one of them."""
    cfg = json.loads((run / "config.json").read_text())
    assert set(cfg["labels"]) == labels
    capsys.readouterr()
    assert main(["predict", str(run), str(image), "--json"]) == 0
    (pred,) = json.loads(capsys.readouterr().out)
    assert pred["label"] in labels and set(pred["probabilities"]) == labels


@pytest.fixture(scope="module")
def old_run(three: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished three-class run, copied by tests that replace it."""
    out = tmp_path_factory.mktemp("old") / "run"
    assert main(_train_args(three, out, "--epochs", "1")) == 0
    return out


def _copy_run(src: Path, dest: Path) -> Path:
    dest.mkdir(parents=True)
    for f in src.iterdir():
        (dest / f.name).write_bytes(f.read_bytes())
    return dest


# -- refusals --------------------------------------------------------------------------------


def test_an_existing_run_is_refused_naming_resume_and_overwrite(
    old_run: Path, two: Path, tmp_path: Path, capsys
) -> None:
    run = _copy_run(old_run, tmp_path / "run")
    before = _snapshot(run)
    capsys.readouterr()
    assert main(_train_args(two, run, "--epochs", "1")) == 2
    err = capsys.readouterr().err
    assert "--resume" in err and "--overwrite" in err and str(run) in err
    assert _snapshot(run) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no lock, no staging left


def test_a_folder_that_is_not_a_run_is_never_written(two: Path, tmp_path: Path, capsys) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    for extra in ([], ["--overwrite"]):
        assert main(_train_args(two, mine, "--epochs", "1", *extra)) == 2
        assert "not empty and not a Model Explorer run folder" in capsys.readouterr().err
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_a_file_as_out_is_a_message(two: Path, tmp_path: Path, capsys) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    assert main(_train_args(two, f, "--epochs", "1")) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert f.read_text() == "x"


def test_an_empty_folder_takes_a_new_run(two: Path, tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    assert main(_train_args(two, tmp_path / "run", "--epochs", "1")) == 0
    assert (tmp_path / "run" / "weights.safetensors").is_file()


def test_overwrite_replaces_a_run_completely(old_run: Path, two: Path, tmp_path: Path, capsys) -> None:
    run = _copy_run(old_run, tmp_path / "run")
    assert main(_train_args(two, run, "--epochs", "1", "--overwrite")) == 0
    _consistent(run, {"top", "bottom"}, two / "top" / "top_000.png", capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


# -- one writer ------------------------------------------------------------------------------


def test_a_second_writer_fails_at_once_naming_the_holder(two: Path, tmp_path: Path, capsys) -> None:
    run, marker = tmp_path / "run", tmp_path / "marker"
    proc = _spawn("step", marker, _train_args(two, run, "--epochs", "1"))
    try:
        _wait_marker(proc, marker)
        t0 = time.perf_counter()
        for extra in ([], ["--overwrite"]):
            assert main(_train_args(two, run, "--epochs", "1", *extra)) == 2
            err = capsys.readouterr().err
            assert f"process {proc.pid} on" in err and "being written" in err, err
        assert main(["train", "--resume", str(run), "--quiet"]) == 2
        assert f"process {proc.pid}" in capsys.readouterr().err
        assert time.perf_counter() - t0 < 5.0
    finally:
        _kill(proc)
    assert not run.exists()  # killed in its first epoch: nothing was published


def test_a_stale_lock_of_a_dead_process_is_taken_over(two: Path, tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run = tmp_path / "run"
    lock_path(run).write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename, "started": 0}))
    cfg = RunConfig(arch="cnn", params={"channels": "8"})
    cfg.data.source, cfg.train.epochs, cfg.train.batch_size = str(two), 1, 8
    events = list(Trainer(cfg, run).run())
    assert isinstance(events[-1], Finished) and events[-1].status == "completed"
    notes = [e.message for e in events if isinstance(e, Status)]
    assert any(f"process {dead.pid}" in n and "no longer running" in n for n in notes), notes
    assert not lock_path(run).exists()


def test_the_lock_is_held_in_process_too(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with RunLock(run):
        info = json.loads(lock_path(run).read_text())
        assert info["pid"] == os.getpid()
        from explorer.engine import RunFolderError

        with pytest.raises(RunFolderError, match=f"process {os.getpid()}"):
            RunLock(run).acquire()
    assert not lock_path(run).exists()
    RunLock(run).acquire().release()


# -- kill -9 at any moment ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["step", pytest.param("save2", marks=pytest.mark.slow)])
def test_a_killed_new_run_leaves_nothing(mode: str, two: Path, tmp_path: Path) -> None:
    run, marker = tmp_path / "run", tmp_path / "marker"
    proc = _spawn(mode, marker, _train_args(two, run, "--epochs", "2"))
    _wait_marker(proc, marker)
    _kill(proc)
    assert not run.exists()


@pytest.mark.parametrize(
    "mode", [pytest.param(m, marks=pytest.mark.slow) for m in ("step", "save1", "save3")] + ["save2"]
)
def test_a_killed_overwrite_leaves_the_old_run_unchanged(
    mode: str, old_run: Path, two: Path, three: Path, tmp_path: Path, capsys
) -> None:
    run, marker = _copy_run(old_run, tmp_path / "run"), tmp_path / "marker"
    before = _snapshot(run)
    proc = _spawn(mode, marker, _train_args(two, run, "--epochs", "1", "--overwrite"))
    _wait_marker(proc, marker)
    _kill(proc)
    assert _snapshot(run) == before
    _consistent(run, {"upper", "middle", "bottom"}, three / "upper" / "top_000.png", capsys)
    # the next writer cleans up what the killed one left beside the run
    assert main(_train_args(two, run, "--epochs", "1", "--overwrite")) == 0
    _consistent(run, {"top", "bottom"}, two / "top" / "top_000.png", capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["marker", "run"]


def test_a_kill_between_the_renames_of_an_overwrite_never_mixes(
    old_run: Path, two: Path, three: Path, tmp_path: Path, capsys
) -> None:
    run, marker = _copy_run(old_run, tmp_path / "run"), tmp_path / "marker"
    before = _snapshot(run)
    proc = _spawn("publish", marker, _train_args(two, run, "--epochs", "1", "--overwrite"))
    _wait_marker(proc, marker)
    _kill(proc)
    assert not run.exists()  # neither run is visible, and nothing mixed
    # the next writer (here: resuming the old run) moves the old run back first
    assert main(["train", "--resume", str(run), "--epochs", "1", "--quiet"]) == 0
    assert {k: v for k, v in _snapshot(run).items() if k == "config.json"} == {"config.json": before["config.json"]}
    _consistent(run, {"upper", "middle", "bottom"}, three / "upper" / "top_000.png", capsys)


def test_a_run_killed_in_a_later_save_is_its_last_complete_epoch(two: Path, tmp_path: Path, capsys) -> None:
    run, marker = tmp_path / "run", tmp_path / "marker"
    proc = _spawn("save5", marker, _train_args(two, run, "--epochs", "3"))  # halfway through epoch 2's checkpoint
    _wait_marker(proc, marker)
    _kill(proc)
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1]
    from explorer.engine import runfolder

    assert runfolder.load_checkpoint(run)[3]["state"]["epoch"] == 1
    assert runfolder.weights_saved_epoch(run / "weights.safetensors") == 1
    _consistent(run, {"top", "bottom"}, two / "top" / "top_000.png", capsys)
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    assert [h["epoch"] for h in json.loads((run / "history.json").read_text())] == [1, 2, 3]
