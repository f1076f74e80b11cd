"""Family ``crnn``."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models import ParamError, build_model


@pytest.mark.parametrize(
    ("channels", "h", "w", "params"),
    [
        (1, 32, 32, {}),
        (3, 64, 64, {}),
        (3, 32, 128, {"channels": "16,32,64,64", "width_pools": 2, "cell": "gru", "num_layers": 2}),
        (1, 48, 40, {"width_pools": 0, "bidirectional": False, "pool": "mean", "cell": "rnn"}),
        (3, 16, 16, {"channels": "8,8", "width_pools": 1, "pool": "max", "hidden_size": 10}),
    ],
)
def test_shapes_and_intermediates(channels, h, w, params, check_intermediates) -> None:
    net = build_model("crnn", in_channels=channels, num_outputs=6, image_size=(h, w), **params)
    p = net.params
    x = torch.randn(2, channels, h, w)
    feats = check_intermediates(net, x)
    assert net(x).shape == (2, 6)
    hh, ww = h, w
    for i, ch in enumerate(p.channels):
        hh, ww = hh // 2, (ww // 2 if i < p.width_pools else ww)
        assert feats[f"cnn.{i}"].shape == (2, ch, hh, ww)
    dirs = ["fwd", "bwd"] if p.bidirectional else ["fwd"]
    rnn_keys = [k for k in feats if k.startswith("rnn.")]
    assert rnn_keys == [f"rnn.{i}:{d}" for i in range(p.num_layers) for d in dirs]
    for k in rnn_keys:
        assert feats[k].shape == (2, ww, p.hidden_size)  # one step per feature column


def test_default_keeps_a_long_sequence() -> None:
    """The paper's (2,2), (2,2), (2,1) pooling: a 32x32 image gives 8 columns of 4 rows."""
    net = build_model("crnn", in_channels=1, num_outputs=2, image_size=(32, 32)).eval()
    _, feats = net.forward_intermediates(torch.randn(1, 1, 32, 32))
    assert feats["cnn.2"].shape[-2:] == (4, 8)
    assert net.encode(torch.randn(1, 1, 32, 32)).shape == (1, 8, 2 * net.params.hidden_size)


def test_variable_width() -> None:
    net = build_model("crnn", in_channels=1, num_outputs=3, image_size=(32, None)).eval()
    for w in (16, 37, 100, 200):
        y, feats = net.forward_intermediates(torch.randn(2, 1, 32, w))
        assert y.shape == (2, 3)
        assert feats["rnn.0:fwd"].shape[1] == w // 4


def test_columns_are_the_time_steps() -> None:
    net = build_model("crnn", in_channels=1, num_outputs=2, image_size=(32, 32), bidirectional=False).eval()
    x = torch.randn(1, 1, 32, 32)
    x2 = x.clone()
    x2[..., -4:] += 1.0  # only the right edge changes: forward states of the left columns have not seen it
    _, a = net.forward_intermediates(x)
    _, b = net.forward_intermediates(x2)
    assert torch.allclose(a["rnn.0:fwd"][:, :4], b["rnn.0:fwd"][:, :4])
    assert not torch.allclose(a["rnn.0:fwd"][:, -1], b["rnn.0:fwd"][:, -1])


def test_columns_flatten_channels_and_rows() -> None:
    f = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)  # (B, C, H, W)
    seq = build_model("crnn", in_channels=1, num_outputs=2, image_size=(32, 32)).columns(f)
    assert seq.shape == (2, 5, 12)
    assert torch.equal(seq[1, 2], f[1, :, :, 2].reshape(-1))


def test_module_layout() -> None:
    net = build_model("crnn", in_channels=3, num_outputs=2, image_size=(32, 32), num_layers=2, cell="gru")
    assert [n for n, _ in net.named_children()] == ["cnn", "rnn", "head"]
    mods = dict(net.named_modules())
    assert type(mods["rnn.0"]) is nn.GRU and type(mods["rnn.1"]) is nn.GRU
    assert mods["rnn.1"].input_size == 2 * net.params.hidden_size


def test_shape_errors_name_the_parameter() -> None:
    with pytest.raises(ParamError) as e:
        build_model("crnn", in_channels=1, num_outputs=2, image_size=(4, 64))
    assert e.value.param == "channels" and "8 px high, got 4" in str(e.value)
    with pytest.raises(ParamError) as e:
        build_model("crnn", in_channels=1, num_outputs=2, image_size=(32, 2))
    assert e.value.param == "width_pools" and "4 px wide, got 2" in str(e.value)
    with pytest.raises(ParamError) as e:
        build_model("crnn", in_channels=1, num_outputs=2, image_size=(32, 32), channels="8,8", width_pools=3)
    assert e.value.param == "width_pools" and "[0, 2]" in str(e.value)
    with pytest.raises(ParamError) as e:
        build_model("crnn", in_channels=1, num_outputs=2, image_size=(32, 32), dropout=0.2)
    assert e.value.param == "dropout"


def test_it_learns(two_class_images, train_losses) -> None:
    x, y = two_class_images(channels=3, size=32)
    net = build_model("crnn", in_channels=3, num_outputs=2, image_size=(32, 32))
    losses = train_losses(net, x, y)
    assert losses[-1] < losses[0] / 2, losses


@pytest.mark.filterwarnings("ignore:The tensor attributes:UserWarning")
def test_torch_export_matches_eager() -> None:
    net = build_model("crnn", in_channels=1, num_outputs=3, image_size=(32, 32)).eval()
    x = torch.randn(2, 1, 32, 32)
    ep = torch.export.export(net, (x,))
    assert torch.allclose(ep.module()(x), net(x), atol=1e-5)
