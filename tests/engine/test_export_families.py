"""ONNX and torch.export for every family: free batch (and width for text lines), checked on
another input size, self-describing JSON; the captioner as encoder + one decoder step."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from explorer import load_run
from explorer.engine.export import export_run
from tests.engine.export_helpers import greedy_caption, make_run

ort = pytest.importorskip("onnxruntime")

LINE = (32, None)  # text lines: fixed height, variable width
CASES: dict[str, tuple[str, str, dict[str, Any], tuple[int, int | None], int]] = {
    "cnn": ("cnn", "classify", {"channels": "4,8"}, (32, 32), 3),
    "backbone": ("backbone", "classify", {"arch": "mobilenet_v3_small"}, (32, 32), 3),
    "rnn": ("rnn", "classify", {"hidden_size": 16, "cell": "lstm"}, (28, 28), 1),
    "crnn": ("crnn", "classify", {"channels": "8,16", "hidden_size": 16, "cell": "gru"}, (32, 48), 1),
    "crnn-ctc": ("crnn", "sequence", {"channels": "8,16", "hidden_size": 16}, LINE, 1),
    "patch_rnn": ("patch_rnn", "classify", {"channels": "8", "hidden_size": 16}, (32, 32), 3),
    "conv_rnn": ("conv_rnn", "classify", {"hidden_channels": "8", "stem": 8}, (32, 32), 1),
}
SMALL_CAPTIONER = {"channels": "8,16,32", "embed_dim": 16, "hidden_size": 32, "attention_dim": 16}


def _run(tmp: Path, case: str) -> Path:
    arch, task, params, size, channels = CASES[case]
    return make_run(tmp / case, arch, task, params=params, size=size, channels=channels)


def _sess(path: Path) -> Any:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


# cnn stays in the quick suite; each other family's export takes 20-80 s on 2 cores
ONNX_CASES = [c if c == "cnn" else pytest.param(c, marks=pytest.mark.slow) for c in CASES]


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("case", ONNX_CASES)
def test_onnx_of_every_family_is_checked_and_self_describing(case: str, tmp_path: Path) -> None:
    run = load_run(_run(tmp_path, case))
    result = export_run(run, "onnx", tmp_path / "m")
    assert result.files == [str(tmp_path / "m.onnx"), str(tmp_path / "m.json")]
    assert result.max_abs_diff is not None and result.max_abs_diff <= 1e-4
    side = json.loads((tmp_path / "m.json").read_text())
    for key in ("arch", "params", "task", "labels", "preprocess", "max_abs_diff", "graphs", "outputs"):
        assert key in side, key
    graph = side["graphs"][0]
    variable = run.input_shape[2] is None
    c, h, w = run.input_shape
    assert graph["inputs"]["image"]["shape"] == ["batch", c, h, "width" if variable else w]
    assert graph["check"]["inputs"][0][0] == 3  # checked on another batch size than the traced 2
    if variable:
        assert side["blank"] == 0 and graph["outputs"]["logits"]["shape"] == ["batch", "frames", len(run.labels) + 1]
    x = torch.randn(4, c, h, (w or 7 * h))  # yet another batch size (and width)
    got = _sess(tmp_path / "m.onnx").run(None, {"image": x.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, run.model(x).numpy(), atol=1e-4)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("case", ["cnn", "crnn-ctc"])
def test_pt2_programs_name_what_torch_export_fixes(case: str, tmp_path: Path) -> None:
    run = load_run(_run(tmp_path, case))
    result = export_run(run, "pt2", tmp_path / "m")
    program = torch.export.load(str(tmp_path / "m.pt2"))
    c, h, w = run.input_shape
    x = torch.randn(5, c, h, w or 4 * h)  # the traced width: pt2 keeps the batch free
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), run.model(x))
    side = json.loads((tmp_path / "m.json").read_text())
    if w is None:
        assert result.limits and "width fixed at 128" in result.limits[0] and "LSTM" in result.limits[0]
        assert side["limits"] == result.limits
    else:
        assert result.limits == [] and side["limits"] == []


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("size", [pytest.param((32, 32), marks=pytest.mark.slow), LINE], ids=["fixed", "line"])
def test_captioner_exports_encoder_and_decoder_step_that_greedy_decode_like_pytorch(
    size: tuple[int, int | None], tmp_path: Path
) -> None:
    params = {**SMALL_CAPTIONER, "pos_encoding": "learned" if size[1] is None else "sinusoidal"}
    folder = make_run(tmp_path / "cap", "captioner", "caption", params=params, size=size, extra={"max_len": 8})
    run = load_run(folder)
    result = export_run(run, "onnx", tmp_path / "cap.onnx")
    assert [Path(f).name for f in result.files] == ["cap.encoder.onnx", "cap.decoder.onnx", "cap.json"]
    side = json.loads((tmp_path / "cap.json").read_text())
    assert side["vocabulary"] == run.labels and side["max_length"] == 9
    assert (side["start"], side["end"]) == (1, 2)
    assert side["grid"][0] == 4 and (side["grid"][1] is None) == (size[1] is None)
    enc, dec = side["graphs"]
    assert list(enc["outputs"]) == ["features", "h", "c"] and list(dec["inputs"]) == ["token", "h", "c", "features"]
    assert list(dec["outputs"]) == ["logits", "h_next", "c_next", "alpha"]
    assert dec["inputs"]["token"] == {"dtype": "int64", "shape": ["batch"]}
    encoder, decoder = _sess(tmp_path / "cap.encoder.onnx"), _sess(tmp_path / "cap.decoder.onnx")
    for seed, width in ((1, size[1] or 90), (2, size[1] or 150)):
        x = torch.randn(1, 1, size[0], width, generator=torch.Generator().manual_seed(seed))
        want = run.task_object.predict(run.model, x, torch.tensor([width]), run.labels)[0]["caption"]
        assert greedy_caption(encoder, decoder, x.numpy(), side) == want
