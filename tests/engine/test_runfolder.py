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


def test_files_written_together_are_all_old_or_all_new(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    runfolder.write_together(tmp_path, [("a.json", runfolder.json_writer(1)), ("b.json", runfolder.json_writer(1))])
    real = runfolder._write_staged
    for fail_at in (1, 2):
        calls = [0]

        def write(tmp, writer, fail_at=fail_at, calls=calls):  # noqa: ANN001
            calls[0] += 1
            if calls[0] == fail_at:
                tmp.write_bytes(b"half")
                raise OSError(errno.ENOSPC, "No space left on device")
            real(tmp, writer)

        monkeypatch.setattr(runfolder, "_write_staged", write)
        with pytest.raises(OSError):
            runfolder.write_together(
                tmp_path, [("a.json", runfolder.json_writer(2)), ("b.json", runfolder.json_writer(2))]
            )
        assert (read_json(tmp_path / "a.json"), read_json(tmp_path / "b.json")) == (1, 1)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json"]  # no temp litter
    monkeypatch.undo()
    runfolder.write_together(tmp_path, [("a.json", runfolder.json_writer(2)), ("b.json", runfolder.json_writer(2))])
    assert (read_json(tmp_path / "a.json"), read_json(tmp_path / "b.json")) == (2, 2)


def test_recover_brings_back_a_run_moved_aside_and_clears_leftovers(tmp_path: Path) -> None:
    from explorer.engine.ownership import recover

    run = tmp_path / "run"
    (tmp_path / ".run.old-x" / "run").mkdir(parents=True)
    (tmp_path / ".run.old-x" / "run" / "config.json").write_text("{}")
    (tmp_path / ".run.new-y").mkdir()
    recover(run)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"] and (run / "config.json").is_file()
