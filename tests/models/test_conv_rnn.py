"""Family ``conv_rnn`` and its convolutional recurrent cells."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from models import ParamError, build_model
from models.conv_rnn import CONV_CELLS, ConvGRUCell, ConvLSTMCell, ConvRNNCell

TORCH_LAYERS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


def _copy_into_1x1(cell: nn.Module, layer: nn.RNNBase) -> None:
    """Give a kernel-1 conv cell the weights of a single-layer torch module."""
    with torch.no_grad():
        cell.input_conv.weight.copy_(layer.weight_ih_l0[:, :, None, None])
        cell.input_conv.bias.copy_(layer.bias_ih_l0)
        cell.hidden_conv.weight.copy_(layer.weight_hh_l0[:, :, None, None])
        cell.hidden_conv.bias.copy_(layer.bias_hh_l0)


@pytest.mark.parametrize("cell", list(CONV_CELLS))
def test_kernel_1_cells_are_torch_cells_at_every_pixel(cell) -> None:
    """With 1x1 kernels a conv cell is PyTorch's RNN/GRU/LSTM run independently at every pixel:
    same equations, same gate order."""
    conv = CONV_CELLS[cell](3, 5, kernel_size=1)
    ref = TORCH_LAYERS[cell](3, 5, batch_first=True)
    _copy_into_1x1(conv, ref)
    xs = torch.randn(2, 6, 3, 4, 5)  # (B, T, C, h, w)
    with torch.no_grad():
        hs, gates = conv.sequence(xs, gates=True)
        per_pixel = xs.permute(0, 3, 4, 1, 2).reshape(2 * 4 * 5, 6, 3)  # (B*h*w, T, C)
        out, h_n = ref(per_pixel)
    out = out.reshape(2, 4, 5, 6, 5).permute(0, 3, 4, 1, 2)  # (B, T, Hc, h, w)
    assert torch.allclose(hs, out, atol=1e-5)
    assert set(gates) == set(conv.gate_names)
    for v in gates.values():
        assert v.shape == hs.shape
    if cell == "lstm":
        c_n = h_n[1].reshape(2, 4, 5, 5).permute(0, 3, 1, 2)
        assert torch.allclose(gates["cell"][:, -1], c_n, atol=1e-5)


def test_conv_rnn_cell_is_the_formula() -> None:
    """h_t = tanh(W_h * h_{t-1} + W_x * x_t + b), * a 3x3 convolution."""
    cell = ConvRNNCell(2, 4, kernel_size=3)
    x1, x2 = torch.randn(1, 2, 6, 7), torch.randn(1, 2, 6, 7)
    with torch.no_grad():
        h1, s = cell(x1)
        h2, _ = cell(x2, s)
        ix, hx = cell.input_conv, cell.hidden_conv
        e1 = torch.tanh(F.conv2d(x1, ix.weight, ix.bias, padding=1) + hx.bias[:, None, None])
        e2 = torch.tanh(F.conv2d(x2, ix.weight, ix.bias, padding=1) + F.conv2d(e1, hx.weight, hx.bias, padding=1))
    assert torch.allclose(h1, e1, atol=1e-6) and torch.allclose(h2, e2, atol=1e-6)


@pytest.mark.parametrize("cls", [ConvRNNCell, ConvGRUCell, ConvLSTMCell])
def test_one_step_equals_the_sequence(cls) -> None:
    cell = cls(3, 4, kernel_size=5)
    xs = torch.randn(2, 3, 3, 8, 6)
    with torch.no_grad():
        hs, _ = cell.sequence(xs)
        state = None
        for t in range(3):
            h, state = cell(xs[:, t], state)
            assert torch.allclose(h, hs[:, t], atol=1e-6)
    assert hs.shape == (2, 3, 4, 8, 6)


def test_lstm_gates_obey_the_equations() -> None:
    cell = ConvLSTMCell(2, 3)
    with torch.no_grad():
        hs, g = cell.sequence(torch.randn(1, 4, 2, 5, 5), gates=True)
    c_prev = torch.cat([torch.zeros_like(g["cell"][:, :1]), g["cell"][:, :-1]], dim=1)
    assert torch.allclose(g["cell"], g["gate_f"] * c_prev + g["gate_i"] * g["gate_g"], atol=1e-6)
    assert torch.allclose(hs, g["gate_o"] * torch.tanh(g["cell"]), atol=1e-6)


def test_even_kernels_are_refused() -> None:
    with pytest.raises(ValueError, match="odd"):
        ConvGRUCell(1, 2, kernel_size=2)


@pytest.mark.parametrize(
    ("channels", "h", "w", "params"),
    [
        (1, 32, 32, {}),
        (3, 32, 24, {"cell": "lstm", "hidden_channels": "8,8", "step": 8}),
        (1, 21, 15, {"step": 5, "hidden_channels": "4"}),  # odd strips: the stem pool rounds up
        (1, 30, 27, {"split": "tiles", "step": 8, "cell": "rnn", "kernel_size": 5}),  # padded edges
        (1, 20, 20, {"stem": 0, "step": 5, "hidden_channels": "6", "kernel_size": 1}),
        (3, 16, 16, {"stem_pool": False, "stem": 4, "head_dropout": 0.2, "hidden_channels": "6"}),
    ],
)
def test_shapes_and_intermediates(channels, h, w, params, check_intermediates) -> None:
    net = build_model("conv_rnn", in_channels=channels, num_outputs=4, image_size=(h, w), **params)
    p = net.params
    x = torch.randn(2, channels, h, w)
    feats = check_intermediates(net, x)
    assert net(x).shape == (2, 4)
    rows = -(-h // p.step)
    cols = -(-w // p.step) if p.split == "tiles" else 1
    sh, sw = p.step, (p.step if p.split == "tiles" else w)
    if p.stem and p.stem_pool:
        sh, sw = -(-sh // 2), -(-sw // 2)  # the pool rounds up: no pixel row is dropped
    if p.stem:
        assert feats["stem"].shape == (2, p.stem, rows * sh, cols * sw)
    else:
        assert "stem" not in feats
    gate_names = CONV_CELLS[p.cell].gate_names
    for i, hc in enumerate(p.hidden_channels):
        assert feats[f"cells.{i}"].shape == (2, rows * cols, hc, sh, sw)
        for g in gate_names:
            assert feats[f"cells.{i}:{g}"].shape == (2, rows * cols, hc, sh, sw)
    _, no_gates = net.forward_intermediates(x, gates=False)
    assert not any(":" in k for k in no_gates)


def test_rows_are_strips_read_top_to_bottom() -> None:
    net = build_model("conv_rnn", in_channels=3, num_outputs=2, image_size=(16, 10), stem=0, step=4)
    x = torch.randn(2, 3, 16, 10)
    steps, rows, cols = net.steps(x)
    assert (rows, cols) == (4, 1) and steps.shape == (2, 4, 3, 4, 10)
    for t in range(4):
        assert torch.equal(steps[:, t], x[:, :, 4 * t : 4 * t + 4])
    net.eval()
    x2 = x.clone()
    x2[:, :, 12:] += 1.0  # only the last strip changes: earlier states have not read it
    _, a = net.forward_intermediates(x)
    _, b = net.forward_intermediates(x2)
    assert torch.allclose(a["cells.0"][:, :3], b["cells.0"][:, :3])
    assert not torch.allclose(a["cells.0"][:, 3], b["cells.0"][:, 3])


def test_tiles_are_read_in_raster_order() -> None:
    net = build_model("conv_rnn", in_channels=1, num_outputs=2, image_size=(12, 18), split="tiles", step=6, stem=0)
    x = torch.randn(1, 1, 12, 18)
    steps, rows, cols = net.steps(x)
    assert (rows, cols) == (2, 3)
    for r in range(2):
        for c in range(3):
            assert torch.equal(steps[:, r * 3 + c], x[:, :, 6 * r : 6 * r + 6, 6 * c : 6 * c + 6])
    steps, rows, cols = net.steps(torch.ones(1, 1, 13, 18))  # one more row of pixels: a padded tile row
    assert (rows, cols) == (3, 3) and steps[0, -1, :, 1:].eq(0).all() and steps[0, -1, :, :1].eq(1).all()


def test_stem_map_is_laid_out_like_the_image() -> None:
    """A stem of one 1-channel identity conv shows the image itself, strip by strip."""
    net = build_model("conv_rnn", in_channels=1, num_outputs=2, image_size=(16, 12), stem=1, stem_pool=False)
    net.eval()
    with torch.no_grad():
        net.stem[0].weight.zero_()
        net.stem[0].weight[0, 0, 1, 1] = 1.0
    x = torch.randn(1, 1, 16, 12).abs()  # positive: the ReLU passes it; eval BN is the identity (up to eps)
    _, feats = net.forward_intermediates(x)
    assert torch.allclose(feats["stem"], x, atol=1e-4)


def test_variable_width_rows() -> None:
    net = build_model("conv_rnn", in_channels=1, num_outputs=3, image_size=(32, None)).eval()
    for w in (8, 31, 64):
        y, feats = net.forward_intermediates(torch.randn(2, 1, 32, w))
        assert y.shape == (2, 3) and feats["cells.0"].shape[-1] == -(-w // 2)


@pytest.mark.parametrize(
    ("size", "values", "name", "match"),
    [
        ((32, 32), {"step": 40}, "step", "taller"),
        ((32, 12), {"split": "tiles", "step": 16}, "step", "wider"),
        ((32, 32), {"step": 1}, "stem_pool", "step >= 2"),
        ((512, 512), {"split": "tiles", "step": 16}, "step", "more than 256"),
        ((32, 32), {"kernel_size": 4}, "kernel_size", "1, 3, 5, 7"),
        ((32, 32), {"hidden_channels": ""}, "hidden_channels", "at least one"),
    ],
)
def test_errors_name_the_parameter(size, values, name, match) -> None:
    with pytest.raises(ParamError, match=match) as e:
        build_model("conv_rnn", in_channels=1, num_outputs=2, image_size=size, **values)
    assert e.value.param == name
    build_model("conv_rnn", in_channels=1, num_outputs=2, image_size=(32, 32), step=1, stem=0)  # nothing to pool


def test_module_layout() -> None:
    net = build_model("conv_rnn", in_channels=1, num_outputs=2, image_size=(32, 32), hidden_channels="8,16")
    assert [n for n, _ in net.named_children()] == ["stem", "cells", "head"]
    assert [type(c) for c in net.cells] == [ConvGRUCell, ConvGRUCell]
    assert net.cells[1].in_channels == 8 and net.cells[1].hidden_conv.out_channels == 3 * 16


def test_it_learns(two_class_images, train_losses) -> None:
    x, y = two_class_images(channels=1, size=16)
    net = build_model("conv_rnn", in_channels=1, num_outputs=2, image_size=(16, 16))
    losses = train_losses(net, x, y)
    assert losses[-1] < losses[0] / 2, losses


def test_torch_export_matches_eager() -> None:
    net = build_model("conv_rnn", in_channels=1, num_outputs=3, image_size=(16, 16), cell="lstm").eval()
    x = torch.randn(2, 1, 16, 16)
    ep = torch.export.export(net, (x,))
    assert torch.allclose(ep.module()(x), net(x), atol=1e-5)
