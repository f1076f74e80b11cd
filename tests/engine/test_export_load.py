"""Re-import: run folders, exported bundles and plain state dicts; never unpickling objects."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest
import torch

from explorer import load_run
from explorer.cli import main
from explorer.engine import RunFolderError
from explorer.engine.export import ExportTargetError, export_files
from tests.datasets import write_two_class_folder
from tests.engine.export_helpers import make_run


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("l") / "run", "cnn", "classify", params={"channels": "4,8"}, size=(16, 16))


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    root = write_two_class_folder(tmp_path_factory.mktemp("img"), n=3, size=20)
    return [str(p) for p in sorted(root.rglob("*.png"))]


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # unpickling this would create the marker file
        return (Path.touch, (self.marker,))


def _evil_file(path: Path, marker: Path, zipped: bool = True) -> Path:
    payload = {"cnn.0.0.weight": torch.zeros(1), "trap": _Evil(marker)}
    if zipped:
        torch.save(payload, path)  # torch's zip format, as a real .pt would be
    else:
        path.write_bytes(pickle.dumps(payload))
    return path


@pytest.mark.parametrize("zipped", [True, False])
def test_a_crafted_pickle_is_refused_and_never_runs(run: Path, tmp_path: Path, zipped: bool) -> None:
    marker = tmp_path / "pwned"
    evil = _evil_file(tmp_path / "model.pt", marker, zipped)
    with pytest.raises(RunFolderError) as e:
        load_run(evil, config=run)
    msg = str(e.value)
    assert "refused" in msg and "nothing in it ran" in msg and "weights_only=False" not in msg
    assert not marker.exists()


def test_a_crafted_pickle_as_a_runs_weights_runs_nothing(run: Path, tmp_path: Path, capsys) -> None:
    marker = tmp_path / "pwned"
    bad = tmp_path / "run"
    shutil.copytree(run, bad)
    _evil_file(bad / "weights.safetensors", marker)
    assert main(["predict", str(bad), str(run / "config.json")]) == 2
    assert "damaged weights file" in capsys.readouterr().err
    (bad / "weights.safetensors").unlink()
    _evil_file(tmp_path / "m.pth", marker)
    shutil.copy(run / "config.json", tmp_path / "m.json")  # a .pth with its JSON, as a bundle
    with pytest.raises(RunFolderError, match="refused"):
        load_run(tmp_path / "m.pth")
    assert not marker.exists()


def test_plain_state_dicts_load_with_a_json_or_a_run(run: Path, tmp_path: Path, images: list[str]) -> None:
    ref = load_run(run)
    torch.save(ref.model.state_dict(), tmp_path / "w.pt")
    from_pt = load_run(tmp_path / "w.pt", config=run)
    assert from_pt.predict(images) == ref.predict(images)
    with pytest.raises(ExportTargetError, match="belongs to the run"):  # the run it borrowed its config from
        export_files(from_pt, "safetensors", run / "config.json")
    torch.save({"state_dict": {f"module.{k}": v for k, v in ref.model.state_dict().items()}}, tmp_path / "m.pth")
    shutil.copy(run / "config.json", tmp_path / "m.json")
    assert load_run(tmp_path / "m.pth").predict(images) == ref.predict(images)
    with pytest.raises(RunFolderError, match="do not say which model"):
        load_run(tmp_path / "w.pt")


def test_mismatched_weights_list_missing_unexpected_and_misshaped_keys(run: Path, tmp_path: Path) -> None:
    other = make_run(tmp_path / "other", "cnn", "classify", params={"channels": "4,8,16"}, size=(16, 16))
    torch.save(load_run(other).model.state_dict(), tmp_path / "w.pt")
    with pytest.raises(RunFolderError) as e:
        load_run(tmp_path / "w.pt", config=run)
    msg = str(e.value)
    assert "do not fit" in msg and "unexpected (" in msg and "mis-shaped" in msg
    with pytest.raises(RunFolderError, match=r"missing \("):
        load_run(tmp_path / "w.pt", config=run, params={**load_run(run).params, "channels": [4, 8, 16, 32]})


def test_an_onnx_exports_json_is_not_a_pytorch_bundle(run: Path, tmp_path: Path) -> None:
    assert main(["export", str(run), "--format", "safetensors", "--out", str(tmp_path / "m")]) == 0
    assert load_run(tmp_path / "m.json").labels == load_run(run).labels  # the JSON opens its bundle too
    side = (tmp_path / "m.json").read_text().replace('"export_format": "safetensors"', '"export_format": "onnx"')
    (tmp_path / "o.json").write_text(side)
    with pytest.raises(RunFolderError, match="onnx export, which PyTorch does not load"):
        load_run(tmp_path / "o.json")
