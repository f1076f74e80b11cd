"""Acceptance: a class folder full of broken and odd files trains anyway.

``train`` exits 0, names each unusable file exactly once with its reason, and uses
every usable image (the odd-but-valid ones are converted, not rejected).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from explorer.cli import main
from tests.data.corpus import make_bad_corpus, make_good_oddities
from tests.datasets import write_two_class_folder


@pytest.fixture()
def messy(tmp_path: Path) -> tuple[Path, dict[str, str], dict[str, tuple[int, ...]]]:
    root = write_two_class_folder(tmp_path / "data", n=12, size=16, rgb=True)
    bad = make_bad_corpus(root / "top")
    odd = make_good_oddities(root / "top")
    return root, bad, odd


def test_train_skips_each_bad_file_once_and_uses_every_usable_one(messy, tmp_path: Path, capsys) -> None:
    root, bad, odd = messy
    out = tmp_path / "run"
    rc = main(["train", str(root), "--set", "channels=8", "--epochs", "1", "--batch-size", "8", "--out", str(out)])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    skipped = [line for line in cap.err.splitlines() if line.startswith("skipped ")]
    assert len(skipped) == len(bad), skipped
    for name, reason in bad.items():
        hits = [line for line in skipped if f"{name}:" in line]
        assert len(hits) == 1, (name, skipped)
        assert reason in hits[0], (name, hits[0])
    metrics = json.loads((out / "metrics.json").read_text())
    usable = 2 * 12 + len(odd)
    assert metrics["train_samples"] + metrics["val_samples"] == usable
    problems = (out / "problems.txt").read_text(encoding="utf-8").splitlines()
    assert len(problems) == len(bad)
