"""Family ``rnn`` and the shared recurrent stack."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models import ParamError, build_model
from models._recurrent import GATES
from models.rnn import RecurrentStack, pool_sequence

CELL_MODULES = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


@pytest.mark.parametrize(
    ("channels", "h", "w", "params"),
    [
        (1, 32, 32, {}),
        (3, 64, 64, {"cell": "gru", "bidirectional": False}),
        (1, 28, 20, {"cell": "rnn", "num_layers": 3, "dropout": 0.2, "pool": "mean"}),
        (3, 16, 24, {"num_layers": 2, "pool": "max", "proj": 16, "hidden_size": 12}),
    ],
)
def test_shapes_and_intermediates(channels, h, w, params, check_intermediates) -> None:
    net = build_model("rnn", in_channels=channels, num_outputs=5, image_size=(h, w), **params)
    p = net.params
    x = torch.randn(2, channels, h, w)
    feats = check_intermediates(net, x)
    assert net(x).shape == (2, 5)
    dirs = ["fwd", "bwd"] if p.bidirectional else ["fwd"]
    states = [f"rnn.{i}:{d}" for i in range(p.num_layers) for d in dirs]
    gates = [f"{s}:{g}" for s in states for g in GATES[p.cell]]
    assert sorted(feats) == sorted(states + gates)
    for t in feats.values():
        assert t.shape == (2, h, p.hidden_size)  # one step per image row
    _, no_gates = net.forward_intermediates(x, gates=False)
    assert list(no_gates) == states


def test_height_may_vary_width_is_fixed() -> None:
    net = build_model("rnn", in_channels=1, num_outputs=3, image_size=(32, 32)).eval()
    for h in (8, 32, 50):
        assert net(torch.randn(2, 1, h, 32)).shape == (2, 3)
    with pytest.raises(ParamError) as e:
        build_model("rnn", in_channels=1, num_outputs=3, image_size=(32, None))
    assert e.value.param == "image_size"


def test_rows_are_the_time_steps() -> None:
    """Step t sees row t of every channel: changing only the last row leaves earlier forward states alone."""
    net = build_model("rnn", in_channels=3, num_outputs=2, image_size=(10, 6), bidirectional=False).eval()
    x = torch.randn(1, 3, 10, 6)
    x2 = x.clone()
    x2[:, :, -1] += 1.0
    _, a = net.forward_intermediates(x)
    _, b = net.forward_intermediates(x2)
    assert torch.allclose(a["rnn.0:fwd"][:, :-1], b["rnn.0:fwd"][:, :-1])
    assert not torch.allclose(a["rnn.0:fwd"][:, -1], b["rnn.0:fwd"][:, -1])


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_stack_equals_multi_layer_module(cell, bidirectional) -> None:
    stack = RecurrentStack(cell, 7, 5, 3, bidirectional, dropout=0.0)
    ref = CELL_MODULES[cell](7, 5, num_layers=3, batch_first=True, bidirectional=bidirectional)
    ref_params = dict(ref.named_parameters())
    with torch.no_grad():
        for i, layer in enumerate(stack):
            for name, w in layer.named_parameters():  # weight_ih_l0[_reverse] -> weight_ih_l{i}[_reverse]
                w.copy_(ref_params[name.replace("_l0", f"_l{i}")])
    x = torch.randn(4, 9, 7)
    out, layers = stack(x)
    ref_out, h_n = ref(x)
    h_n = h_n[0] if cell == "lstm" else h_n
    assert torch.allclose(out, ref_out, atol=1e-6)
    assert len(layers) == 3 and layers[-1] is out
    # pool "last" is the last layer's h_n (both directions)
    last = pool_sequence(out, "last", 5, bidirectional)
    expect = torch.cat([h_n[-2], h_n[-1]], dim=-1) if bidirectional else h_n[-1]
    assert torch.allclose(last, expect, atol=1e-6)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_backward_direction_split(cell) -> None:
    stack = RecurrentStack(cell, 4, 6, 1, bidirectional=True)
    layer = stack[0]
    uni = CELL_MODULES[cell](4, 6, batch_first=True)
    with torch.no_grad():
        for name, w in uni.named_parameters():
            w.copy_(getattr(layer, name + "_reverse"))
    x = torch.randn(3, 8, 4)
    out, _ = stack(x)
    dirs = stack.split_directions(out)
    assert dirs["fwd"].shape == dirs["bwd"].shape == (3, 8, 6)
    rev, _ = uni(x.flip(1))
    assert torch.allclose(dirs["bwd"][:, 0], rev[:, -1], atol=1e-6)  # bwd at t=0 has read the whole sequence
    assert torch.allclose(dirs["bwd"], rev.flip(1), atol=1e-6)


def test_dropout_only_between_layers_and_only_in_training() -> None:
    stack = RecurrentStack("gru", 4, 8, 2, False, dropout=0.5)
    x = torch.randn(2, 5, 4)
    stack.eval()
    a, _ = stack(x)
    stack.dropout = 0.0
    b, _ = stack(x)
    assert torch.equal(a, b)
    stack.dropout = 0.5
    stack.train()
    c, layers = stack(x)
    assert not torch.allclose(a, c)
    assert torch.allclose(layers[0], stack[0](x)[0])  # the first layer reads the input undropped
    assert [n for n, _ in stack.named_children()] == ["0", "1"]


def test_dropout_needs_two_layers() -> None:
    with pytest.raises(ParamError) as e:
        build_model("rnn", in_channels=1, num_outputs=2, image_size=(32, 32), dropout=0.3)
    assert e.value.param == "dropout" and "num_layers" in str(e.value)


def test_layers_are_plain_single_layer_torch_modules() -> None:
    net = build_model("rnn", in_channels=1, num_outputs=2, image_size=(16, 16), num_layers=2, cell="gru")
    for name in ("rnn.0", "rnn.1"):
        m = dict(net.named_modules())[name]
        assert type(m) is nn.GRU and m.num_layers == 1 and m.batch_first


def test_it_learns(two_class_images, train_losses) -> None:
    x, y = two_class_images(channels=1, size=32)
    net = build_model("rnn", in_channels=1, num_outputs=2, image_size=(32, 32))
    losses = train_losses(net, x, y)
    assert losses[-1] < losses[0] / 2, losses


# torch warns about nn.RNNBase's _flat_weights for every exported recurrent module, ours or not.
@pytest.mark.filterwarnings("ignore:The tensor attributes:UserWarning")
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_torch_export_matches_eager(cell) -> None:
    net = build_model("rnn", in_channels=1, num_outputs=3, image_size=(16, 16), cell=cell).eval()
    x = torch.randn(2, 1, 16, 16)
    ep = torch.export.export(net, (x,))
    assert torch.allclose(ep.module()(x), net(x), atol=1e-5)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_probe_gates_reproduce_the_states(cell) -> None:
    """The gates a probe shows, put into the cell's equations, give the states nn.LSTM/GRU/RNN returned."""
    net = build_model("rnn", in_channels=1, num_outputs=2, image_size=(12, 10), cell=cell, hidden_size=8).eval()
    with torch.no_grad():
        _, feats = net.forward_intermediates(torch.randn(2, 1, 12, 10))
    for d in ("fwd", "bwd"):
        h = feats[f"rnn.0:{d}"]
        if cell == "lstm":
            assert torch.allclose(h, feats[f"rnn.0:{d}:gate_o"] * torch.tanh(feats[f"rnn.0:{d}:cell"]), atol=1e-5)
        elif cell == "gru":
            z, n = feats[f"rnn.0:{d}:gate_z"], feats[f"rnn.0:{d}:gate_n"]
            step = 1 if d == "fwd" else -1  # the backward direction's previous state is at t + 1
            prev = torch.roll(h, step, dims=1)
            prev[:, 0 if d == "fwd" else -1] = 0
            assert torch.allclose(h, (1 - z) * n + z * prev, atol=1e-5)
        else:
            assert torch.allclose(h, torch.tanh(feats[f"rnn.0:{d}:preact"]), atol=1e-5)
