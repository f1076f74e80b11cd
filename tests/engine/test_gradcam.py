"""Grad-CAM: equal to an independent implementation (a forward hook on the module, autograd on
its output, the plain ``forward``), per class, per CTC character and per caption word, and
defined for every family with conv layers."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from explorer.data import Vocabulary
from explorer.engine.gradcam import (
    caption_targets,
    class_targets,
    ctc_segments,
    ctc_targets,
    explain_image,
    grad_cam,
    probe_gradcam,
    targets_for,
)
from models import build_model

TOL = 1e-5


def _image(h: int, w: int, c: int = 1, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, c, h, w, generator=g)


def _trained_a_little(model: nn.Module, x: torch.Tensor, *args: torch.Tensor) -> nn.Module:
    """Batch-norm statistics that are not the initial ones, then eval mode."""
    model.train()
    with torch.no_grad():
        model(torch.cat([x, x.flip(-1), x * 0.5]), *(a.repeat(3, 1) for a in args))
    return model.eval()


def _reference(model: nn.Module, module_name: str, x: torch.Tensor, score) -> np.ndarray:  # noqa: ANN001
    """Grad-CAM written from scratch: hook the module, plain forward, autograd on its output."""
    caught: list[torch.Tensor] = []
    handle = dict(model.named_modules())[module_name].register_forward_hook(lambda m, i, o: caught.append(o))
    try:
        out = model(x)
    finally:
        handle.remove()
    (act,) = caught
    (grad,) = torch.autograd.grad(score(out), act)
    alpha = grad[0].sum(dim=(1, 2)) / (grad.shape[2] * grad.shape[3])
    cam = np.maximum(np.einsum("c,chw->hw", alpha.double().numpy(), act[0].detach().double().numpy()), 0.0)
    cam = cam / cam.max() if cam.max() > 0 else cam
    h, w = x.shape[-2:]
    return np.clip(cv2.resize(cam.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR), 0, 1)


def test_cnn_equals_the_independent_implementation_for_predicted_and_chosen_class() -> None:
    torch.manual_seed(0)
    model = build_model("cnn", in_channels=1, num_outputs=3, image_size=(32, 32), channels="8,16,16")
    x = _image(32, 32)
    _trained_a_little(model, x)
    labels = ["a", "b", "c"]
    with torch.no_grad():
        out = model(x)
    predicted = int(out[0].argmax())
    for target in (None, "a", 2):
        result = grad_cam(model, x, class_targets(out, labels, target))
        assert result.layer == "features.2"
        (m,) = result.maps
        cls = predicted if target is None else labels.index(target) if isinstance(target, str) else target
        assert m.index == cls and m.label == labels[cls]
        ref = _reference(model, "features.2", x, lambda o, c=cls: o[0, c])
        assert m.cam.shape == (32, 32) and m.cam.dtype == np.float32
        assert 0.0 <= m.cam.min() and m.cam.max() <= 1.0
        np.testing.assert_allclose(m.cam, ref, atol=TOL)
    assert not model.training


def test_crnn_hybrid_equals_the_independent_implementation() -> None:
    torch.manual_seed(1)
    model = build_model("crnn", in_channels=1, num_outputs=4, image_size=(32, 48), channels="8,16,16")
    x = _image(32, 48, seed=1)
    _trained_a_little(model, x)
    with torch.no_grad():
        out = model(x)
    result = grad_cam(model, x, class_targets(out, list("wxyz")))
    assert result.layer == "cnn.2"  # the last declared feature map, (16, 4, 12)
    cls = result.maps[0].index
    np.testing.assert_allclose(result.maps[0].cam, _reference(model, "cnn.2", x, lambda o: o[0, cls]), atol=TOL)
    assert result.maps[0].cam.max() > 0


def test_ctc_per_character_equals_the_independent_implementation() -> None:
    torch.manual_seed(2)
    charset = list("0123456789")
    model = build_model(
        "crnn", in_channels=1, num_outputs=len(charset) + 1, image_size=(32, None), channels="8,16,16", head="ctc"
    )
    x = _image(32, 96, seed=2)
    _trained_a_little(model, x)
    with torch.no_grad():
        out = model(x)  # (1, T, 11)
    # a best path with several characters, a repeat and blanks: set the frames' winners by hand
    path = [0, 3, 3, 0, 1, 0, 4, 4, 4, 1, 0, 1, 5, 0, 0, 9, 2, 6, 0, 0, 5, 5, 0, 3]
    assert out.shape[1] == len(path)
    bias = torch.zeros(out.shape[1], 11)
    bias[torch.arange(len(path)), torch.tensor(path)] = 6.0
    wrapped = _FrameBias(model, bias).eval()
    with torch.no_grad():
        out = wrapped(x)
    assert out[0].argmax(-1).tolist() == path
    targets = ctc_targets(out, charset)
    assert "".join(t.label for t in targets) == "2030048154" + "2"  # 3 3 merged; 1 0 1 -> two "0"
    assert [t.frames for t in targets][:3] == [(1, 3), (4, 5), (6, 9)]
    result = grad_cam(wrapped, x, targets)
    assert [m.position for m in result.maps] == list(range(len(targets)))
    lp_path = np.array(path)
    for m in result.maps:
        t0, t1 = m.frames
        assert (lp_path[t0:t1] == m.index).all()

        def score(o: torch.Tensor, t0: int = t0, t1: int = t1, c: int = m.index) -> torch.Tensor:
            return torch.log_softmax(o[0], dim=-1)[t0:t1, c].sum()

        np.testing.assert_allclose(m.cam, _reference(wrapped, "model.cnn.2", x, score), atol=TOL)
    assert len({m.cam.tobytes() for m in result.maps}) > 1  # characters get their own maps


class _FrameBias(nn.Module):
    """A CTC crnn whose per-frame logits get a fixed bias: a known best path, real gradients."""

    def __init__(self, model: nn.Module, bias: torch.Tensor) -> None:
        super().__init__()
        self.model, self.bias = model, bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) + self.bias

    def forward_intermediates(self, x: torch.Tensor):  # noqa: ANN201
        out, inter = self.model.forward_intermediates(x)
        return out + self.bias, inter

    def intermediate_info(self, image_size):  # noqa: ANN001, ANN201
        return self.model.intermediate_info(image_size)


def test_ctc_targets_without_a_wrapper_follow_the_model_best_path() -> None:
    torch.manual_seed(3)
    model = build_model("crnn", in_channels=1, num_outputs=4, image_size=(32, None), channels="8,16", head="ctc")
    x = _image(32, 40, seed=3)
    model.eval()
    with torch.no_grad():
        out = model(x)
    best = out[0].argmax(-1).tolist()
    targets = ctc_targets(out, list("abc"))
    assert [(t.index, *t.frames) for t in targets] == ctc_segments(best)
    result = grad_cam(model, x, targets)
    for m in result.maps:
        t0, t1 = m.frames
        ref = _reference(
            model, "cnn.1", x, lambda o, t0=t0, t1=t1, c=m.index: torch.log_softmax(o[0], -1)[t0:t1, c].sum()
        )
        np.testing.assert_allclose(m.cam, ref, atol=TOL)


def test_ctc_segments_merge_repeats_and_drop_blanks() -> None:
    assert ctc_segments([0, 3, 3, 0, 3, 1, 1, 0]) == [(3, 1, 3), (3, 4, 5), (1, 5, 7)]
    assert ctc_segments([]) == [] and ctc_segments([0, 0]) == []


def test_captioner_per_word_scores_are_the_greedy_logits_and_maps_match_a_hook() -> None:
    torch.manual_seed(4)
    vocab = Vocabulary(["<pad>", "<start>", "<end>", "<unk>", "a", "red", "blue", "circle", "square", "left"])
    model = build_model(
        "captioner", in_channels=1, num_outputs=len(vocab.tokens), image_size=(32, 32), channels="8,16,16",
        embed_dim=16, hidden_size=32, attention_dim=16,
    )  # fmt: skip
    x = _image(32, 32, seed=4)
    _trained_a_little(model, x, torch.tensor([[1, 4, 5, 7, 2]]))
    with torch.no_grad():
        greedy_logits, inter = model.forward_intermediates(x)
    words = inter["tokens"][0].tolist()
    assert words, "the untrained captioner should still emit a few words"
    targets, forward = caption_targets(model, x, vocab.tokens, start=vocab.tokens.index("<start>"))
    assert [t.index for t in targets] == words and [t.label for t in targets] == [vocab.tokens[w] for w in words]
    result = grad_cam(model, x, targets, forward=forward)
    layer = result.layer
    assert layer.startswith("encoder.")
    fed = torch.tensor([[vocab.tokens.index("<start>"), *words]])
    for k, m in enumerate(result.maps):
        assert m.position == k
        assert m.score == pytest.approx(float(greedy_logits[0, k, words[k]]), abs=1e-4)

        def score(o, k: int = k, w: int = m.index) -> torch.Tensor:  # noqa: ANN001
            return o[0][0, k, w]

        ref = _reference(_Teacher(model, fed), f"model.{layer}", x, score)
        np.testing.assert_allclose(m.cam, ref, atol=TOL)


class _Teacher(nn.Module):
    def __init__(self, model: nn.Module, fed: torch.Tensor) -> None:
        super().__init__()
        self.model, self.fed = model, fed

    def forward(self, x: torch.Tensor):  # noqa: ANN201
        return self.model(x, self.fed)


@pytest.mark.parametrize(
    ("arch", "params", "size", "channels"),
    [
        ("patch_rnn", {"tile": 8, "hidden_size": 16, "channels": "8,8"}, (32, 32), 1),
        ("conv_rnn", {"cell": "gru", "hidden_channels": "6", "stem": 8, "step": 8, "split": "tiles"}, (32, 32), 1),
        ("backbone", {"arch": "resnet18"}, (64, 64), 3),
    ],
)
def test_every_conv_family_gets_a_map_at_the_input_resolution(arch, params, size, channels) -> None:  # noqa: ANN001
    torch.manual_seed(5)
    model = build_model(arch, in_channels=channels, num_outputs=3, image_size=size, **params)
    x = _image(*size, c=channels, seed=5)
    _trained_a_little(model, x)
    with torch.no_grad():
        out = model(x)
    result = grad_cam(model, x, class_targets(out, ["a", "b", "c"]))
    info = model.intermediate_info(size)
    assert info[result.layer].kind == "feature_map"
    (m,) = result.maps
    assert m.cam.shape == size and 0 <= m.cam.min() and 0 < m.cam.max() <= 1
    assert result.raw[0].max() == pytest.approx(1.0)


def test_patch_rnn_mosaic_equals_per_tile_gradients_laid_out() -> None:
    """The mosaic's gradient is the per-tile module output's gradient at each tile's place."""
    torch.manual_seed(6)
    model = build_model("patch_rnn", in_channels=1, num_outputs=3, image_size=(16, 24), tile=8, channels="4")
    x = _image(16, 24, seed=6)
    _trained_a_little(model, x)
    with torch.no_grad():
        out = model(x)
    result = grad_cam(model, x, class_targets(out, ["a", "b", "c"], target=1))
    assert result.layer == "cnn.0"
    caught: list[torch.Tensor] = []
    handle = model.cnn[0].register_forward_hook(lambda m, i, o: caught.append(o))
    score = model(x)[0, 1]
    handle.remove()
    (tiles,) = caught  # (rows * cols, C, 4, 4) = (6, 4, 4, 4)
    (g,) = torch.autograd.grad(score, tiles)

    def lay(t: torch.Tensor) -> torch.Tensor:  # (6, C, 4, 4) -> (C, 8, 12), written out by hand
        rows = [torch.cat([t[r * 3 + c] for c in range(3)], dim=-1) for r in range(2)]
        return torch.cat(rows, dim=-2)

    act, grad = lay(tiles.detach()), lay(g)
    cam = torch.relu((grad.mean(dim=(1, 2), keepdim=True) * act).sum(0)).numpy()
    cam = cam / cam.max()
    np.testing.assert_allclose(result.raw[0], cam, atol=TOL)


