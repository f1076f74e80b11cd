"""Training under torchrun (DistributedDataParallel): shards, the launcher, one writer, resume.

The multi-process tests start real processes (``torchrun --standalone``, gloo on the CPU, one
thread each) on a tiny generated folder; they cost mostly the start of three Python
processes that import torch, so they are few and marked slow.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from explorer.cli import main
from explorer.cli.train import without_nproc
from explorer.engine import ConfigError, RunConfig, Trainer
from explorer.engine.distributed import Distributed, from_env, shard_indices
from explorer.engine.ownership import lock_path
from explorer.engine.runfolder import HISTORY, METRICS, load_checkpoint
from tests.datasets import export_digits, write_two_class_folder

ROOT = Path(__file__).resolve().parents[2]
_TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def _env() -> dict[str, str]:
    """The environment of a launched training: this checkout first, one thread per process."""
    env = {k: v for k, v in os.environ.items() if k not in _TORCHRUN_VARS}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env["OMP_NUM_THREADS"] = "1"
    return env


def _train(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "explorer", "train", *args]
    return subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=timeout, cwd=ROOT)


# -- the shard of each rank ------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 5, 8, 9])
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_every_rank_gets_as_many_samples_and_together_they_cover_the_epoch(n: int, world: int) -> None:
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(n * 10 + world))
    shards = [shard_indices(perm, r, world) for r in range(world)]
    per_rank = -(-n // world)
    assert [len(s) for s in shards] == [per_rank] * world  # equal steps: no rank waits forever
    assert set(torch.cat(shards).tolist()) == set(range(n))
    assert len(torch.cat(shards)) - n == per_rank * world - n  # only the padding repeats
    if world == 1:
        assert torch.equal(shards[0], perm)  # a normal run is untouched


def test_env_without_torchrun_is_a_normal_run_and_bad_values_are_named() -> None:
    assert from_env({}) == Distributed(rank=0, world_size=1, local_rank=0)
    d = from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert (d.rank, d.world_size, d.local_rank, d.enabled, d.is_main) == (3, 4, 1, True, False)
    with pytest.raises(ConfigError, match="WORLD_SIZE.*'two'"):
        from_env({"RANK": "0", "WORLD_SIZE": "two", "LOCAL_RANK": "0"})
    with pytest.raises(ConfigError, match="rank 4 does not fit world size 4"):
        from_env({"RANK": "4", "WORLD_SIZE": "4", "LOCAL_RANK": "0"})


def test_the_ddp_wrapper_hands_unknown_attributes_to_the_model(tmp_path: Path) -> None:
    import torch.distributed as dist

    from explorer.engine.distributed import _ModelDDP

    model = torch.nn.Linear(3, 2)
    model.params = {"attention_reg": 0.5}  # what a task reads from its model
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        net = _ModelDDP(model)
        assert net.params == {"attention_reg": 0.5}
        assert net.module is model
        net(torch.ones(4, 3)).sum().backward()
        assert model.weight.grad is not None
        with pytest.raises(AttributeError):
            _ = net.no_such_attribute
    finally:
        dist.destroy_process_group()


# -- the launcher -----------------------------------------------------------------------------------
def test_nproc_per_node_launches_torchrun_with_the_rest_of_the_command(monkeypatch, tmp_path: Path) -> None:
    import explorer.cli.train as train_cli

    seen: list[list[str]] = []

    class FakeProcess:
        def __init__(self, cmd: list[str]) -> None:
            seen.append(cmd)

        def wait(self) -> int:
            return 7

    monkeypatch.setattr(train_cli.subprocess, "Popen", FakeProcess)
    for k in _TORCHRUN_VARS:
        monkeypatch.delenv(k, raising=False)
    out = str(tmp_path / "run")
    assert main(["train", "sample:shapes", "--nproc-per-node", "3", "--epochs", "2", "--out", out]) == 7
    assert seen == [
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=3"]
        + ["-m", "explorer", "train", "sample:shapes", "--epochs", "2", "--out", out]
    ]
    assert without_nproc(["d", "--nproc-per-node=2", "--lr", "0.1"]) == ["d", "--lr", "0.1"]


def test_nproc_per_node_inside_torchrun_is_refused(monkeypatch, capsys, tmp_path: Path) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["train", "sample:shapes", "--nproc-per-node", "2", "--out", str(tmp_path / "r")]) == 2
    assert "--nproc-per-node starts torchrun" in capsys.readouterr().err
    monkeypatch.delenv("WORLD_SIZE")
    assert main(["train", "sample:shapes", "--nproc-per-node", "0", "--out", str(tmp_path / "r")]) == 2
    assert "--nproc-per-node" in capsys.readouterr().err


def test_a_failed_rank_is_named(capsys) -> None:
    from explorer.cli.train import _other_rank_failed

    rank1 = Distributed(rank=1, world_size=2)
    with pytest.raises(RuntimeError, match="boom"):
        _other_rank_failed(rank1, RuntimeError("boom"), sys.stderr)
    assert "rank 1 of 2 failed" in capsys.readouterr().err
    # an error every rank meets (bad input) is rank 0's to report
    assert _other_rank_failed(rank1, ConfigError("train.lr", "bad"), sys.stderr) == 2
    assert capsys.readouterr().err == ""


# -- a normal run -----------------------------------------------------------------------------------
def test_a_normal_run_records_world_size_one(tmp_path: Path) -> None:
    data = write_two_class_folder(tmp_path / "data", n=12)
    cfg = RunConfig(arch="cnn", params={"channels": "8"})
    cfg.data.source = str(data)
    cfg.train.epochs, cfg.train.batch_size, cfg.train.device = 1, 8, "cpu"
    cfg.train.probe_interval = 0
    events = list(Trainer(cfg, tmp_path / "run", dist=Distributed()).run())
    assert events[-1].metrics["world_size"] == 1
    assert json.loads((tmp_path / "run" / METRICS).read_text())["world_size"] == 1
    assert load_checkpoint(tmp_path / "run")[3]["world_size"] == 1


# -- real processes -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, subprocess.CompletedProcess[str]]:
    """A 2-process gloo training, 3 epochs, started with ``train --nproc-per-node 2``."""
    root = tmp_path_factory.mktemp("ddp")
    data = write_two_class_folder(root / "data", n=40)
    run = root / "runs" / "run"
    done = _train(
        str(data), "--epochs", "3", "--batch-size", "8", "--device", "cpu",
        "--out", str(run), "--nproc-per-node", "2",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return data, run, done


@pytest.mark.slow
def test_two_processes_train_one_valid_run_written_once(ddp_run, capsys) -> None:
    data, run, done = ddp_run
    metrics = json.loads((run / METRICS).read_text())
    assert metrics["world_size"] == 2
    assert metrics["status"] == "completed" and metrics["epochs"] == 3
    assert metrics["train_samples"] + metrics["val_samples"] == 80
    history = json.loads((run / HISTORY).read_text())
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    # every rank trains on half the data: the samples of one epoch are counted once over both
    assert load_checkpoint(run)[3]["state"]["samples_seen"] == 3 * metrics["train_samples"]
    # one writer: one summary, each epoch reported once, nothing left beside the run
    assert done.stdout.count("completed: 3 epochs") == 1
    assert done.stderr.count("epoch 2/3 ") == 1
    assert [p.name for p in run.parent.iterdir() if p != lock_path(run)] == ["run"]
    assert "module." not in " ".join(load_checkpoint(run)[0])  # the plain model's weights
    # the folder is an ordinary run: predict works on it
    capsys.readouterr()
    image = next((data / "top").iterdir())
    assert main(["predict", str(run), str(image), "--json"]) == 0
    (predicted,) = json.loads(capsys.readouterr().out)
    assert predicted["label"] == "top"


@pytest.mark.slow
def test_a_two_process_run_resumes_in_one_process(ddp_run, tmp_path: Path, capsys) -> None:
    data, run, _ = ddp_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    assert main(["train", "--resume", str(copy), "--epochs", "4", "--quiet"]) == 0
    metrics = json.loads((copy / METRICS).read_text())
    assert metrics["world_size"] == 1 and metrics["epochs"] == 4
    history = json.loads((copy / HISTORY).read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    meta = load_checkpoint(copy)[3]
    # the schedule continues in this world size's steps: 64 images, batch 8 -> 8 steps per epoch
    steps = -(-metrics["train_samples"] // 8)
    assert meta["world_size"] == 1 and meta["state"]["global_step"] == 4 * steps


# `train` in which rank 1 (and only rank 1) asks to stop, as Ctrl-C does, right after global
# step AT_STEP, or fails (an unexpected error) there.
DRIVER = r"""
import os, signal, sys
from explorer.engine import trainer
real_step = trainer.train_step
def step(s, idx):
    out = real_step(s, idx)
    if s.dist.rank == 1 and s.state.global_step == int(os.environ["AT_STEP"]):
        if os.environ["WHAT"] == "stop":
            os.kill(os.getpid(), signal.SIGINT)
        else:
            raise RuntimeError("disk on fire")
    return out
