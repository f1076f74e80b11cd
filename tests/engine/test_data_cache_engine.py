"""The engine over the decoded-image cache: runs record data_seconds, re-runs decode nothing,
splits beyond the memory budget stay on disk with the same pixels and statistics."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer.cli import main
from explorer.data import loading, open_source
from explorer.engine.config import DataConfig
from explorer.engine.tasks import get_task
from explorer.engine.tasks._prepare import Geometry, load
from tests.datasets import write_two_class_folder


def _aged(root: Path) -> Path:
    """Files written a while ago (the cache does not trust time stamps of files written just now)."""
    old = time.time() - 3600
    for p in root.rglob("*.png"):
        os.utime(p, (old, old))
    return root


def test_a_run_records_data_seconds_and_a_rerun_decodes_nothing(tmp_path: Path, monkeypatch) -> None:
    data = _aged(write_two_class_folder(tmp_path / "data", n=12, size=16, rgb=True))
    args = ["train", str(data), "--arch", "cnn", "--set", "channels=4", "--epochs", "1", "--batch-size", "8"]
    cache = ["--cache-dir", str(tmp_path / "cache")]
    assert main([*args, *cache, "--out", str(tmp_path / "r1"), "--quiet"]) == 0
    first = json.loads((tmp_path / "r1" / "metrics.json").read_text())
    assert isinstance(first["data_seconds"], float) and first["data_seconds"] > 0
    assert list((tmp_path / "cache").glob("*/*.json"))

    def refuse(*_a, **_k):
        raise AssertionError("decoded although the cache holds the file")

    monkeypatch.setattr(loading, "read_image", refuse)
    assert main([*args, *cache, "--out", str(tmp_path / "r2"), "--quiet"]) == 0
    second = json.loads((tmp_path / "r2" / "metrics.json").read_text())
    assert (second["train_samples"], second["val_samples"]) == (first["train_samples"], first["val_samples"])
    config = json.loads((tmp_path / "r2" / "config.json").read_text())
    assert config["data"]["cache_dir"] == str(tmp_path / "cache")


def test_no_cache_writes_nothing(tmp_path: Path) -> None:
    data = _aged(write_two_class_folder(tmp_path / "data", n=6, size=8))
    rc = main(
        ["train", str(data), "--set", "channels=4", "--epochs", "1", "--no-cache", "--out", str(tmp_path / "r")]
        + ["--cache-dir", str(tmp_path / "cache"), "--quiet"]
    )
    assert rc == 0 and not (tmp_path / "cache").exists()


def _file_backed(t: torch.Tensor) -> str | None:
    """The mapping (from /proc/self/maps) holding ``t``'s storage, if it is a file."""
    ptr = t.data_ptr()
    with open("/proc/self/maps", encoding="utf-8") as f:
        for line in f:
            parts = line.split(maxsplit=5)
            lo, hi = (int(v, 16) for v in parts[0].split("-"))
            if lo <= ptr < hi:
                return parts[5].strip() if len(parts) > 5 and parts[5].startswith("/") else None
    return None


def test_a_split_beyond_the_memory_budget_stays_on_disk_with_the_same_pixels(tmp_path: Path) -> None:
    root = _aged(write_two_class_folder(tmp_path / "data", n=60, size=64, rgb=True))  # 1.4 MiB decoded
    source = open_source(str(root))
    task = get_task("classify")
    base = dict(height=64, width=64, cache_dir=str(tmp_path / "cache"))
    in_memory = task.prepare(source, DataConfig(**base, cache=False), seed=0)
    from explorer.data.memory import COMPUTE_RESERVE_BYTES

    one_mib = (COMPUTE_RESERVE_BYTES >> 20) + 1  # a budget that leaves the data 1 MiB beside the steps' reserve
    budgeted = task.prepare(source, DataConfig(**base, memory_budget=one_mib), seed=0)
    assert torch.equal(budgeted.train.x, in_memory.train.x) and torch.equal(budgeted.val.x, in_memory.val.x)
    assert budgeted.preprocess == in_memory.preprocess  # the cache's exact sums give the same statistics
    if sys.platform.startswith("linux"):
        assert ".spill-" in (_file_backed(budgeted.train.x) or "")  # 1.1 MiB of training images: on disk
        assert _file_backed(budgeted.val.x) is None  # 0.3 MiB of validation images: fit what is left
        assert _file_backed(in_memory.train.x) is None

    images = load(
        source.samples,
        Geometry(64, 64, "auto", "auto"),
        origin="",
        max_pixels=1 << 24,
        problems=[],
        data=DataConfig(**base, memory_budget=one_mib),
    )
    assert images.mapped and images.sums is not None
    ids = np.arange(len(images.samples))[::-1]
    x, _ = images.take(ids)
    assert images.spilled == [x.numel()] and torch.equal(x, images.images[torch.from_numpy(ids.copy())])


