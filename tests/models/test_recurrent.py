"""Gate recomputation and the packed / pooled helpers of ``models._recurrent``."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models._recurrent import GATES, RecurrentStack, pool_sequence, recurrent_gates

# (cell name in GATES, module factory)
LAYERS = {
    "rnn-tanh": ("rnn", lambda f, h, **kw: nn.RNN(f, h, nonlinearity="tanh", **kw)),
    "rnn-relu": ("rnn", lambda f, h, **kw: nn.RNN(f, h, nonlinearity="relu", **kw)),
    "lstm": ("lstm", lambda f, h, **kw: nn.LSTM(f, h, **kw)),
    "gru": ("gru", lambda f, h, **kw: nn.GRU(f, h, **kw)),
}


@pytest.mark.parametrize("kind", list(LAYERS))
@pytest.mark.parametrize("bidirectional", [False, True])
def test_recomputed_states_equal_torch(kind, bidirectional) -> None:
    cell, make = LAYERS[kind]
    layer = make(5, 7, batch_first=True, bidirectional=bidirectional)
    x = torch.randn(3, 11, 5)
    with torch.no_grad():
        out, h_n = layer(x)
    rec = recurrent_gates(layer, x)
    dirs = ["fwd", "bwd"] if bidirectional else ["fwd"]
    assert set(rec) == {d for d in dirs} | {f"{d}:{g}" for d in dirs for g in GATES[cell]}
    assert torch.allclose(rec["fwd"], out[..., :7], atol=1e-5)
    if bidirectional:
        assert torch.allclose(rec["bwd"], out[..., 7:], atol=1e-5)
    for v in rec.values():
        assert v.shape == (3, 11, 7)
    if cell == "lstm":
        c_n = h_n[1]
        assert torch.allclose(rec["fwd:cell"][:, -1], c_n[0], atol=1e-5)
        if bidirectional:
            assert torch.allclose(rec["bwd:cell"][:, 0], c_n[1], atol=1e-5)  # bwd ends at t = 0


@pytest.mark.parametrize("kind", list(LAYERS))
def test_gates_obey_their_equations(kind) -> None:
    """The recorded gates, put back into the cell's equations, give the recorded states."""
    cell, make = LAYERS[kind]
    layer = make(4, 6, batch_first=True)
    x = torch.randn(2, 9, 4)
    r = recurrent_gates(layer, x)
    h = r["fwd"]
    prev = torch.cat([torch.zeros_like(h[:, :1]), h[:, :-1]], dim=1)  # h_{t-1}
    if cell == "lstm":
        i, f, g, o, c = (r[f"fwd:{n}"] for n in GATES["lstm"])
        c_prev = torch.cat([torch.zeros_like(c[:, :1]), c[:, :-1]], dim=1)
        assert torch.allclose(c, f * c_prev + i * g, atol=1e-6)
        assert torch.allclose(h, o * torch.tanh(c), atol=1e-6)
        for gate in (i, f, o):
            assert ((gate > 0) & (gate < 1)).all()
        assert (g.abs() <= 1).all()
    elif cell == "gru":
        rg, z, n = (r[f"fwd:{k}"] for k in GATES["gru"])
        assert torch.allclose(h, (1 - z) * n + z * prev, atol=1e-6)
        # n's reset gate scales the whole hidden term (W_hn h + b_hn), PyTorch's formulation
        w_in, w_hn = layer.weight_ih_l0[12:], layer.weight_hh_l0[12:]
        b_in, b_hn = layer.bias_ih_l0[12:], layer.bias_hh_l0[12:]
        with torch.no_grad():
            expect = torch.tanh(x @ w_in.T + b_in + rg * (prev @ w_hn.T + b_hn))
        assert torch.allclose(n, expect, atol=1e-5)
    else:
        act = torch.tanh if layer.nonlinearity == "tanh" else torch.relu
        assert torch.allclose(h, act(r["fwd:preact"]), atol=1e-6)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_batch_major_layer_and_no_bias(kind) -> None:
    _, make = LAYERS[kind]
    layer = make(3, 4, batch_first=False, bidirectional=True, bias=False)
    x = torch.randn(2, 6, 3)  # recurrent_gates always takes (B, T, F)
    with torch.no_grad():
        out = layer(x.transpose(0, 1))[0].transpose(0, 1)
    r = recurrent_gates(layer, x)
    assert torch.allclose(torch.cat([r["fwd"], r["bwd"]], -1), out, atol=1e-5)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_stack_intermediates_are_the_recomputed_states_of_every_layer(cell, bidirectional) -> None:
    """Three stacked layers: the states recomputed from each layer's weights on the input that layer
    read equal the stack's outputs, which equal one torch ``num_layers=3`` module's outputs."""
    stack = RecurrentStack(cell, 5, 6, 3, bidirectional)
    ref = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell](
        5, 6, num_layers=3, batch_first=True, bidirectional=bidirectional
    )
    with torch.no_grad():
        for i, layer in enumerate(stack):
            for name, w in layer.named_parameters():
                w.copy_(dict(ref.named_parameters())[name.replace("_l0", f"_l{i}")])
    x = torch.randn(2, 8, 5)
    with torch.no_grad():
        out, feats = stack.forward_intermediates(x)
        ref_out, _ = ref(x)
    assert torch.allclose(out, ref_out, atol=1e-5)
    dirs = ["fwd", "bwd"] if bidirectional else ["fwd"]
    expected = [f"rnn.{i}:{d}" for i in range(3) for d in dirs]
    expected += [f"rnn.{i}:{d}:{g}" for i in range(3) for d in dirs for g in GATES[cell]]
    assert sorted(feats) == sorted(expected)
    layer_in = x
    for i, layer in enumerate(stack):
        rec = recurrent_gates(layer, layer_in)
        for d in dirs:
            assert torch.allclose(rec[d], feats[f"rnn.{i}:{d}"], atol=1e-5)
            for g in GATES[cell]:
                assert torch.equal(rec[f"{d}:{g}"], feats[f"rnn.{i}:{d}:{g}"])
        layer_in = torch.cat([feats[f"rnn.{i}:{d}"] for d in dirs], dim=-1)
    _, no_gates = stack.forward_intermediates(x, gates=False)
    assert sorted(no_gates) == sorted(f"rnn.{i}:{d}" for i in range(3) for d in dirs)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_lengths_read_each_sequence_alone(cell) -> None:
    """Packed reading: every direction sees only the valid steps, padding reads as zeros."""
    stack = RecurrentStack(cell, 4, 5, 2, bidirectional=True).eval()
    x = torch.randn(3, 10, 4)
    lengths = torch.tensor([10, 6, 1])
    with torch.no_grad():
        out, feats = stack.forward_intermediates(x, lengths=lengths)
        out2, _ = stack(x, lengths)
    assert torch.equal(out, out2)
    for b, n in enumerate(lengths.tolist()):
        with torch.no_grad():
            alone, _ = stack(x[b : b + 1, :n])
        assert torch.allclose(out[b, :n], alone[0], atol=1e-5)
        assert (out[b, n:] == 0).all()
        rec = recurrent_gates(stack[0], x, lengths)
        assert torch.allclose(rec["bwd"][b, :n], feats["rnn.0:bwd"][b, :n], atol=1e-5)
        assert (rec["bwd:gate_z" if cell == "gru" else "bwd:gate_i"][b, n:] == 0).all()


@pytest.mark.parametrize("pool", ["last", "mean", "max"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_pool_with_lengths_equals_pool_of_the_valid_steps(pool, bidirectional) -> None:
    out = torch.randn(3, 7, 8)
    lengths = torch.tensor([7, 3, 1])
    pooled = pool_sequence(out, pool, 4, bidirectional, lengths)
    for b, n in enumerate(lengths.tolist()):
        assert torch.allclose(pooled[b], pool_sequence(out[b : b + 1, :n], pool, 4, bidirectional)[0])


def test_unsupported_layers_are_refused() -> None:
    with pytest.raises(ValueError, match="num_layers=2"):
        recurrent_gates(nn.GRU(3, 4, num_layers=2, batch_first=True), torch.randn(1, 2, 3))
    with pytest.raises(ValueError, match="proj_size"):
        recurrent_gates(nn.LSTM(3, 4, proj_size=2, batch_first=True), torch.randn(1, 2, 3))
    with pytest.raises(TypeError, match="Linear"):
        recurrent_gates(nn.Linear(3, 4), torch.randn(1, 2, 3))  # type: ignore[arg-type]
