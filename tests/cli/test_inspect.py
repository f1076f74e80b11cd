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
    assert (
        main(
            [
                "train",
                str(data),
                "--set",
                "channels=8,16",
                "--epochs",
                "6",
                "--batch-size",
                "8",
                "--lr",
                "3e-3",
                "--out",
                str(root / "run"),
                "--quiet",
            ]
        )
        == 0
    )
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


# -- every family: what inspect writes follows the model's declarations --------------------------------

FAMILIES = {  # case -> (data kind, arch, --set values, the files inspect writes)
    "cnn": ("classes", "cnn", ["channels=8,16"], {"feature_maps", "gradcam"}),
    "backbone": ("classes", "backbone", ["arch=resnet18"], {"feature_maps", "gradcam"}),
    "rnn": ("classes", "rnn", ["hidden_size=16"], {"hidden_states"}),
    "patch_rnn": (
        "classes",
        "patch_rnn",
        ["hidden_size=16", "channels=8,8"],
        {"feature_maps", "hidden_states", "gradcam"},  # the gradient is carried onto the tile mosaic
    ),
    "conv_rnn": (
        "classes",
        "conv_rnn",
        ["hidden_channels=8", "stem=8"],
        {"feature_maps", "spatial_states", "gradcam"},
    ),
    "crnn": ("classes", "crnn", ["channels=8,16", "hidden_size=16"], {"feature_maps", "hidden_states", "gradcam"}),
    "crnn-text": ("text", "crnn", ["channels=8,16", "hidden_size=16"], {"feature_maps", "hidden_states", "ctc"}),
    "captioner": (
        "captions",
        "captioner",
        ["channels=8,16", "hidden_size=16", "embed_dim=8", "attention_dim=8"],
        {"feature_maps", "hidden_states", "attention"},
    ),
}
STATE_FILES = {  # npz file -> the declared kinds it holds
    "feature_maps": ("feature_map",),
    "hidden_states": ("recurrent_state", "gate", "cell_state"),
    "spatial_states": ("spatial_state",),
}


@pytest.fixture(scope="module")
def family_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    from tests.datasets import export_digit_strings

    root = tmp_path_factory.mktemp("families")
    folder = write_two_class_folder(root / "classes", n=8, size=24)
    text, _ = export_digit_strings(root / "text", n_train=16, n_test=1)
    captions, _ = export_digit_strings(root / "captions", n_train=16, n_test=1, captions=True)
    first = sorted((folder / "top").glob("*.png"))[0]
    return {
        "classes": (folder, first),
        "text": (text, text / "images" / "00000.png"),
        "captions": (captions, captions / "images" / "00000.png"),
    }


@pytest.mark.parametrize("case", list(FAMILIES))
def test_inspect_writes_what_each_family_has(case: str, family_data, tmp_path: Path, capsys) -> None:
    kind, arch, params, expected = FAMILIES[case]
    data, image = family_data[kind]
    sets = [v for p in params for v in ("--set", p)]
    argv = ["train", str(data), "--arch", arch, *sets, "--epochs", "1", "--batch-size", "8", "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 0
    assert main(["inspect", str(tmp_path / "run"), str(image), "--out", str(tmp_path / "insp")]) == 0
    assert str(image) in capsys.readouterr().out
    folder = tmp_path / "insp" / image.stem
    assert {p.stem for p in folder.glob("*.npz")} == expected

    run = load_run(tmp_path / "run")
    x = run.preprocess([image])
    with torch.no_grad():
        out, inter = run.task_object.forward_intermediates(run.model, x)  # as the run decodes
    info = run.model.intermediate_info(tuple(x.shape[-2:]))
    for name, kinds in STATE_FILES.items():
        if name not in expected:
            continue
        saved = np.load(folder / f"{name}.npz")
        assert set(saved.files) == {k for k, d in info.items() if d.kind in kinds}
        for key in saved.files:  # the exact arrays of the forward pass
            np.testing.assert_allclose(saved[key], inter[key][0].float().numpy(), rtol=1e-5, atol=1e-6)
    h, w = cv2.imread(str(image), cv2.IMREAD_UNCHANGED).shape[:2]
    if "ctc" in expected:
        ctc = np.load(folder / "ctc.npz")
        frames = int(run.model.output_lengths(torch.tensor([x.shape[-1]]))[0])
        np.testing.assert_allclose(ctc["probs"], torch.softmax(out[0, :frames].float(), -1).numpy(), atol=1e-5)
        assert "".join(ctc["charset"]) == "".join(run.labels)
    if "attention" in expected:
        att = np.load(folder / "attention.npz")
        n = len(att["tokens"])
        assert att["maps"].shape == (n, h, w)
        np.testing.assert_allclose(att["maps"].sum((1, 2)), np.ones(n), rtol=1e-4)
        assert n == int((inter["tokens"][0] != 0).sum())  # the words the forward pass emitted
    if "gradcam" in expected:
        assert np.load(folder / "gradcam.npz")["cam"].shape == (h, w)
