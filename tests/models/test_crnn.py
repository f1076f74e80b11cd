"""Family ``crnn``."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models import ParamError, build_model, list_models
from models._recurrent import GATES


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
    states = [f"rnn.{i}:{d}" for i in range(p.num_layers) for d in dirs]
    gates = [f"{s}:{g}" for s in states for g in GATES[p.cell]]
    rnn_keys = [k for k in feats if k.startswith("rnn.")]
    assert sorted(rnn_keys) == sorted(states + gates)
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


# -- the CTC head ------------------------------------------------------------------------------


def test_crnn_reads_sequences() -> None:
    assert "crnn" in list_models("sequence") and "crnn" in list_models("classify")
    with pytest.raises(ParamError) as e:
        build_model("crnn", in_channels=1, num_outputs=2, image_size=(32, 32), head="attention")
    assert e.value.param == "head"


@pytest.mark.parametrize(
    "params",
    [{}, {"cell": "gru", "num_layers": 2, "head_dropout": 0.1}, {"bidirectional": False, "width_pools": 3}],
)
def test_ctc_head_gives_per_frame_logits(params, check_intermediates) -> None:
    net = build_model("crnn", in_channels=1, num_outputs=11, image_size=(32, None), head="ctc", **params)
    for w in (40, 57, 128):
        x = torch.randn(2, 1, 32, w)
        feats = check_intermediates(net, x)
        y = net(x)
        frames = w // 2**net.params.width_pools
        assert y.shape == (2, frames, 11)  # (B, T, charset + blank)
        assert feats["rnn.0:fwd"].shape[1] == frames
        assert net.output_lengths(torch.tensor([w])).tolist() == [frames]


def test_ctc_default_suits_32px_text_lines() -> None:
    """'3 1 4 1 5': 3-5 handwritten digits, 100-160 px wide at 32 px high -> T = W / 4 frames."""
    net = build_model("crnn", in_channels=1, num_outputs=11, image_size=(32, None), head="ctc").eval()
    assert net(torch.randn(1, 1, 32, 100)).shape[1] == 25
    assert net.output_lengths(torch.tensor([100, 160])).tolist() == [25, 40]


@pytest.mark.parametrize(
    ("channels", "width_pools"), [("32,64,128", 2), ("8,8,8,8", 3), ("8,8", 0), ("8,8,8", 1), ("8,8,8,8,8", 5)]
)
def test_output_lengths_match_the_real_output_widths(channels, width_pools) -> None:
    kw = {"head": "ctc", "channels": channels, "width_pools": width_pools, "hidden_size": 4}
    net = build_model("crnn", in_channels=1, num_outputs=3, image_size=(32, None), **kw).eval()
    widths = list(range(2**width_pools, 2**width_pools + 40)) + [127, 128, 129, 255, 301]
    lengths = net.output_lengths(torch.tensor(widths)).tolist()
    with torch.no_grad():
        real = [net.cnn(torch.zeros(1, 1, 32, w)).shape[-1] for w in widths]
    assert lengths == real
    assert net.output_lengths(torch.tensor([2**width_pools - 1])).tolist() == [0]  # too narrow: no frame


def test_padding_reaches_valid_frames_only_through_the_conv_receptive_field() -> None:
    """A right-padded image's valid frames equal the image alone's, except the last few (3x3 convs)."""
    net = build_model(
        "crnn", in_channels=1, num_outputs=5, image_size=(32, None), head="ctc", bidirectional=False
    ).eval()
    img = torch.randn(1, 1, 32, 64)
    batch = torch.cat([img, torch.randn(1, 1, 32, 64)], dim=-1)  # padded with noise to 128 px
    with torch.no_grad():
        alone, padded = net(img), net(batch)
    frames = int(net.output_lengths(torch.tensor([64]))[0])
    assert alone.shape[1] == frames == 16
    assert torch.allclose(alone[:, : frames - 3], padded[:, : frames - 3], atol=1e-5)


def test_widths_pack_the_padding_away() -> None:
    """model(x, widths): no direction reads padding, so padding beyond the receptive field changes nothing;
    model(x): the backward direction starts in the padding."""
    net = build_model("crnn", in_channels=1, num_outputs=5, image_size=(32, None), head="ctc").eval()
    x = torch.randn(2, 1, 32, 128)
    x2 = x.clone()
    x2[0, ..., 100:] = torch.randn(32, 28)  # image 0 is 64 px wide: columns 100+ are far outside its frames
    widths = torch.tensor([64, 128])
    with torch.no_grad():
        packed, packed2 = net(x, widths), net(x2, widths)
        plain, plain2 = net(x), net(x2)
        inter, feats = net.forward_intermediates(x, widths)
    assert torch.allclose(packed[0, :16], packed2[0, :16], atol=1e-5)
    assert not torch.allclose(plain[0, :16], plain2[0, :16], atol=1e-4)
    assert torch.allclose(inter, packed, atol=1e-6)
    assert (feats["rnn.0:bwd"][0, 16:] == 0).all() and (feats["rnn.0:bwd:gate_i"][0, 16:] == 0).all()
    assert torch.allclose(packed[1], plain[1], atol=1e-5)  # a full-width image is unaffected


def test_classify_with_widths_pools_valid_frames() -> None:
    net = build_model("crnn", in_channels=1, num_outputs=3, image_size=(32, None), pool="mean").eval()
    x = torch.randn(2, 1, 32, 96)
    with torch.no_grad():
        y = net(x, torch.tensor([40, 96]))
        alone = net(x[:1, ..., :40])
    assert y.shape == (2, 3)
    assert torch.allclose(y[0], alone[0], atol=1e-2)  # equal up to the conv receptive field at the edge


def test_ctc_it_learns(train_losses) -> None:
    """Two-character texts from {a, b}, one character per image half: CTC loss halves."""
    torch.manual_seed(0)
    n, w = 32, 32
    labels = torch.randint(1, 3, (n, 2))  # classes 1, 2 (0 is the blank)
    x = torch.randn(n, 1, 16, w) * 0.3
    for i in range(n):
        for j in range(2):
            half = slice(j * w // 2, (j + 1) * w // 2)
            x[i, :, : 8 if labels[i, j] == 1 else 16, half] += 1.0
    net = build_model(
        "crnn", in_channels=1, num_outputs=3, image_size=(16, None), head="ctc", channels="8,16", hidden_size=16
    )
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    frames = net.output_lengths(torch.full((n,), w))
    losses = []
    net.train()
    for _ in range(40):
        lp = net(x).log_softmax(-1).transpose(0, 1)  # (T, B, C)
        loss = torch.nn.functional.ctc_loss(lp, labels, frames, torch.full((n,), 2), blank=0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 2, losses


@pytest.mark.filterwarnings("ignore:The tensor attributes:UserWarning")
def test_ctc_torch_export_matches_eager() -> None:
    net = build_model("crnn", in_channels=1, num_outputs=5, image_size=(32, None), head="ctc").eval()
    x = torch.randn(2, 1, 32, 64)
    ep = torch.export.export(net, (x,))
    assert torch.allclose(ep.module()(x), net(x), atol=1e-5)
