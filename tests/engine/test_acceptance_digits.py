"""Acceptance figures of the foundation issue, on real handwritten digits.

scikit-learn's bundled digits (1,797 real handwritten images) are written as 32x32
PNG class folders, 1,347 for training and 450 held out. Each family trains with its
defaults for 20 epochs through the CLI (image size, normalisation and LR are derived,
nothing tuned) and is evaluated on the held-out folder with ``evaluate --json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from explorer.cli import main
from tests.datasets import export_digits

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return export_digits(tmp_path_factory.mktemp("digits"))


@pytest.mark.parametrize(
    "arch, sets, target",
    [
        ("cnn", [], 0.98),
        ("rnn", ["--set", "cell=gru"], 0.95),
        ("crnn", [], 0.97),
        ("patch_rnn", [], 0.95),
        ("conv_rnn", [], 0.95),
    ],
    ids=["cnn", "rnn-gru", "crnn", "patch_rnn", "conv_rnn"],
)
def test_defaults_reach_the_acceptance_accuracy(digits, arch, sets, target, tmp_path: Path, capsys) -> None:
    train, test = digits
    run = tmp_path / arch
    assert (
        main(
            [
                "train",
                str(train),
                "--arch",
                arch,
                *sets,
                "--epochs",
                "20",
                "--device",
                "cpu",
                "--out",
                str(run),
                "--quiet",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["evaluate", str(run), str(test), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    metrics = json.loads((run / "metrics.json").read_text())
    print(
        f"\n{arch}: test accuracy {report['accuracy']:.4f} on {report['samples']} images, "
        f"{metrics['train_seconds']:.1f}s training, {metrics['samples_per_second']:.0f} img/s"
    )
    assert report["samples"] == 450
    assert report["accuracy"] >= target