def test_the_float_copy_respects_the_memory_budget(tmp_path: Path) -> None:
    from explorer.engine.config import RunConfig
    from explorer.engine.session import Session

    root = _aged(write_two_class_folder(tmp_path / "data", n=40, size=32))
    source = open_source(str(root))
    task = get_task("classify")
    from explorer.data.memory import COMPUTE_RESERVE_BYTES

    reserve = COMPUTE_RESERVE_BYTES >> 20  # the budget's part kept for the steps: the data gets the rest
    sessions = []
    for budget in (
        0,
        reserve + 1,
    ):  # automatic (fits) and 1 MiB for the data: 64 images of 32x32 as float need 256 KiB ...
        cfg = RunConfig.from_dict(
            {
                "arch": "cnn",
                "params": {"channels": [4]},
                "data": {"cache_dir": str(tmp_path / "c"), "memory_budget": budget},
            }
        )
        data = task.prepare(source, cfg.data, seed=0)
        sessions.append(Session(cfg, None, task, data, None).prenormalized)
    assert sessions == [True, True]
    cfg = RunConfig.from_dict({"arch": "cnn", "params": {"channels": [4]}, "data": {"memory_budget": reserve + 1}})
    big = _aged(write_two_class_folder(tmp_path / "big", n=40, size=128))  # ... at 128x128, 4 MiB: over 1 MiB
    data = task.prepare(open_source(str(big)), cfg.data, seed=0)
    assert not Session(cfg, None, task, data, None).prenormalized


@pytest.mark.parametrize("mib", [0, 3])
def test_memory_budget_setting(mib: int) -> None:
    from explorer.data import data_budget, memory_budget
    from explorer.data.memory import COMPUTE_RESERVE_BYTES

    assert memory_budget(mib) == (3 << 20 if mib else memory_budget(0)) and memory_budget(0) > 0
    # the data's share leaves the steps' reserve, and is never negative
    assert data_budget(mib) == max(0, memory_budget(mib) - COMPUTE_RESERVE_BYTES)
    assert data_budget(3) == 0 and data_budget(2000) == (2000 << 20) - COMPUTE_RESERVE_BYTES


def test_a_run_given_a_budget_it_cannot_keep_is_told_so(tmp_path: Path) -> None:
    """Training steps take ~256 MiB besides the images whatever the data: a set budget below
    what a run needs is named at the run's start (the run still trains, from the disk cache)."""
    from explorer.data import MIN_BUDGET_BYTES, budget_note
    from explorer.engine import RunConfig, Status, Trainer

    least = MIN_BUDGET_BYTES >> 20
    assert budget_note(0) is None and budget_note(least) is None and budget_note(4096) is None
    note = budget_note(least - 1)
    assert note is not None and f"{least - 1} MiB" in note and "data.memory_budget" in note
    data = _aged(write_two_class_folder(tmp_path / "data", n=16, size=16))
    statuses = {}
    for budget in (100, least):
        cfg = RunConfig(arch="cnn", params={"channels": [4]})
        cfg.data.source, cfg.data.memory_budget, cfg.data.cache_dir = str(data), budget, str(tmp_path / "c")
        cfg.train.epochs, cfg.train.batch_size, cfg.train.device = 1, 8, "cpu"
        events = list(Trainer(cfg, tmp_path / f"run{budget}").run())
        statuses[budget] = [e.message for e in events if isinstance(e, Status)]
    assert budget_note(100) in statuses[100]
    assert not any("memory_budget" in m for m in statuses[least])
