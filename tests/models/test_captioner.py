"""Family ``captioner``: encoder + LSTM decoder with soft attention, greedy and beam decoding."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import save_file
from torch.nn import functional as F
from torchvision import models as tvm

from models import ParamError, build_model, list_models
from models.captioner import END, PAD, START, PositionalEncoding2d, sinusoidal_2d

V = 12  # PAD, START, END, UNK + 8 words
SMALL = {"channels": "8,16,16", "embed_dim": 16, "hidden_size": 32, "attention_dim": 16}


def _tokens(b: int, length: int, seed: int = 0) -> torch.Tensor:
    """(b, length) START w ... END PAD..., captions of different lengths."""
    g = torch.Generator().manual_seed(seed)
    tok = torch.zeros(b, length, dtype=torch.long)
    for i in range(b):
        n = max(1, length - 2 - i % 2)
        tok[i, 0] = START
        tok[i, 1 : n + 1] = torch.randint(4, V, (n,), generator=g)
        tok[i, n + 1] = END
    return tok


def _model(c: int = 1, h: int = 32, w: int | None = None, **params):
    return build_model("captioner", in_channels=c, num_outputs=V, image_size=(h, w), **{**SMALL, **params})


def test_registered_for_captions_only() -> None:
    assert "captioner" in list_models("caption")
    assert "captioner" not in list_models("classify")


@pytest.mark.parametrize(
    ("c", "h", "w", "x_w", "params"),
    [
        (1, 32, None, 137, {}),  # gray line, variable width
        (1, 32, None, 61, {"pos_encoding": "learned"}),  # learned positions resampled to another width
        (3, 64, 64, 64, {"width_pools": 3}),  # RGB scene, square grid
        (3, 48, 80, 80, {"pos_encoding": "none", "gate": False}),
        (1, 32, None, 90, {"encoder": "mobilenet_v3_small"}),
        (3, 32, 48, 48, {"encoder": "resnet18"}),
    ],
)
def test_teacher_forcing_shapes(c, h, w, x_w, params) -> None:
    net = _model(c, h, w, **params)
    x = torch.randn(3, c, h, x_w)
    tok = _tokens(3, 6)
    logits, alphas = net(x, tok)
    gh, gw = net.grid_size(h, x_w)
    assert logits.shape == (3, 5, V)
    assert alphas.shape == (3, 5, gh * gw)
    assert torch.allclose(alphas.sum(-1), torch.ones(3, 5), atol=1e-5)
    assert (alphas >= 0).all()
    (logits.sum() + alphas.sum()).backward()  # differentiable end to end


@pytest.mark.parametrize(
    ("params", "sizes"),
    [
        ({}, [(32, 140), (32, 17), (33, 75)]),
        ({"channels": "8,8,8,8,8", "width_pools": 0}, [(32, 9), (64, 100)]),
        ({"encoder": "resnet18"}, [(32, 140), (32, 31)]),
        ({"encoder": "mobilenet_v3_small"}, [(32, 99), (128, 130)]),
    ],
)
def test_grid_size_is_the_encoders_output(params, sizes) -> None:
    net = _model(1, 32, None, **params).eval()
    for h, w in sizes:
        feats, gh, gw = net.encode(torch.randn(1, 1, h, w))
        assert net.grid_size(h, w) == (gh, gw)
        assert feats.shape[1] == gh * gw


@pytest.mark.parametrize(
    ("image_size", "params", "probe", "grid"),
    [
        ((32, None), {}, (32, 140), (2, 35)),  # a line: every stage halves the height, two the width
        ((32, 100), {}, (32, 100), (2, 25)),  # fixed-width line (at least twice as wide as high)
        ((64, 64), {}, (64, 64), (8, 8)),  # a scene: stride 8 both ways, the last stage keeps the size
        ((64, 64), {"height_pools": 4, "width_pools": 1}, (64, 64), (4, 32)),
    ],
)
def test_default_pooling(image_size, params, probe, grid) -> None:
    net = build_model("captioner", in_channels=1, num_outputs=V, image_size=image_size, **params).eval()
    assert net.grid_size(*probe) == grid
    assert net.encode(torch.randn(1, 1, *probe))[1:] == grid


def test_grid_index_is_row_major() -> None:
    """Annotation vector p = row * gw + col is the encoder's cell (row, col)."""
    net = _model(1, 32, None, pos_encoding="none").eval()
    x = torch.randn(1, 1, 32, 72)
    grid = net.encoder(x)  # (1, D, gh, gw)
    flat, gh, gw = net.encode(x)
    for r, c in [(0, 0), (gh - 1, 3), (1, gw - 1)]:
        assert torch.equal(flat[0, r * gw + c], grid[0, :, r, c])


