from __future__ import annotations

from pathlib import Path

import pytest
import torch

from explorer.engine import atomic, runfolder
from explorer.engine.atomic import read_json, write_json


def test_crash_mid_save_leaves_the_previous_file_usable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "weights.safetensors"
    atomic.write_safetensors(target, {"w": torch.ones(3)})

    def broken_save(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(atomic, "save_file", broken_save)
    with pytest.raises(OSError, match="disk full"):
        atomic.write_safetensors(target, {"w": torch.zeros(3)})
    assert torch.equal(atomic.read_safetensors(target)["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["weights.safetensors"]  # no temp litter


def test_json_write_is_atomic_and_refuses_nan(tmp_path: Path) -> None:
    write_json(tmp_path / "m.json", {"a": 1})
    with pytest.raises(ValueError):
        write_json(tmp_path / "m.json", {"a": float("nan")})
    assert read_json(tmp_path / "m.json") == {"a": 1}


def test_optimizer_state_round_trip_without_pickle() -> None:
    net = torch.nn.Linear(3, 2)
    for opt in (torch.optim.Adam(net.parameters()), torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)):
        net(torch.randn(4, 3)).sum().backward()
        opt.step()
        tensors, meta = runfolder.optimizer_state_to_flat(opt.state_dict())
        import json

        back = runfolder.optimizer_state_from_flat(tensors, json.loads(json.dumps(meta)))
        fresh = type(opt)(net.parameters(), lr=0.1)
        fresh.load_state_dict(back)
        for pid, st in opt.state_dict()["state"].items():
            for k, v in st.items():
                got = fresh.state_dict()["state"][pid][k]
                assert torch.equal(got, v) if torch.is_tensor(v) else got == v


@pytest.mark.parametrize(
    "setup, fragment",
    [
        (lambda d: None, "not a run folder"),
        (lambda d: d.mkdir(), "config.json: missing"),
        (lambda d: (d.mkdir(), (d / "config.json").write_text("{oops")), "unreadable"),
        (lambda d: (d.mkdir(), (d / "config.json").write_text('{"format": "x"}')), "not a Model Explorer run config"),
    ],
)
def test_bad_run_folders_are_named(tmp_path: Path, setup, fragment: str) -> None:
    d = tmp_path / "run"
    setup(d)
    with pytest.raises(runfolder.RunFolderError, match=fragment):
        runfolder.read_config(d)
