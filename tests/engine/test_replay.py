"""Epoch replay: the probe hook keeps one snapshot per epoch in the run folder; reading it back
gives what the probe reported at that epoch's end (float16, channels capped)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from explorer.engine import EpochReport, ProbeReport, RunConfig, Trainer, runfolder
from explorer.engine.replay import (
    MAX_CHANNELS,
    list_epochs,
    load_snapshot,
    reduce_intermediate,
    snapshot_bytes,
    snapshot_paths,
    write_snapshot,
)
from tests.datasets import write_two_class_folder


def _train(data: Path, out: Path, *, epochs: int = 3, interval: float = 3600.0, arch: str = "cnn", **params) -> list:
    cfg = RunConfig(arch=arch, params=params or {"channels": "8,16"})
    cfg.data.source = str(data)
    cfg.train.epochs = epochs
    cfg.train.batch_size = 8
    cfg.train.probe_interval = interval
    return list(Trainer(cfg, out, report_interval=0).run())


@pytest.fixture(scope="module")
def two_class(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_two_class_folder(tmp_path_factory.mktemp("two"), n=24, size=16)


def test_three_epochs_give_three_snapshots_equal_to_the_epoch_end_probes(two_class: Path, tmp_path: Path) -> None:
    events = _train(two_class, tmp_path / "run")
    run = tmp_path / "run"
    assert list_epochs(run) == [1, 2, 3]
    assert (run / runfolder.PROBES / "epoch_0002.npz").is_file()
    # with a one-hour timer, the only probes are the epoch ends: one per epoch, before its report
    probes = [e for e in events if isinstance(e, ProbeReport)]
    epochs = [e for e in events if isinstance(e, EpochReport)]
    assert [p.epoch for p in probes] == [1, 2, 3]
    steps = [e for e in events if not isinstance(e, (ProbeReport, EpochReport))]
    assert steps  # step reports exist too
    for p in probes:
        assert events.index(p) < events.index(epochs[p.epoch - 1])
        snap = load_snapshot(run, p.epoch)
        assert snap.epoch == p.epoch and len(snap.reports) == 1
        r = snap.reports[0]
        assert (r.path, r.epoch, r.global_step, r.text, r.tokens) == (p.path, p.epoch, p.global_step, p.text, p.tokens)
        assert r.info == p.info and r.output_info == p.output_info and r.info["features.0"]["kind"] == "feature_map"
        np.testing.assert_array_equal(r.image, p.image)
        np.testing.assert_array_equal(r.probabilities, p.probabilities)
        assert list(r.intermediates) == list(p.intermediates)
        for name, a in p.intermediates.items():
            expected = a[:MAX_CHANNELS].astype(np.float16).astype(np.float32)
            np.testing.assert_array_equal(r.intermediates[name], expected)
            assert r.intermediates[name].dtype == np.float32
    # the weights change between epochs, and so do the stored maps
    a, b = (load_snapshot(run, e).reports[0].intermediates["features.1"] for e in (1, 3))
    assert not np.array_equal(a, b)


def test_no_snapshots_without_probes(two_class: Path, tmp_path: Path) -> None:
    _train(two_class, tmp_path / "run", epochs=1, interval=0.0)
    assert list_epochs(tmp_path / "run") == []
    with pytest.raises(FileNotFoundError, match="no probe snapshot of epoch 1"):
        load_snapshot(tmp_path / "run", 1)


def test_channels_are_capped_along_the_declared_axis_and_counted() -> None:
    fmap = np.arange(100 * 3 * 2, dtype=np.float32).reshape(100, 3, 2)
    stored, n = reduce_intermediate(fmap, {"axes": ["channel", "y", "x"]})
    assert n == 100 and stored.shape == (MAX_CHANNELS, 3, 2) and stored.dtype == np.float16
    spatial = np.ones((5, 80, 2, 2), np.float32) * 1e6  # beyond float16: clipped, not inf
    stored, n = reduce_intermediate(spatial, {"axes": ["time", "channel", "y", "x"]})
    assert n == 80 and stored.shape == (5, MAX_CHANNELS, 2, 2) and np.isfinite(stored).all()
    states = np.zeros((7, 300), np.float32)
    stored, n = reduce_intermediate(states, {"axes": ["time", "unit"]})
    assert n is None and stored.shape == (7, 300)
    tokens = np.array([4, 5, 2], np.int64)
    stored, n = reduce_intermediate(tokens, {"axes": ["token"]})
    assert stored.dtype == np.int64 and n is None
    ids = np.array([4, 3001, 7], np.float32)  # as the probe reports them; 3001 is not a float16
    stored, _ = reduce_intermediate(ids, {"kind": "tokens", "axes": ["token"]})
    np.testing.assert_array_equal(stored, ids)


def test_a_snapshot_round_trips_text_tokens_and_several_images(tmp_path: Path) -> None:
    reports = [
        ProbeReport(
            epoch=4,
            global_step=40 + i,
            path=f"img{i}.png",
            image=np.full((4, 6, 1), i, np.uint8),
            probabilities=np.zeros(0, np.float32),
            intermediates={"encoder.0": np.ones((70, 2, 3), np.float32), "tokens": np.array([4, 5])},
            text="a red circle",
            info={"encoder.0": {"kind": "feature_map", "axes": ["channel", "y", "x"]}, "tokens": {"kind": "tokens"}},
            output_info={"kind": "token_logits"},
            tokens=["a", "red"],
        )
        for i in range(2)
    ]
    write_snapshot(tmp_path, 4, reports)
    snap = load_snapshot(tmp_path, 4)
    assert [r.path for r in snap.reports] == ["img0.png", "img1.png"]
    assert snap.reports[1].tokens == ["a", "red"] and snap.reports[1].text == "a red circle"
    assert snap.channels == [{"encoder.0": 70}, {"encoder.0": 70}]
    assert snap.reports[0].intermediates["encoder.0"].shape == (64, 2, 3)
    np.testing.assert_array_equal(snap.reports[1].image, reports[1].image)
    assert snapshot_bytes(tmp_path, 4) == sum(p.stat().st_size for p in snapshot_paths(tmp_path, 4))
    # an epoch whose JSON is missing (a crash between the two writes) is not listed
    snapshot_paths(tmp_path, 4)[1].unlink()
    assert list_epochs(tmp_path) == []


def test_a_captioner_snapshot_keeps_its_words_and_declarations(tmp_path: Path) -> None:
    from tests.datasets import export_digit_strings

    train, _ = export_digit_strings(tmp_path / "cap", n_train=16, n_test=2, captions=True)
    cfg = RunConfig(
        arch="captioner", params={"channels": "8,16", "hidden_size": 16, "embed_dim": 8, "attention_dim": 8}
    )
    cfg.data.source = str(train)
    cfg.train.epochs = 1
    cfg.train.batch_size = 8
    cfg.train.probe_interval = 3600.0
    events = list(Trainer(cfg, tmp_path / "run").run())
    (p,) = [e for e in events if isinstance(e, ProbeReport)]
    assert p.tokens is not None and p.text == " ".join(p.tokens)
    assert p.output_info["kind"] == "token_logits" and p.info["attention"]["kind"] == "attention"
    (r,) = load_snapshot(tmp_path / "run", 1).reports
    assert (r.tokens, r.text, r.info, r.output_info) == (p.tokens, p.text, p.info, p.output_info)
    np.testing.assert_array_equal(r.intermediates["tokens"], p.intermediates["tokens"])
    att = p.intermediates["attention"].astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(r.intermediates["attention"], att)