def test_generate_greedy_shapes_and_tokens() -> None:
    net = _model(1, 32, None).eval()
    x = torch.randn(4, 1, 32, 90)
    out = net.generate(x, max_len=7)
    p = math.prod(net.grid_size(32, 90))
    assert len(out) == 4
    for cands in out:
        assert len(cands) == 1
        c = cands[0]
        assert set(c) == {"tokens", "score", "alphas", "logp", "ended"}
        assert len(c["tokens"]) <= 7
        assert not {PAD, START, END} & set(c["tokens"])
        assert c["alphas"].shape == (len(c["tokens"]), p)
        if len(c["tokens"]):
            assert torch.allclose(c["alphas"].sum(-1), torch.ones(len(c["tokens"])), atol=1e-5)
        assert isinstance(c["score"], float) and c["score"] <= 0


def _seq_logp(net, x: torch.Tensor, toks: list[int], ended: bool) -> tuple[float, int]:
    """Log-probability of a decoded caption under teacher forcing, and its step count."""
    seq = [START, *toks] + ([END] if ended else [])
    with torch.no_grad():
        logits, _ = net(x, torch.tensor([seq]))  # (1, len(seq) - 1, V)
    lp = F.log_softmax(logits[0].float(), -1)
    return float(lp[torch.arange(len(seq) - 1), torch.tensor(seq[1:])].sum()), len(seq) - 1


def test_beam_search_candidates() -> None:
    torch.manual_seed(1)
    net = _model(1, 32, None).eval()
    x = torch.randn(3, 1, 32, 80)
    max_len, beam = 6, 4
    out = net.generate(x, max_len=max_len, beam=beam, length_norm=0.7)
    assert len(out) == 3
    for i, cands in enumerate(out):
        assert 1 <= len(cands) <= beam
        scores = [c["score"] for c in cands]
        assert scores == sorted(scores, reverse=True)
        assert len({tuple(c["tokens"]) for c in cands}) == len(cands)  # distinct hypotheses
        for c in cands:
            n = len(c["tokens"])
            assert n <= max_len and c["alphas"].shape[0] == n
            ended = n < max_len  # shorter than max_len: it stopped at END
            logp, steps = _seq_logp(net, x[i : i + 1], c["tokens"], ended)
            assert c["score"] == pytest.approx(logp / steps**0.7, abs=1e-4)


def test_beam_of_one_is_greedy() -> None:
    net = _model(1, 32, None)
    # a little training so that captions end at END before max_len
    x = torch.randn(4, 1, 32, 70)
    tok = _tokens(4, 5)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(15):
        logits, _ = net(x, tok)
        loss = F.cross_entropy(logits.transpose(1, 2), tok[:, 1:], ignore_index=PAD)
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    x = torch.cat([x, torch.randn(3, 1, 32, 70)])
    greedy = net.generate(x, max_len=8, beam=1)
    with torch.no_grad():
        feats, _, _ = net.encode(x)
        proj = net.decoder.attention.feature_proj(feats)
        for i, g in enumerate(greedy):
            b = net._beam_one(feats[i : i + 1], proj[i : i + 1], 8, 1, 0.7)
            assert len(b) == 1
            assert b[0]["tokens"] == g[0]["tokens"]
            assert b[0]["score"] == pytest.approx(g[0]["score"], abs=1e-5)
            assert torch.allclose(b[0]["alphas"], g[0]["alphas"], atol=1e-5)


def test_max_len_zero_and_single_token_input() -> None:
    net = _model(1, 32, None).eval()
    x = torch.randn(2, 1, 32, 40)
    assert [c[0]["tokens"] for c in net.generate(x, max_len=0)] == [[], []]
    assert net.generate(x, max_len=0, beam=3) == [[], []]
    logits, alphas = net(x, torch.full((2, 1), START))
    assert logits.shape == (2, 0, V) and alphas.shape[:2] == (2, 0)


