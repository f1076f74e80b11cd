"""The captioner's probe carries the beam search's candidates with their scores (Task API
``probe_candidates``), each score the teacher-forced log-probability of its words."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from explorer.engine.tasks import get_task
from explorer.engine.tasks.caption import PROBE_BEAM
from models import build_model
from models.captioner import END, PAD, START

VOCAB = ["<pad>", "<start>", "<end>", "<unk>", "a", "red", "blue", "circle", "square", "on", "the", "left"]


def _trained_captioner() -> torch.nn.Module:
    """A small captioner trained a little, so that some hypotheses end at END and some do not."""
    torch.manual_seed(3)
    net = build_model(
        "captioner", in_channels=1, num_outputs=len(VOCAB), image_size=(32, 48), channels="8,16,16", embed_dim=16,
        hidden_size=32, attention_dim=16,
    )  # fmt: skip
    x = torch.randn(4, 1, 32, 48)
    tok = torch.tensor(
        [[START, 4, 5, 7, END], [START, 4, 6, 8, END], [START, 10, 7, END, PAD], [START, 5, END, PAD, PAD]]
    )
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(12):
        logits, _ = net(x, tok)
        loss = F.cross_entropy(logits.transpose(1, 2), tok[:, 1:], ignore_index=PAD)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


def _teacher_forced_logp(net: torch.nn.Module, x: torch.Tensor, words: list[str], ended: bool) -> tuple[float, int]:
    seq = [START, *[VOCAB.index(w) for w in words]] + ([END] if ended else [])
    with torch.no_grad():
        logits, _ = net(x, torch.tensor([seq]))
    lp = F.log_softmax(logits[0].float(), -1)
    return float(lp[torch.arange(len(seq) - 1), torch.tensor(seq[1:])].sum()), len(seq) - 1


@pytest.mark.parametrize("seed", [0, 1])
def test_probe_candidates_are_the_beam_search_scored_by_teacher_forcing(seed: int) -> None:
    net = _trained_captioner()
    task = get_task("caption", {"max_len": 5})
    x = torch.randn(1, 1, 32, 48, generator=torch.Generator().manual_seed(seed))
    cands = task.probe_candidates(net, x, VOCAB)
    assert cands is not None and 1 < len(cands) <= PROBE_BEAM
    scores = [c["score"] for c in cands]
    assert scores == sorted(scores, reverse=True)
    best = task.predict(net, x, torch.tensor([48]), VOCAB, beam=PROBE_BEAM)[0]
    assert " ".join(cands[0]["words"]) == best["caption"] and cands[0]["score"] == pytest.approx(best["score"])
    gh, gw = net.grid_size(32, 48)
    for c in cands:
        logp, steps = _teacher_forced_logp(net, x, c["words"], c["ended"])
        assert c["logp"] == pytest.approx(logp, abs=1e-4)
        assert c["score"] == pytest.approx(logp / steps**0.7, abs=1e-4)
        assert c["alphas"].shape == (len(c["words"]), gh, gw)
        assert (abs(c["alphas"].sum(axis=(1, 2)) - 1) < 1e-5).all()  # each word's attention sums to 1


def test_tasks_without_alternatives_give_none() -> None:
    net = build_model("cnn", in_channels=1, num_outputs=3, image_size=(16, 16), channels="4")
    assert get_task("classify").probe_candidates(net, torch.zeros(1, 1, 16, 16), ["a", "b", "c"]) is None