def test_a_model_without_a_feature_map_is_refused() -> None:
    model = build_model("rnn", in_channels=1, num_outputs=3, image_size=(16, 16))
    x = _image(16, 16)
    with torch.no_grad():
        out = model(x)
    with pytest.raises(ValueError, match="no spatial feature map"):
        grad_cam(model, x, class_targets(out, ["a", "b", "c"]))
    with pytest.raises(ValueError, match="not one of the classes"):
        class_targets(out, ["a", "b", "c"], target="d")


def test_targets_follow_the_declared_output_kind() -> None:
    torch.manual_seed(7)
    cnn = build_model("cnn", in_channels=1, num_outputs=3, image_size=(16, 16), channels="4").eval()
    x = _image(16, 16)
    (t,), fwd = targets_for(cnn, x, ["a", "b", "c"], target="c")
    assert (t.label, t.index, fwd) == ("c", 2, None)
    ctc = build_model("crnn", in_channels=1, num_outputs=4, image_size=(32, None), channels="8,16", head="ctc").eval()
    xc = _image(32, 40)
    targets, fwd = targets_for(ctc, xc, list("abc"))
    assert fwd is None and all(t.frames is not None for t in targets)
    with pytest.raises(ValueError, match="applies to class scores"):
        targets_for(ctc, xc, list("abc"), target="a")
    cap = build_model(
        "captioner", in_channels=1, num_outputs=8, image_size=(32, 32), channels="8,16", embed_dim=8,
        hidden_size=16, attention_dim=8,
    ).eval()  # fmt: skip
    with pytest.raises(ValueError, match="START token"):
        targets_for(cap, _image(32, 32), [str(i) for i in range(8)])
    targets, fwd = targets_for(cap, _image(32, 32), [str(i) for i in range(8)], start=1)
    assert fwd is not None and [t.position for t in targets] == list(range(len(targets)))


