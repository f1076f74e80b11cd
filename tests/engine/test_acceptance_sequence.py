"""Acceptance figures of the sequence issue, on real handwritten digit strings.

Lines of 3-5 of scikit-learn's real handwritten digits, 32 px high: 3,000 for training,
600 held out (built only from held-out digit images). ``crnn`` with its defaults trains
10 epochs through the CLI; the task is detected from labels.csv (``path,text``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from explorer.cli import main
from tests.datasets import export_digit_strings

pytestmark = pytest.mark.slow


def test_crnn_reads_handwritten_digit_strings(tmp_path: Path, capsys) -> None:
    train, test = export_digit_strings(tmp_path / "strings")
    run = tmp_path / "run"
    assert (
        main(["train", str(train), "--arch", "crnn", "--epochs", "10", "--device", "cpu", "--out", str(run), "--quiet"])
        == 0
    )
    capsys.readouterr()
    assert main(["evaluate", str(run), str(test), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    metrics = json.loads((run / "metrics.json").read_text())
    print(
        f"\ncrnn sequence: accuracy {report['sequence_accuracy']:.4f}, CER {report['cer']:.4f} on {report['samples']} "
        f"lines; {metrics['train_seconds']:.0f}s training"
    )
    assert report["samples"] == 600
    assert report["sequence_accuracy"] >= 0.97
    assert report["cer"] <= 0.01
