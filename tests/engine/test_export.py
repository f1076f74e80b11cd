"""Exports reload and compute what the run computes, on shapes other than the example."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer import load_run
from explorer.cli import main
from tests.datasets import write_two_class_folder


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("exp")
    data = write_two_class_folder(root / "data", n=12, size=20, rgb=True)
    assert (
        main(["train", str(data), "--set", "channels=8,16", "--epochs", "2", "--out", str(root / "run"), "--quiet"])
        == 0
    )
    return root / "run", data


def test_safetensors_bundle_is_a_loadable_run(run_dir, tmp_path: Path) -> None:
    run, data = run_dir
    assert main(["export", str(run), "--format", "safetensors", "--out", str(tmp_path / "m")]) == 0
    side = json.loads((tmp_path / "m.json").read_text())
    for key in ("arch", "params", "task", "labels", "preprocess"):
        assert key in side
    images = [str(p) for p in sorted((data / "top").glob("*.png"))[:3]]
    assert load_run(tmp_path / "m.safetensors").predict(images) == load_run(run).predict(images)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_onnx_export_runs_in_onnxruntime_with_another_batch_size(run_dir, tmp_path: Path, capsys) -> None:
    ort = pytest.importorskip("onnxruntime")
    run, data = run_dir
    assert main(["export", str(run), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 0
    printed = capsys.readouterr().out
    side = json.loads((tmp_path / "m.json").read_text())
    assert 0 <= side["max_abs_diff"] <= 1e-4 and f"max abs difference {side['max_abs_diff']:.2e}" in printed
    loaded = load_run(run)
    images = [str(p) for p in sorted((data / "bottom").glob("*.png"))[:5]]
    x = loaded.preprocess(images)
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, loaded.model(x).numpy(), atol=1e-4)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_pt2_program_reloads(run_dir, tmp_path: Path) -> None:
    run, data = run_dir
    assert main(["export", str(run), "--format", "pt2", "--out", str(tmp_path / "m")]) == 0
    program = torch.export.load(str(tmp_path / "m.pt2"))
    loaded = load_run(run)
    x = loaded.preprocess([str(p) for p in sorted((data / "top").glob("*.png"))[:4]])
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), loaded.model(x))