def test_explain_image_of_a_saved_run(tmp_path) -> None:  # noqa: ANN001
    from explorer.engine import RunConfig, Trainer, load_run
    from tests.datasets import write_two_class_folder

    data = write_two_class_folder(tmp_path / "data", n=12, size=16)
    cfg = RunConfig(arch="cnn", params={"channels": "4,8"})
    cfg.data.source = str(data)
    cfg.train.epochs = 1
    list(Trainer(cfg, tmp_path / "run").run())
    run = load_run(tmp_path / "run")
    path = sorted(data.rglob("*.png"))[0]
    result = explain_image(run, path, target=run.labels[1])
    (m,) = result.maps
    assert m.label == run.labels[1] and m.cam.shape == (16, 16) and result.layer == "features.1"
    x = run.preprocess([path])
    ref = _reference(run.model, "features.1", x, lambda o: o[0, 1])
    np.testing.assert_allclose(m.cam, ref, atol=TOL)


def test_live_probes_carry_the_grad_cam_of_the_epoch_weights(tmp_path) -> None:  # noqa: ANN001
    from explorer.engine import ProbeReport, RunConfig, Trainer, load_run
    from explorer.engine.replay import load_snapshot
    from tests.datasets import write_two_class_folder

    data = write_two_class_folder(tmp_path / "data", n=12, size=16)
    cfg = RunConfig(arch="cnn", params={"channels": "4,8"})
    cfg.data.source = str(data)
    cfg.train.epochs = 1
    cfg.train.probe_interval = 3600.0  # the epoch-end probe only
    (p,) = [e for e in Trainer(cfg, tmp_path / "run").run() if isinstance(e, ProbeReport)]
    d = p.info["gradcam"]
    assert d["kind"] == "gradcam" and d["layer"] == "features.1" and d["axes"] == ["target", "y", "x"]
    run = load_run(tmp_path / "run")  # one epoch: the kept weights are the probed ones
    expected = explain_image(run, p.image)
    assert d["extra"]["labels"] == [m.label for m in expected.maps] and len(d["extra"]["labels"]) == 1
    np.testing.assert_allclose(p.intermediates["gradcam"], np.stack([m.cam for m in expected.maps]), atol=TOL)
    assert p.intermediates["gradcam"].shape == (1, 16, 16)
    (r,) = load_snapshot(tmp_path / "run", 1).reports  # replayed with the rest
    assert r.info["gradcam"] == d
    np.testing.assert_allclose(r.intermediates["gradcam"], p.intermediates["gradcam"], atol=1e-3)


def test_probe_gradcam_per_character_and_none_without_feature_maps() -> None:
    torch.manual_seed(8)
    ctc = build_model("crnn", in_channels=1, num_outputs=4, image_size=(32, None), channels="8,16", head="ctc").eval()
    x = _image(32, 40, seed=8)
    with torch.no_grad():
        out, inter = ctc.forward_intermediates(x)
    maps, d = probe_gradcam(ctc, x, out, inter, list("abc"))
    targets = ctc_targets(out, list("abc"))
    assert maps.shape == (len(targets), 32, 40) and d["extra"]["labels"] == [t.label for t in targets]
    assert d["extra"]["frames"] == [list(t.frames) for t in targets]
    rnn = build_model("rnn", in_channels=1, num_outputs=3, image_size=(16, 16)).eval()
    with torch.no_grad():
        out, inter = rnn.forward_intermediates(_image(16, 16))
    assert probe_gradcam(rnn, _image(16, 16), out, inter, ["a", "b", "c"]) is None