trainer.train_step = step
from explorer.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


def _drive(what: str, data: Path, run: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """3 epochs of 2 processes; 64 training images, 32 per rank, 4 steps per epoch: rank 1
    stops or fails in the first step of epoch 2."""
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", str(driver)]
    cmd += ["train", str(data), "--epochs", "3", "--batch-size", "8", "--device", "cpu", "--out", str(run)]
    env = {**_env(), "AT_STEP": "5", "WHAT": what}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, cwd=ROOT)


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to the own process")
def test_a_stop_on_one_rank_stops_all_and_the_run_resumes_exactly(ddp_run, tmp_path: Path) -> None:
    data, reference, _ = ddp_run
    run = tmp_path / "run"
    stopped = _drive("stop", data, run, tmp_path)
    assert stopped.returncode != 0  # torchrun reports the workers' status 130 (interrupted)
    assert stopped.stderr.count("stopped by request during epoch 2") == 1, stopped.stderr
    assert [h["epoch"] for h in json.loads((run / HISTORY).read_text())] == [1]
    assert json.loads((run / METRICS).read_text())["status"] == "stopped"

    done = _train("--resume", str(run), "--nproc-per-node", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    # same world size: the same weights and optimizer state as the uninterrupted run
    resumed, uninterrupted = load_checkpoint(run), load_checkpoint(reference)
    for mine, theirs in zip(resumed[0].values(), uninterrupted[0].values(), strict=True):
        assert torch.equal(mine, theirs)
    assert resumed[3]["state"]["global_step"] == uninterrupted[3]["state"]["global_step"] == 12
    for pid, entries in uninterrupted[1]["state"].items():
        for key, value in entries.items():
            assert torch.equal(resumed[1]["state"][pid][key], value), (pid, key)


@pytest.mark.slow
def test_two_processes_reach_the_digits_acceptance_accuracy(tmp_path: Path, capsys) -> None:
    """Issue 12's acceptance: the default cnn, 2 gloo processes, 20 epochs, >= 97 % held out
    (measured: 99.6 %; about 3 minutes on a busy 2-core machine)."""
    train, test = export_digits(tmp_path / "digits")
    run = tmp_path / "run"
    done = _train(
        str(train), "--arch", "cnn", "--epochs", "20", "--device", "cpu", "--out", str(run), "--quiet",
        "--nproc-per-node", "2", timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    metrics = json.loads((run / METRICS).read_text())
    assert metrics["world_size"] == 2 and metrics["epochs"] == 20
    capsys.readouterr()
    assert main(["evaluate", str(run), str(test), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    print(f"\n2-process cnn: held-out accuracy {report['accuracy']:.4f}, {metrics['train_seconds']:.1f}s training")
    assert report["samples"] == 450
    assert report["accuracy"] >= 0.97


@pytest.mark.slow
def test_a_failed_rank_ends_the_run_with_a_message(ddp_run, tmp_path: Path) -> None:
    data, _, _ = ddp_run
    run = tmp_path / "run"
    failed = _drive("fail", data, run, tmp_path)
    assert failed.returncode != 0
    assert "rank 1 of 2 failed" in failed.stderr and "disk on fire" in failed.stderr, failed.stderr
    # rank 0 says why it ends too: contact lost, or ended by torchrun
    assert "rank 0 of 2" in failed.stderr and "train --resume RUN_DIR continues it" in failed.stderr
    assert [h["epoch"] for h in json.loads((run / HISTORY).read_text())] == [1]
