"""Epoch snapshots keep the captioner probe's beam candidates: words, scores and log-probabilities
exactly (JSON floats), each candidate's attention as float16; snapshots without candidates (other
tasks, or written before candidates were kept) load with none."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from explorer.engine import ProbeReport
from explorer.engine.replay import list_epochs, load_snapshot, snapshot_paths, write_snapshot
from tests.caption_run import train_tiny_captioner
from tests.ui.probe_reports import captioner


def _f16(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, np.float32).astype(np.float16).astype(np.float32)


def assert_same_candidates(got: list[dict] | None, want: list[dict]) -> None:
    assert got is not None and len(got) == len(want)
    for g, w in zip(got, want):
        assert set(g) == set(w)
        assert g["words"] == w["words"] and g["ended"] == w["ended"]
        assert g["score"] == w["score"] and g["logp"] == w["logp"]  # exactly, not approximately
        assert g["alphas"].dtype == np.float32 and g["alphas"].shape == w["alphas"].shape
        np.testing.assert_array_equal(g["alphas"], _f16(w["alphas"]))  # float16 rounding only
        np.testing.assert_allclose(g["alphas"], w["alphas"], rtol=1e-3, atol=1e-4)


def test_a_captioner_probes_candidates_round_trip(tmp_path: Path) -> None:
    report, _ = captioner()  # a real model's beam search, as the trainer's probe makes it
    assert report.candidates and len(report.candidates) >= 2
    # scores that a decimal or float32 round trip would change
    odd = [dict(c, score=c["score"] - 1 / 3, logp=-(0.1 + 0.2) * (i + 1)) for i, c in enumerate(report.candidates)]
    reports = [report, dataclasses.replace(report, path="other.png", candidates=odd)]
    write_snapshot(tmp_path, 5, reports)
    snap = load_snapshot(tmp_path, 5)
    assert_same_candidates(snap.reports[0].candidates, report.candidates)
    assert_same_candidates(snap.reports[1].candidates, odd)  # per probe image, not mixed up
    # text in the JSON, arrays (float16) in the npz
    npz, meta = snapshot_paths(tmp_path, 5)
    fields = json.loads(meta.read_text())["probes"][1]["candidates"]
    assert [set(c) for c in fields] == [{"words", "score", "logp", "ended"}] * len(odd)
    assert fields[1]["logp"] == odd[1]["logp"]
    with np.load(npz) as z:
        assert z["1/c.1.alphas"].dtype == np.float16
        assert z["0/c.2.alphas"].shape == report.candidates[2]["alphas"].shape


def test_snapshots_without_candidates_load_with_none(tmp_path: Path) -> None:
    report, _ = captioner()
    write_snapshot(tmp_path, 1, [dataclasses.replace(report, candidates=None)])
    write_snapshot(tmp_path, 2, [dataclasses.replace(report, candidates=[])])
    write_snapshot(tmp_path, 3, [report])
    # a snapshot as written before candidates were kept: no "candidates" key, no c.* arrays
    _, meta = snapshot_paths(tmp_path, 1)
    assert "candidates" not in json.loads(meta.read_text())["probes"][0]
    with np.load(snapshot_paths(tmp_path, 1)[0]) as z:
        assert not [k for k in z.files if "/c." in k]
    assert list_epochs(tmp_path) == [1, 2, 3]
    assert load_snapshot(tmp_path, 1).reports[0].candidates is None
    assert load_snapshot(tmp_path, 2).reports[0].candidates == []
    old = load_snapshot(tmp_path, 1).reports[0]
    np.testing.assert_array_equal(
        old.intermediates["attention"], load_snapshot(tmp_path, 3).reports[0].intermediates["attention"]
    )


@pytest.fixture(scope="module")
def caption_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[ProbeReport]]:
    return train_tiny_captioner(tmp_path_factory.mktemp("cap"))


def test_the_trainers_epoch_snapshots_keep_that_epochs_candidates(caption_run) -> None:  # noqa: ANN001
    run, probes = caption_run
    assert [p.epoch for p in probes] == list_epochs(run) == [1, 2]
    for p in probes:
        assert p.candidates
        assert_same_candidates(load_snapshot(run, p.epoch).reports[0].candidates, p.candidates)
    scores = [[c["score"] for c in load_snapshot(run, e).reports[0].candidates] for e in (1, 2)]
    assert scores[0] != scores[1]  # each epoch its own beam search


def test_damaged_candidates_are_reported_naming_the_snapshot(tmp_path: Path) -> None:
    report, _ = captioner()
    write_snapshot(tmp_path, 1, [report])
    npz, meta_path = snapshot_paths(tmp_path, 1)
    meta = json.loads(meta_path.read_text())
    meta["probes"][0]["candidates"] = {"words": ["a"]}  # not a list of candidates
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"epoch_0001\.npz.*damaged probe snapshot.*'candidates' is not a list"):
        load_snapshot(tmp_path, 1)
    meta_path.write_text("[]")
    with pytest.raises(ValueError, match=r"epoch_0001\.json: not a probe snapshot"):
        load_snapshot(tmp_path, 1)


def test_non_finite_scores_of_a_diverged_model_are_kept(tmp_path: Path) -> None:
    report, _ = captioner()
    cands = [
        dict(c, score=s, logp=lp) for c, s, lp in zip(report.candidates, [np.nan, -np.inf, 1.5], [np.inf, 0.0, -2.0])
    ]
    write_snapshot(tmp_path, 1, [dataclasses.replace(report, candidates=cands)])  # strict JSON: no NaN literal
    got = load_snapshot(tmp_path, 1).reports[0].candidates
    assert np.isnan(got[0]["score"]) and got[0]["logp"] == np.inf
    assert [(c["score"], c["logp"]) for c in got[1:]] == [(-np.inf, 0.0), (1.5, -2.0)]
    assert [c["words"] for c in got] == [c["words"] for c in cands]
