"""Acceptance figures of the captioning issue.

1. Lines of 3-5 real handwritten digits (scikit-learn's set), captioned with the digits'
   names ("three one four"), 3,000 for training and 600 held out: the default
   ``captioner`` reaches BLEU-4 >= 90 within 30 epochs, and for >= 90% of correctly
   generated words the attention map's peak column lies on the digit that word names.
2. ``sample:shape-scenes``: the attention of a colour or shape word peaks inside that
   object's box for most such words, on held-out scenes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from explorer import load_run
from explorer.cli import main
from explorer.data import materialize_sample, random_split
from explorer.engine.inspect import inspect_image
from tests.datasets import export_digit_strings

pytestmark = pytest.mark.slow
# The doubly stochastic regulariser asks every grid cell to receive a total attention of 1 over
# a caption. Seven words over an 8x8 grid cannot do that without spreading onto background,
# and the redundant word (the shape after its colour) takes that job: measured 46% of words
# inside their object with the default weight 1.0, 74% with 0. Its weight is a parameter;
# scenes turn it off, digit lines (35 columns, 3-5 words) keep the default.
EXTRA: list[str] = ["--set", "attention_reg=0"]


def test_captions_of_handwritten_digit_lines(tmp_path: Path, capsys) -> None:
    train, test = export_digit_strings(tmp_path / "lines", captions=True)
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                str(train),
                "--arch",
                "captioner",
                "--epochs",
                "30",
                "--early-stopping",
                "4",
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

    loaded = load_run(run)
    spans = json.loads((test / "spans.json").read_text())
    refs = {
        row.split(",")[0]: row.split(",")[1].split() for row in (test / "captions.csv").read_text().splitlines()[1:]
    }
    on_digit = correct = 0
    for name in sorted(refs)[:300]:
        att = inspect_image(loaded, test / name)["attention"]
        for i, (word, m) in enumerate(zip(att["tokens"], att["maps"])):
            if i < len(refs[name]) and word == refs[name][i]:
                correct += 1
                x0, x1 = spans[name][i]
                on_digit += x0 <= int(m.sum(0).argmax()) < x1
    rate = on_digit / max(correct, 1)
    print(
        f"\ncaptioner on digit lines: BLEU-4 {report['bleu4']:.1f} (BLEU-1 {report['bleu1']:.1f}), exact "
        f"{report['exact']:.3f} on {report['samples']} lines, {metrics['epochs']} epochs, "
        f"{metrics['train_seconds']:.0f}s; attention peak on the named digit for {rate:.3f} of {correct} correct words"
    )
    assert report["samples"] == 600
    assert report["bleu4"] >= 90
    assert rate >= 0.9


def test_attention_finds_the_objects_in_shape_scenes(tmp_path: Path, capsys) -> None:
    folder = materialize_sample("shape-scenes", tmp_path)
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                str(folder),
                "--arch",
                "captioner",
                "--epochs",
                "15",
                *EXTRA,
                "--device",
                "cpu",
                "--out",
                str(run),
                "--quiet",
            ]
        )
        == 0
    )
    loaded = load_run(run)
    boxes = json.loads((folder / "boxes.json").read_text())
    names = sorted(boxes)
    _, val_idx = random_split(len(names), 0.2, 0)  # the images the run held out (same split, seed 0)
    inside = total = 0
    for k in val_idx[:150]:
        name = names[k]
        att = inspect_image(loaded, folder / name)["attention"]
        words = list(att["tokens"])
        objects = {(o["color"], o["shape"]): o["box"] for o in boxes[name]}
        # "a <colour> <shape> <relation> a <colour> <shape>": words 1-2 and the last two name objects
        if len(words) < 6:
            continue
        for pos in ((1, 2), (len(words) - 2, len(words) - 1)):
            key = (words[pos[0]], words[pos[1]])
            if key not in objects:
                continue  # a wrong object: nothing to check its attention against
            x0, y0, x1, y1 = objects[key]
            for p in pos:
                y, x = np.unravel_index(int(att["maps"][p].argmax()), att["maps"][p].shape)
                total += 1
                inside += (x0 - 2 <= x <= x1 + 2) and (y0 - 2 <= y <= y1 + 2)
    rate = inside / max(total, 1)
    print(f"\ncaptioner on shape-scenes: attention peak inside the named object for {rate:.3f} of {total} words")
    assert total >= 100
    assert rate >= 0.6  # "most words"; measured 0.744
