"""Acceptance of the export issue, measured on trained runs of every family.

For each family: a short training, an ONNX export, then a client that knows only the
exported JSON (cv2 + numpy preprocessing written here, not the app's code) runs onnxruntime
on held-out images and must agree with ``predict``: the same class / text / greedy caption on
>= 99% of the images, probabilities within 1e-4. And a safetensors bundle opened in a fresh
process predicts what the run predicted before export.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from explorer import load_run
from explorer.cli import main
from tests.datasets import export_digit_strings, export_digits
from tests.engine.export_helpers import client_input, ctc_greedy, greedy_caption, softmax

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore")]
ort = pytest.importorskip("onnxruntime")

FAMILIES: dict[str, tuple[str, list[str], int]] = {  # name -> (data kind, train args, epochs)
    "cnn": ("digits", ["--arch", "cnn"], 2),
    "backbone": ("digits", ["--arch", "backbone", "--set", "arch=resnet18"], 1),
    "rnn": ("digits", ["--arch", "rnn", "--set", "hidden_size=64"], 2),
    "crnn": ("digits", ["--arch", "crnn", "--set", "hidden_size=64"], 2),
    "patch_rnn": ("digits", ["--arch", "patch_rnn", "--set", "hidden_size=64"], 2),
    "conv_rnn": ("digits", ["--arch", "conv_rnn", "--set", "hidden_channels=16"], 2),
    "crnn-ctc": ("lines", ["--arch", "crnn", "--set", "hidden_size=64"], 6),
    "captioner": ("captions", ["--arch", "captioner", "--set", "hidden_size=128"], 6),
}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, list[str]]]:
    root = tmp_path_factory.mktemp("data")
    train, test = export_digits(root / "digits")
    lines = export_digit_strings(root / "lines", n_train=400, n_test=100)
    captions = export_digit_strings(root / "captions", n_train=400, n_test=100, captions=True)
    return {
        "digits": (train, sorted(str(p) for p in test.rglob("*.png"))),
        "lines": (lines[0], sorted(str(p) for p in (lines[1] / "images").glob("*.png"))),
        "captions": (captions[0], sorted(str(p) for p in (captions[1] / "images").glob("*.png"))),
    }


def _sessions(folder: Path, stem: str, side: dict[str, Any]) -> list[Any]:
    parts = [f"{stem}.encoder.onnx", f"{stem}.decoder.onnx"] if "vocabulary" in side else [f"{stem}.onnx"]
    return [ort.InferenceSession(str(folder / p), providers=["CPUExecutionProvider"]) for p in parts]


def _client(side: dict[str, Any], sessions: list[Any], path: str) -> dict[str, Any]:
    """What a client computes from the export alone for one image."""
    x = client_input(path, side["preprocess"])
    if "vocabulary" in side:
        return {"caption": greedy_caption(*sessions, x, side)}
    logits = sessions[0].run(None, {"image": x})[0][0]
    p = softmax(logits.astype(np.float64))
    if "blank" in side:
        return {"text": ctc_greedy(logits, side["labels"], side["blank"]), "confidence": float(np.prod(p.max(-1)))}
    labels = side["labels"]
    return {"label": labels[int(p.argmax())], "probabilities": dict(zip(labels, p[: len(labels)].tolist()))}


def _agreement(client: list[dict[str, Any]], pred: list[dict[str, Any]]) -> tuple[float, float]:
    """(fraction of images with the same answer, max probability difference)."""
    key = next(k for k in ("label", "text", "caption") if k in pred[0])
    same = float(np.mean([c[key] == p[key] for c, p in zip(client, pred)]))
    diffs = [0.0]
    for c, p in zip(client, pred):
        if "probabilities" in p:
            diffs += [abs(c["probabilities"][k] - v) for k, v in p["probabilities"].items()]
        if "confidence" in c:
            diffs.append(abs(c["confidence"] - p["confidence"]))
    return same, max(diffs)


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("family", list(FAMILIES))
def test_onnx_agrees_with_predict_on_held_out_images(family: str, data, tmp_path: Path, capsys) -> None:
    kind, args, epochs = FAMILIES[family]
    train, images = data[kind]
    run_dir = tmp_path / "run"
    assert (
        main(["train", str(train), *args, "--epochs", str(epochs), "--device", "cpu", "--out", str(run_dir), "--quiet"])
        == 0
    )
    assert main(["export", str(run_dir), "--format", "onnx", "--out", str(tmp_path / "m")]) == 0
    side = json.loads((tmp_path / "m.json").read_text())
    run = load_run(run_dir)
    if run.input_shape[2] is None:  # text lines: one image per call, as the ONNX client runs them
        pred = [run.predict([p])[0] for p in images]
    else:
        pred = run.predict(images)
    sessions = _sessions(tmp_path, "m", side)
    client = [_client(side, sessions, p) for p in images]
    same, diff = _agreement(client, pred)
    assert main(["export", str(run_dir), "--format", "safetensors", "--out", str(tmp_path / "bundle")]) == 0
    fresh = subprocess.run(
        [sys.executable, "-c", "import json, sys; from explorer import load_run; "
         "print(json.dumps(load_run(sys.argv[1]).predict(sys.argv[2:])))", str(tmp_path / "bundle.safetensors"), *images[:50]],
        capture_output=True, text=True, check=True, cwd=Path(__file__).parents[2],
    )  # fmt: skip
    reopened = json.loads(fresh.stdout)
    before = run.predict(images[:50])
    with capsys.disabled():
        print(
            f"\n{family}: ONNX max_abs_diff {side['max_abs_diff']:.2e} (export check); onnxruntime from the JSON vs "
            f"predict on {len(images)} held-out images: {same:.2%} same answer, max probability diff {diff:.2e}; "
            f"bundle in a fresh process: {np.mean([a == b for a, b in zip(reopened, before)]):.0%} identical"
        )
    assert side["max_abs_diff"] <= 1e-4
    assert same >= 0.99 and diff <= 1e-4
    assert [{k: v for k, v in r.items() if k != "path"} for r in reopened] == [
        {k: v for k, v in r.items() if k != "path"} for r in before
    ]