def test_forward_intermediates() -> None:
    net = _model(3, 32, 64, width_pools=2).eval()
    x = torch.randn(2, 3, 32, 64)
    logits, feats = net.forward_intermediates(x, max_len=5)
    tokens = feats["tokens"]
    greedy = net.generate(x, max_len=5)
    lmax = max(len(g[0]["tokens"]) for g in greedy)
    assert tokens.shape == (2, lmax)
    assert logits.shape == (2, lmax, V)
    assert torch.equal(logits.argmax(-1), tokens)  # the output's argmax is the emitted word, PAD after the end
    gh, gw = net.grid_size(32, 64)
    lstm = ["decoder.lstm:h", *(f"decoder.lstm:{g}" for g in ("gate_i", "gate_f", "gate_g", "gate_o", "cell"))]
    assert list(feats) == ["encoder.0", "encoder.1", "encoder.2", "attention", *lstm, "decoder.gate", "tokens"]
    assert feats["encoder.0"].shape == (2, 8, 16, 32)
    assert feats["encoder.2"].shape == (2, 16, gh, gw)
    assert feats["attention"].shape == (2, lmax, gh, gw)
    for key in lstm:
        assert feats[key].shape == (2, lmax, 32)
    assert feats["decoder.gate"].shape == (2, lmax, 1)
    names = dict(net.named_modules())
    assert all(k.split(":")[0] in names for k in feats if k not in ("attention", "tokens"))
    for i, g in enumerate(greedy):
        n = len(g[0]["tokens"])
        assert tokens[i, :n].tolist() == g[0]["tokens"]
        assert (tokens[i, n:] == PAD).all()
        assert torch.allclose(feats["attention"][i, :n].reshape(n, -1), g[0]["alphas"], atol=1e-6)
        assert (feats["attention"][i, n:] == 0).all()
        assert (logits[i, n:, PAD] == 0).all() and (logits[i, n:, PAD + 1 :] == -math.inf).all()
        assert (logits[i, :n, [PAD, START]] == -math.inf).all()
    _, nogate = _model(3, 32, 64, gate=False).eval().forward_intermediates(x, max_len=3)
    assert "decoder.gate" not in nogate


def test_decoder_gates_are_the_lstm_cells() -> None:
    """The recorded LSTM gates recompute the cell state and hidden state nn.LSTMCell returned."""
    net = _model(1, 32, 64).eval()
    _, feats = net.forward_intermediates(torch.randn(2, 1, 32, 64), max_len=4)
    i, f, g, o = (feats[f"decoder.lstm:gate_{k}"] for k in "ifgo")
    c = feats["decoder.lstm:cell"]
    valid = feats["tokens"] != PAD
    for t in range(1, c.shape[1]):
        m = valid[:, t, None]
        expect = f[:, t] * c[:, t - 1] + i[:, t] * g[:, t]
        assert torch.allclose(c[:, t][m.expand_as(expect)], expect[m.expand_as(expect)], atol=1e-5)
    h = o * torch.tanh(c)
    assert torch.allclose(h, feats["decoder.lstm:h"], atol=1e-5)
    assert ((i >= 0) & (i <= 1)).all() and ((g >= -1) & (g <= 1)).all()


def test_positional_encodings() -> None:
    pe = sinusoidal_2d(16, 3, 7)
    assert pe.shape == (16, 3, 7)
    cells = pe.flatten(1).T  # (21, 16): every cell has its own code
    assert torch.cdist(cells, cells).add(torch.eye(21)).min() > 0.1
    assert torch.equal(pe[:8, 1, 0], pe[:8, 1, 6])  # the first half codes the row
    assert torch.equal(pe[8:, 0, 4], pe[8:, 2, 4])  # the second half the column
    learned = PositionalEncoding2d("learned", 4, (2, 10))
    assert learned(torch.zeros(1, 4, 2, 10)).shape == (1, 4, 2, 10)
    assert learned(torch.zeros(1, 4, 2, 23)).shape == (1, 4, 2, 23)  # resampled for another width
    f = torch.randn(1, 4, 2, 5)
    assert torch.equal(PositionalEncoding2d("none", 4, (2, 5))(f), f)


