"""Family ``patch_rnn``: tiles, a shared tile CNN, a recurrent stack over the tiles."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models import ParamError, build_model
from models._recurrent import GATES
from models.patch_rnn import tile_grid


@pytest.mark.parametrize(
    ("channels", "h", "w", "params"),
    [
        (1, 32, 32, {}),
        (3, 32, 48, {"tile": 16, "channels": "8,16,16", "cell": "lstm", "bidirectional": True}),
        (1, 30, 26, {"tile": 8, "stride": 4, "pool": "mean", "hidden_size": 12}),  # overlap, padded edges
        (1, 32, 32, {"tile": 16, "tile_input": 8, "num_layers": 2, "dropout": 0.2, "pool": "max"}),
        (3, 24, 24, {"tile": 6, "tile_input": 12, "channels": "4", "head_dropout": 0.3}),  # upscaled tiles
    ],
)
def test_shapes_and_intermediates(channels, h, w, params, check_intermediates) -> None:
    net = build_model("patch_rnn", in_channels=channels, num_outputs=5, image_size=(h, w), **params)
    p = net.params
    x = torch.randn(2, channels, h, w)
    feats = check_intermediates(net, x)
    assert net(x).shape == (2, 5)
    rows, cols = tile_grid(h, p.tile, p.step), tile_grid(w, p.tile, p.step)
    side = p.cnn_input
    for i, ch in enumerate(p.channels):
        side //= 2
        assert feats[f"cnn.{i}"].shape == (2, ch, rows * side, cols * side)  # the tile mosaic
    dirs = ["fwd", "bwd"] if p.bidirectional else ["fwd"]
    states = [f"rnn.{i}:{d}" for i in range(p.num_layers) for d in dirs]
    gates = [f"{s}:{g}" for s in states for g in GATES[p.cell]]
    assert sorted(k for k in feats if k.startswith("rnn.")) == sorted(states + gates)
    for k in states + gates:
        assert feats[k].shape == (2, rows * cols, p.hidden_size)  # one step per tile
    _, no_gates = net.forward_intermediates(x, gates=False)
    assert sorted(k for k in no_gates if k.startswith("rnn.")) == sorted(states)


def test_default_reads_sixteen_tiles_of_a_32px_image() -> None:
    net = build_model("patch_rnn", in_channels=1, num_outputs=10, image_size=(32, 32)).eval()
    tiles, rows, cols = net.tiles(torch.randn(1, 1, 32, 32))
    assert (rows, cols) == (4, 4) and tiles.shape == (1, 16, 1, 8, 8)
    assert net.rnn[0].input_size == 32 * 2 * 2  # two pooling stages: 8 -> 2, flattened
    assert type(net.rnn[0]) is nn.GRU


def test_tiles_are_in_raster_order_and_cover_the_image() -> None:
    net = build_model("patch_rnn", in_channels=3, num_outputs=2, image_size=(20, 26), tile=8, stride=6)
    x = torch.randn(2, 3, 20, 26)
    tiles, rows, cols = net.tiles(x)
    assert (rows, cols) == (3, 4)  # 8 + 2*6 = 20 rows of pixels, 8 + 3*6 = 26 columns: no padding
    for r in range(rows):
        for c in range(cols):
            assert torch.equal(tiles[:, r * cols + c], x[:, :, r * 6 : r * 6 + 8, c * 6 : c * 6 + 8])
    tiles, rows, cols = net.tiles(torch.ones(1, 3, 21, 27))  # one pixel more each way: another row/column
    assert (rows, cols) == (4, 5)
    assert tiles[0, -1, :, :3, :3].eq(1).all() and tiles[0, -1, :, 4:, :].eq(0).all()  # zero padding


def test_mosaic_puts_every_tile_at_its_grid_position() -> None:
    net = build_model("patch_rnn", in_channels=1, num_outputs=2, image_size=(32, 24))
    x = torch.randn(2, 1, 32, 24)
    tiles, rows, cols = net.tiles(x)
    assert torch.equal(net.mosaic(tiles.flatten(0, 1), 2, rows, cols), x)  # tiles touching: the image again


def test_tile_input_resizes_every_tile() -> None:
    net = build_model("patch_rnn", in_channels=1, num_outputs=2, image_size=(32, 32), tile=16, tile_input=8)
    tiles, _, _ = net.tiles(torch.ones(1, 1, 32, 32))
    assert tiles.shape == (1, 4, 1, 8, 8) and torch.allclose(tiles, torch.ones_like(tiles))


def test_one_shared_cnn_for_all_tiles() -> None:
    """The same tile anywhere in the image gives the same tile features (before the recurrence)."""
    net = build_model("patch_rnn", in_channels=1, num_outputs=2, image_size=(16, 16)).eval()
    patch = torch.randn(1, 1, 8, 8)
    x = patch.repeat(1, 1, 2, 2)
    _, feats = net.forward_intermediates(x)
    f = feats["cnn.1"][0]  # (C, 2*2, 2*2)
    assert torch.allclose(f[:, :2, :2], f[:, 2:, 2:]) and torch.allclose(f[:, :2, :2], f[:, :2, 2:])


def test_variable_width() -> None:
    net = build_model("patch_rnn", in_channels=1, num_outputs=3, image_size=(32, None)).eval()
    for w in (8, 33, 70):
        y, feats = net.forward_intermediates(torch.randn(2, 1, 32, w))
        assert y.shape == (2, 3) and feats["rnn.0:fwd"].shape[1] == 4 * tile_grid(w, 8, 8)


@pytest.mark.parametrize(
    ("size", "values", "name", "match"),
    [
        ((32, 32), {"tile": 40}, "tile", "do not fit"),
        ((32, 12), {"tile": 16}, "tile", "tile <= 12"),
        ((32, 32), {"stride": 12}, "stride", "skip pixels"),
        ((32, 32), {"tile": 16, "tile_input": 2}, "tile_input", "at least 4 px"),
        ((32, 32), {"tile": 4, "channels": "8,8,8"}, "tile", "at least 8 px"),
        ((256, 256), {"tile": 4}, "tile", "more than 1024"),
        ((64, 64), {"tile": 8, "stride": 1}, "stride", "more than 1024"),
        ((32, 32), {"dropout": 0.3}, "dropout", "num_layers"),
        ((32, 32), {"cell": "rnn"}, "cell", "gru"),
    ],
)
def test_errors_name_the_parameter(size, values, name, match) -> None:
    with pytest.raises(ParamError, match=match) as e:
        build_model("patch_rnn", in_channels=1, num_outputs=2, image_size=size, **values)
    assert e.value.param == name


def test_it_learns(two_class_images, train_losses) -> None:
    x, y = two_class_images(channels=1, size=16)
    net = build_model("patch_rnn", in_channels=1, num_outputs=2, image_size=(16, 16), tile=8)
    losses = train_losses(net, x, y)
    assert losses[-1] < losses[0] / 2, losses


@pytest.mark.filterwarnings("ignore:The tensor attributes:UserWarning")
def test_torch_export_matches_eager() -> None:
    net = build_model("patch_rnn", in_channels=1, num_outputs=3, image_size=(32, 32), tile_input=12).eval()
    x = torch.randn(2, 1, 32, 32)
    ep = torch.export.export(net, (x,))
    assert torch.allclose(ep.module()(x), net(x), atol=1e-5)
