"""``inspect`` writes the exact activations of the forward pass, and a sane Grad-CAM."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from explorer import load_run
from explorer.cli import main
from tests.datasets import write_two_class_folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("insp")
    data = write_two_class_folder(root / "data", n=16, size=24)
    assert main(["train", str(data), "--set", "channels=8,16", "--epochs", "6", "--batch-size", "8", "--lr", "3e-3",
                 "--out", str(root / "run"), "--quiet"]) == 0
    return root / "run", data


def test_feature_maps_equal_the_forward_pass(trained, tmp_path: Path, capsys) -> None:
    run_dir, data = trained
    image = sorted((data / "top").glob("*.png"))[0]
    assert main(["inspect", str(run_dir), str(image), "--out", str(tmp_path)]) == 0
    folder = tmp_path / image.stem
    feats = np.load(folder / "feature_maps.npz")
    run = load_run(run_dir)
    with torch.no_grad():
        _, inter = run.model.forward_intermediates(run.preprocess([image]))
    assert set(feats.files) == {"features.0", "features.1"}
    for name in feats.files:
        np.testing.assert_allclose(feats[name], inter[name][0].numpy(), rtol=1e-5, atol=1e-6)
    assert (folder / "feature_maps_features_0.png").is_file()


def test_gradcam_matches_an_independent_hook_computation(trained, tmp_path: Path) -> None:
    run_dir, data = trained
    run = load_run(run_dir)
    images = sorted((data / "top").glob("*.png"))[:4] + sorted((data / "bottom").glob("*.png"))[:4]
    assert main(["inspect", str(run_dir), *map(str, images), "--out", str(tmp_path)]) == 0
    layer = run.model.features[-1]  # the last conv block, as Grad-CAM picks by default
    saved: dict[str, torch.Tensor] = {}
    for image in images:
        saved.clear()
        h1 = layer.register_forward_hook(lambda m, i, o: saved.__setitem__("act", o))
        h2 = layer.register_full_backward_hook(lambda m, gi, go: saved.__setitem__("grad", go[0]))
        x = run.preprocess([image])
        out = run.model(x)
        cls = int(out[0].argmax())
        out[0, cls].backward()
        h1.remove()
        h2.remove()
        w = saved["grad"][0].mean((1, 2), keepdim=True)
        cam = torch.relu((w * saved["act"][0]).sum(0)).detach().numpy()
        cam = cam / cam.max() if cam.max() > 0 else cam
        expected = cv2.resize(cam, (24, 24), interpolation=cv2.INTER_LINEAR)
        expected = (expected - expected.min()) / max(expected.max() - expected.min(), 1e-12)
        g = np.load(tmp_path / image.stem / "gradcam.npz")
        assert g["cam"].shape == (24, 24)
        assert str(g["class"]) == run.labels[cls]
        np.testing.assert_allclose(g["cam"], expected, atol=1e-5)
        assert (tmp_path / image.stem / "gradcam.png").is_file()


def test_bad_image_and_bad_target_are_named(trained, tmp_path: Path, capsys) -> None:
    run_dir, data = trained
    bad = tmp_path / "x.png"
    bad.write_bytes(b"")
    assert main(["inspect", str(run_dir), str(bad), "--out", str(tmp_path / "o")]) == 1
    assert "x.png" in capsys.readouterr().err
    good = sorted((data / "top").glob("*.png"))[0]
    assert main(["inspect", str(run_dir), str(good), "--target", "sideways", "--out", str(tmp_path / "o")]) == 2
    assert "sideways" in capsys.readouterr().err