def test_position_lets_attention_tell_places_apart() -> None:
    """On a blank image every cell looks alike; only the positional code makes attention non-uniform."""
    x = torch.zeros(1, 1, 32, 64)
    tok = _tokens(1, 4)
    flat = _model(1, 32, 64, pos_encoding="none").eval()(x, tok)[1]
    coded = _model(1, 32, 64, pos_encoding="sinusoidal").eval()(x, tok)[1]
    assert torch.allclose(flat, torch.full_like(flat, 1 / flat.shape[-1]), atol=1e-6)
    assert coded.std() > 1e-4


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"width_pools": 4}, "width_pools"),  # more than the 3 stages of SMALL
        ({"height_pools": 4}, "height_pools"),
        ({"width_pools": -2}, "width_pools"),
        ({"channels": "8,8,8,8,8,8"}, "channels"),  # 6 halvings of 32 px
        ({"weights": "x.pth"}, "weights"),  # own CNN loads no weights
        ({"freeze_encoder": True}, "freeze_encoder"),
        ({"encoder": "resnet18", "freeze_encoder": True}, "freeze_encoder"),  # random backbone
        ({"encoder": "resnet18", "weights": "missing.pth"}, "weights"),
        ({"encoder": "resnet18", "weights": "w.txt"}, "weights"),
        ({"encoder": "vgg"}, "encoder"),
        ({"pos_encoding": "rope"}, "pos_encoding"),
        ({"dropout": 1.5}, "dropout"),
        ({"attention_reg": -1}, "attention_reg"),
        ({"encoder_lr_scale": 20}, "encoder_lr_scale"),
        ({"hidden_size": 0}, "hidden_size"),
        ({"beam": 3}, "beam"),  # decoding options are not model parameters
    ],
)
def test_invalid_params_name_the_parameter(kwargs, name) -> None:
    with pytest.raises(ParamError) as e:
        _model(1, 32, None, **kwargs)
    assert e.value.param == name


def test_too_small_vocabulary_and_narrow_image() -> None:
    with pytest.raises(ParamError) as e:
        build_model("captioner", in_channels=1, num_outputs=4, image_size=(32, None))
    assert e.value.param == "num_outputs"
    with pytest.raises(ParamError) as e:
        _model(1, 32, 3, width_pools=2)
    assert e.value.param == "width_pools"


def test_attention_reg_is_readable() -> None:
    assert _model().params.attention_reg == 1.0
    assert _model(attention_reg="0.5").params.attention_reg == 0.5


def test_param_groups() -> None:
    net = _model(encoder_lr_scale=0.1)
    groups = net.param_groups(1e-3)
    assert [g["lr"] for g in groups] == [1e-3, pytest.approx(1e-4)]
    enc = {id(q) for q in net.encoder.parameters()}
    assert {id(q) for q in groups[1]["params"]} == enc
    assert not enc & {id(q) for q in groups[0]["params"]}
    assert sum(len(g["params"]) for g in groups) == len(list(net.parameters()))
    torch.optim.Adam(groups, lr=1e-3)  # a valid optimizer spec


def test_pretrained_frozen_encoder(tmp_path) -> None:
    path = tmp_path / "mnv3.safetensors"
    save_file(tvm.mobilenet_v3_small(weights=None).state_dict(), str(path))
    net = _model(1, 32, None, encoder="mobilenet_v3_small", weights=str(path), freeze_encoder=True)
    assert net.weights_report["loaded"] > 0
    assert not any(q.requires_grad for q in net.encoder.parameters())
    groups = net.param_groups(1e-3)
    assert len(groups) == 1
    assert {id(q) for q in groups[0]["params"]} == {id(q) for q in net.parameters() if q.requires_grad}
    net.train()
    assert not net.encoder.training and net.decoder.training
    before = {k: v.clone() for k, v in net.encoder.state_dict().items()}
    net(torch.randn(2, 1, 32, 50), _tokens(2, 4))
    after = net.encoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # batch-norm statistics untouched


@pytest.mark.parametrize("init", ["xavier", "he"])
def test_init_schemes(init) -> None:
    net = _model(init=init)
    assert torch.count_nonzero(net.decoder.lstm.bias_ih) == 0
    net(torch.randn(1, 1, 32, 40), _tokens(1, 3))


def test_learns_two_captions() -> None:
    """Two images, two fixed captions: the loss falls and greedy decoding reproduces them."""
    x = torch.zeros(2, 1, 32, 64)
    x[0, :, :, :32] = 2.0  # bright left half
    x[1, :, :, 32:] = 2.0  # bright right half
    tok = torch.tensor([[START, 4, 5, 6, END], [START, 7, 8, END, PAD]])
    net = _model(1, 32, 64, dropout=0.0)
    opt = torch.optim.Adam(net.param_groups(5e-3), lr=5e-3)
    losses = []
    for _ in range(40):
        logits, alphas = net(x, tok)
        mask = tok[:, 1:] != PAD
        ce = F.cross_entropy(logits.transpose(1, 2), tok[:, 1:], ignore_index=PAD)
        loss = ce + ((1 - (alphas * mask[..., None]).sum(1)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        losses.append(ce.item())
    assert losses[-1] < 0.2 * losses[0]
    net.eval()
    out = net.generate(x, max_len=6)
    assert [o[0]["tokens"] for o in out] == [[4, 5, 6], [7, 8]]
    beams = net.generate(x, max_len=6, beam=3)
    assert [b[0]["tokens"] for b in beams] == [[4, 5, 6], [7, 8]]
