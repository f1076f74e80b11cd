"""Family ``cnn``."""

from __future__ import annotations

import pytest
import torch

from models import ParamError, build_model
from models._base import ACTIVATIONS


@pytest.mark.parametrize(
    ("channels", "h", "w", "params"),
    [
        (1, 32, 32, {}),
        (3, 64, 64, {}),
        (3, 128, 96, {"channels": "16,32,32,64"}),
        (1, 28, 28, {"head": "flatten", "hidden": 32}),
        (3, 64, 48, {"pool": "avg", "convs_per_block": 2, "kernel_size": 5}),
        (1, 20, 24, {"pool": "none", "channels": "8,8", "head": "flatten", "batch_norm": False}),
    ],
)
def test_shapes_and_intermediates(channels, h, w, params, check_intermediates) -> None:
    net = build_model("cnn", in_channels=channels, num_outputs=7, image_size=(h, w), **params)
    x = torch.randn(3, channels, h, w)
    feats = check_intermediates(net, x)
    assert net(x).shape == (3, 7)
    chans = net.params.channels
    assert list(feats) == [f"features.{i}" for i in range(len(chans))]
    for i, ch in enumerate(chans):
        s = 1 if net.params.pool == "none" else 2 ** (i + 1)
        assert feats[f"features.{i}"].shape == (3, ch, h // s, w // s)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_runs(activation, check_intermediates) -> None:
    net = build_model(
        "cnn", in_channels=1, num_outputs=2, image_size=(16, 16), channels="4,8", activation=activation, hidden=8
    )
    check_intermediates(net, torch.randn(2, 1, 16, 16))


@pytest.mark.parametrize("kernel", [3, 5, 7])
def test_kernel_sizes_keep_spatial_size(kernel) -> None:
    net = build_model("cnn", in_channels=3, num_outputs=2, image_size=(24, 24), kernel_size=kernel, pool="none")
    _, feats = net.eval().forward_intermediates(torch.randn(1, 3, 24, 24))
    assert feats["features.2"].shape[-2:] == (24, 24)


def test_gap_head_accepts_variable_width() -> None:
    net = build_model("cnn", in_channels=1, num_outputs=4, image_size=(32, None)).eval()
    for w in (32, 57, 120):
        assert net(torch.randn(2, 1, 32, w)).shape == (2, 4)


def test_dropout_layers_are_present_and_inactive_in_eval(check_intermediates) -> None:
    net = build_model("cnn", in_channels=1, num_outputs=2, image_size=(16, 16), dropout=0.3, head_dropout=0.5)
    assert any(isinstance(m, torch.nn.Dropout2d) for m in net.features.modules())
    x = torch.randn(4, 1, 16, 16)
    check_intermediates(net, x)
    assert torch.equal(net.eval()(x), net(x))


def test_too_many_pooling_stages_names_pool() -> None:
    with pytest.raises(ParamError) as e:
        build_model("cnn", in_channels=1, num_outputs=2, image_size=(8, 32), channels="8,8,8,8")
    assert e.value.param == "pool"
    assert "4 pooling stages need an image at least 16 px high, got 8" in str(e.value)
    with pytest.raises(ParamError, match="16 px wide, got 12"):
        build_model("cnn", in_channels=1, num_outputs=2, image_size=(32, 12), channels="8,8,8,8")
    # without pooling any size works
    build_model("cnn", in_channels=1, num_outputs=2, image_size=(8, 8), channels="8,8,8,8", pool="none")


def test_flatten_head_needs_width_and_sane_size() -> None:
    with pytest.raises(ParamError) as e:
        build_model("cnn", in_channels=1, num_outputs=2, image_size=(32, None), head="flatten")
    assert e.value.param == "head"
    with pytest.raises(ParamError, match="features"):
        build_model("cnn", in_channels=3, num_outputs=2, image_size=(512, 512), head="flatten", pool="none")


def test_module_names() -> None:
    net = build_model("cnn", in_channels=1, num_outputs=2, image_size=(32, 32))
    names = dict(net.named_children())
    assert set(names) == {"features", "head"}
    assert [n for n, _ in net.features.named_children()] == ["0", "1", "2"]


def test_batch_norm_drops_conv_bias() -> None:
    with_bn = build_model("cnn", in_channels=1, num_outputs=2, image_size=(16, 16), channels="4")
    without = build_model("cnn", in_channels=1, num_outputs=2, image_size=(16, 16), channels="4", batch_norm=False)
    assert with_bn.features[0][0].bias is None and without.features[0][0].bias is not None
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in without.modules())


def test_it_learns(two_class_images, train_losses) -> None:
    x, y = two_class_images(channels=1, size=32)
    net = build_model("cnn", in_channels=1, num_outputs=2, image_size=(32, 32))
    losses = train_losses(net, x, y)
    assert losses[-1] < losses[0] / 2, losses


def test_torch_export_matches_eager() -> None:
    net = build_model("cnn", in_channels=3, num_outputs=5, image_size=(32, 32)).eval()
    x = torch.randn(2, 3, 32, 32)
    ep = torch.export.export(net, (x,))
    assert torch.allclose(ep.module()(x), net(x), atol=1e-5)
