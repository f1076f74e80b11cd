"""Every family declares what ``forward_intermediates`` returns (``intermediate_info``, ``output_info``).

The declaration is checked against the real tensors (keys and order, ranks, time axes
against regions, attention against its grid, value ranges of gates), and a sequence
reader's regions against what each step really reads: perturbing region t leaves the
forward states before t as they were and changes step t.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import Tensor

from models import AXES, KINDS, Intermediate, build_model, list_models, model_info

N_OUT = 5
V = 12  # captioner vocabulary: PAD, START, END, UNK + 8 words

# family, params, built image size, probe input (H, W), channels
CONFIGS = [
    ("cnn", {"channels": "8,16"}, (24, 20), (24, 20), 1),
    ("cnn", {"channels": "4,8,8", "pool": "none", "head": "gap"}, (9, 11), (9, 11), 3),
    ("backbone", {"arch": "resnet18"}, (32, 32), (32, 32), 3),
    ("backbone", {"arch": "mobilenet_v3_small"}, (32, 40), (32, 40), 1),
    ("rnn", {"cell": "lstm", "hidden_size": 6, "num_layers": 2, "bidirectional": True}, (12, 10), (12, 10), 1),
    ("rnn", {"cell": "gru", "hidden_size": 5, "bidirectional": False, "proj": 7}, (9, 8), (9, 8), 3),
    ("rnn", {"cell": "rnn", "hidden_size": 4, "num_layers": 2, "bidirectional": True}, (7, 6), (7, 6), 1),
    ("crnn", {"channels": "4,8", "cell": "lstm", "hidden_size": 6}, (16, None), (16, 37), 1),
    ("crnn", {"channels": "4,8,8", "width_pools": 1, "cell": "gru", "head": "ctc", "num_layers": 2}, (16, None), (16, 30), 1),
    ("crnn", {"channels": "4", "width_pools": 1, "cell": "rnn", "bidirectional": False, "head": "ctc"}, (8, 20), (8, 20), 3),
    ("patch_rnn", {"tile": 8, "channels": "4", "cell": "gru", "hidden_size": 6}, (20, 18), (20, 18), 1),
    ("patch_rnn", {"tile": 8, "stride": 5, "channels": "4,4", "cell": "lstm", "hidden_size": 5, "bidirectional": False}, (16, 21), (16, 21), 3),
    ("patch_rnn", {"tile": 6, "tile_input": 8, "channels": "4", "num_layers": 2}, (12, 12), (12, 12), 1),
    ("conv_rnn", {"split": "rows", "step": 4, "cell": "gru", "hidden_channels": "4,6", "stem": 4}, (14, 10), (14, 10), 1),
    ("conv_rnn", {"split": "tiles", "step": 5, "cell": "lstm", "hidden_channels": "4", "stem": 0}, (12, 11), (12, 11), 3),
    ("conv_rnn", {"split": "rows", "step": 3, "cell": "rnn", "hidden_channels": "4", "stem": 4, "stem_pool": False}, (9, 8), (9, 8), 1),
    ("captioner", {"channels": "8,16,16", "embed_dim": 8, "hidden_size": 16, "attention_dim": 8}, (32, None), (32, 72), 1),
    ("captioner", {"channels": "8,16", "embed_dim": 8, "hidden_size": 12, "attention_dim": 8, "gate": False, "width_pools": 2}, (32, 48), (32, 48), 3),
]  # fmt: skip


def _build(family: str, params: dict, image_size: tuple, channels: int):
    n_out = V if family == "captioner" else N_OUT
    return build_model(family, in_channels=channels, num_outputs=n_out, image_size=image_size, **params).eval()


def _run(model, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    with torch.no_grad():
        if isinstance(model, torch.nn.Module) and hasattr(model, "generate"):
            return model.forward_intermediates(x, max_len=6)
        return model.forward_intermediates(x)


def test_every_family_is_covered() -> None:
    # families registered by the models package (tests may register throw-away ones)
    shipped = {n for n in list_models() if model_info(n).builder.__module__.startswith("models.")}
    assert {c[0] for c in CONFIGS} == shipped
    assert set(KINDS) == set(AXES)


@pytest.mark.parametrize(("family", "params", "image_size", "probe", "channels"), CONFIGS)
def test_declaration_matches_the_tensors(family, params, image_size, probe, channels) -> None:
    torch.manual_seed(0)
    model = _build(family, params, image_size, channels)
    x = torch.randn(2, channels, *probe)
    out, feats = _run(model, x)
    info = model.intermediate_info(probe)
    assert list(info) == list(feats)  # same keys, same order
    modules = dict(model.named_modules())
    for key, t in feats.items():
        d = info[key]
        assert isinstance(d, Intermediate)
        assert t.ndim == 1 + len(d.axes), (key, d.kind, tuple(t.shape))
        assert d.layer in modules, (key, d.layer)
        assert d.title and d.title != key and "_" not in d.title, d.title  # human words, not the key
        json.dumps(d.to_dict())  # what crosses into the UI is plain data
        if d.regions is not None:
            assert d.axes[0] == "time"
            assert t.shape[1] == len(d.regions), key
            _assert_inside(d.regions, probe)
        if d.kind == "attention":
            assert tuple(t.shape[2:]) == d.grid, key
        if d.range is not None:
            lo, hi = d.range
            assert t.min() >= lo - 1e-6 and t.max() <= hi + 1e-6, (key, d.range)
        if d.kind in ("gate", "cell_state"):
            assert d.gate, key
    _check_output(model, out, feats, model.output_info(probe), x.shape[0])


def _check_output(model, out: Tensor, feats: dict[str, Tensor], d: Intermediate, batch: int) -> None:
    assert out.ndim == 1 + len(d.axes), (d.kind, tuple(out.shape))
    assert d.layer in dict(model.named_modules())
    if d.kind == "logits":
        assert out.shape == (batch, N_OUT)
    elif d.kind == "ctc_frames":
        assert out.shape[-1] == N_OUT
        assert out.shape[1] == len(d.regions)
        assert out.shape[1] == feats["rnn.0:fwd"].shape[1]
    else:
        assert d.kind == "token_logits"
        assert out.shape == (batch, feats["tokens"].shape[1], V)
        assert torch.equal(out.argmax(-1), feats["tokens"])
        assert feats["attention"].shape[1] == out.shape[1]


def _assert_inside(regions, image_size) -> None:
    h, w = image_size
    for y0, x0, y1, x1 in regions:
        assert 0 <= y0 < y1 <= h and 0 <= x0 < x1 <= w, (y0, x0, y1, x1)


def _family_configs(family: str) -> list:
    return [c for c in CONFIGS if c[0] == family]


# -- regions cover what the model cuts ---------------------------------------------------------


@pytest.mark.parametrize(("family", "params", "image_size", "probe", "channels"), _family_configs("rnn"))
def test_rnn_regions_are_the_rows(family, params, image_size, probe, channels) -> None:
    h, w = probe
    assert _build(family, params, image_size, channels).regions(probe) == tuple((t, 0, t + 1, w) for t in range(h))


@pytest.mark.parametrize(("family", "params", "image_size", "probe", "channels"), _family_configs("crnn"))
def test_crnn_regions_are_column_bands_at_the_stride(family, params, image_size, probe, channels) -> None:
    model = _build(family, params, image_size, channels)
    h, w = probe
    stride, width, start = model.receptive_field()
    assert stride == 2**model.params.width_pools
    regions = model.regions(probe)
    assert [r[1] for r in regions] == [j * stride for j in range(len(regions))]  # contiguous, from 0
    assert all(r[3] - r[1] == stride and (r[0], r[2]) == (0, h) for r in regions)
    assert len(regions) * stride <= w < (len(regions) + 1) * stride  # only the floored remainder is left out
    for j, (_, x0, _, x1) in enumerate(regions):  # each band is centred on its column's receptive field
        rf0 = start + j * stride
        assert (x0 + x1) / 2 == pytest.approx(rf0 + width / 2)


@pytest.mark.parametrize(("family", "params", "image_size", "probe", "channels"), _family_configs("patch_rnn"))
def test_patch_rnn_boxes_are_the_tiles(family, params, image_size, probe, channels) -> None:
    model = _build(family, params, image_size, channels)
    model.params.tile_input = 0  # compare the raw tiles (the resize is not what we check here)
    x = torch.randn(1, channels, *probe)
    tiles, rows, cols = model.tiles(x)  # (1, T, C, tile, tile)
    regions = model.regions(probe)
    assert len(regions) == rows * cols == tiles.shape[1]
    tile = model.params.tile
    for t, (y0, x0, y1, x1) in enumerate(regions):
        expect = torch.zeros(channels, tile, tile)
        expect[:, : y1 - y0, : x1 - x0] = x[0, :, y0:y1, x0:x1]
        assert torch.equal(tiles[0, t], expect), t
    covered = torch.zeros(probe, dtype=torch.bool)
    for y0, x0, y1, x1 in regions:
        covered[y0:y1, x0:x1] = True
    assert covered.all()


@pytest.mark.parametrize(("family", "params", "image_size", "probe", "channels"), _family_configs("conv_rnn"))
def test_conv_rnn_regions_are_the_steps(family, params, image_size, probe, channels) -> None:
    model = _build(family, params, image_size, channels)
    x = torch.randn(1, channels, *probe)
    steps, rows, cols = model.steps(x)  # (1, T, C, sh, sw)
    regions = model.regions(probe)
    assert len(regions) == rows * cols == steps.shape[1]
    for t, (y0, x0, y1, x1) in enumerate(regions):
        expect = torch.zeros(steps.shape[2:])
        expect[:, : y1 - y0, : x1 - x0] = x[0, :, y0:y1, x0:x1]
        assert torch.equal(steps[0, t], expect), t


def test_captioner_attention_grid() -> None:
    family, params, image_size, probe, channels = _family_configs("captioner")[0]
    model = _build(family, params, image_size, channels)
    for size in [probe, (32, 45)]:
        assert model.intermediate_info(size)["attention"].grid == model.grid_size(*size)


# -- a step reads its region ----------------------------------------------------------------------


def _changed_steps(model, x: Tensor, box, key: str) -> Tensor:
    """(T,) bool: which steps of ``key`` change when the pixels of ``box`` change."""
    y0, x0, y1, x1 = box
    x2 = x.clone()
    x2[..., y0:y1, x0:x1] += torch.randn_like(x2[..., y0:y1, x0:x1]) + 1.0
    a, b = _run(model, x)[1][key], _run(model, x2)[1][key]
    return (a - b).abs().flatten(2).amax(-1)[0] > 1e-6  # (T,)


def _first_layer(info: dict[str, Intermediate], kind: str = "recurrent_state") -> list[str]:
    """The state keys of the first recurrent layer: the one that reads the regions. (A layer above
    a bidirectional one reads both directions below it, so every step of it has seen everything.)"""
    keys = [k for k, d in info.items() if d.kind == kind and d.gate is None]
    first = min(info[k].layer for k in keys)
    return [k for k in keys if info[k].layer == first]


@pytest.mark.parametrize(
    ("family", "params", "image_size", "probe", "channels"),
    _family_configs("rnn") + [c for c in _family_configs("patch_rnn") if "stride" not in c[1]],
)
def test_step_t_reads_its_region(family, params, image_size, probe, channels) -> None:
    """Non-overlapping regions: changing region t changes step t, not the forward steps before it
    (nor the backward steps after it)."""
    torch.manual_seed(1)
    model = _build(family, params, image_size, channels)
    info = model.intermediate_info(probe)
    x = torch.randn(1, channels, *probe)
    regions = info["rnn.0:fwd"].regions
    for t in sorted({0, len(regions) // 2, len(regions) - 1}):
        for key in _first_layer(info):
            changed = _changed_steps(model, x, regions[t], key)
            assert changed[t], (key, t)
            if info[key].direction == "fwd":
                assert not changed[:t].any(), (key, t, changed)
            else:
                assert not changed[t + 1 :].any(), (key, t, changed)


def _overlaps(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@pytest.mark.parametrize(
    ("family", "params", "image_size", "probe", "channels"),
    [c for c in _family_configs("patch_rnn") if "stride" in c[1]] + _family_configs("conv_rnn"),
)
def test_step_t_reads_its_overlapping_region(family, params, image_size, probe, channels) -> None:
    """Overlapping tiles (and conv_rnn's strips/tiles): the forward states before the first step
    whose region meets region t stay as they were; step t changes."""
    torch.manual_seed(1)
    model = _build(family, params, image_size, channels)
    info = model.intermediate_info(probe)
    kind = "spatial_state" if family == "conv_rnn" else "recurrent_state"
    keys = [k for k in _first_layer(info, kind) if info[k].direction in (None, "fwd")]
    x = torch.randn(1, channels, *probe)
    regions = info[keys[0]].regions
    for t in sorted({0, len(regions) // 2, len(regions) - 1}):
        first = min(s for s, r in enumerate(regions) if _overlaps(r, regions[t]))
        for key in keys:
            changed = _changed_steps(model, x, regions[t], key)
            assert changed[t], (key, t)
            assert not changed[:first].any(), (key, t, changed)


@pytest.mark.parametrize(("family", "params", "image_size", "probe", "channels"), _family_configs("crnn"))
def test_crnn_frame_t_reads_its_band(family, params, image_size, probe, channels) -> None:
    """Changing band t changes frame t; forward frames whose receptive field ends before the band,
    and backward frames whose receptive field starts after it, stay as they were."""
    torch.manual_seed(1)
    model = _build(family, params, image_size, channels)
    info = model.intermediate_info(probe)
    stride, width, start = model.receptive_field()
    x = torch.randn(1, channels, *probe)
    regions = info["rnn.0:fwd"].regions
    for t in sorted({0, len(regions) // 2, len(regions) - 1}):
        _, bx0, _, bx1 = regions[t]
        before = [j for j in range(len(regions)) if start + j * stride + width <= bx0]
        after = [j for j in range(len(regions)) if start + j * stride >= bx1]
        for key in _first_layer(info):
            changed = _changed_steps(model, x, regions[t], key)
            assert changed[t], (key, t)
            quiet = before if info[key].direction == "fwd" else after
            assert not changed[quiet].any(), (key, t, quiet, changed)
