"""File > Open Model: an exported sequence bundle predicts text; refusals are messages and a
crafted pickle never runs."""

from __future__ import annotations

import csv
import pickle
from pathlib import Path

import pytest
import torch
from PySide6.QtWidgets import QMessageBox

from explorer.cli import main
from explorer.engine import load_run
from explorer.engine.export import export_run
from explorer.ui.open_model import MODEL_FILTER, NOTHING_READ, OpenModelPanel, image_paths, model_path
from tests.ui.conftest import drop_paths


@pytest.fixture(scope="module")
def text_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the exported .safetensors of a 1-epoch crnn CTC run, its test image folder)."""
    from tests.datasets import export_digit_strings

    root = tmp_path_factory.mktemp("crnn")
    train, test = export_digit_strings(root / "text", n_train=16, n_test=3)
    run = root / "run"
    argv = ["train", str(train), "--arch", "crnn", "--set", "channels=8,16", "--set", "hidden_size=16"]
    assert main([*argv, "--epochs", "1", "--batch-size", "8", "--out", str(run), "--quiet"]) == 0
    (root / "export").mkdir()
    result = export_run(load_run(run), "safetensors", root / "export" / "digits")
    return Path(result.files[0]), test


def _panel(qtbot) -> OpenModelPanel:  # noqa: ANN001
    panel = OpenModelPanel()
    qtbot.addWidget(panel)
    panel.resize(800, 500)
    panel.show()
    return panel


def test_a_sequence_bundle_shows_text_predictions(qtbot, text_bundle: tuple[Path, Path]) -> None:
    bundle, test = text_bundle
    panel = _panel(qtbot)
    with qtbot.waitSignal(panel.modelLoaded, timeout=60_000):
        panel.open_model(bundle)
    run = panel.run
    assert run is not None and run.task == "sequence"
    desc = panel.description.text()
    assert "crnn" in desc and "sequence" in desc and f"{sum(p.numel() for p in run.model.parameters()):,}" in desc
    headers = [panel.table.horizontalHeaderItem(i).text() for i in range(panel.table.columnCount())]
    assert headers == ["Image", *run.task_object.prediction_columns()]
    assert drop_paths(panel, [test / "images"])  # a dropped folder is walked
    qtbot.waitUntil(lambda: panel.table.rowCount() == 3 and not panel.busy, timeout=60_000)
    want = {Path(p["path"]).name: run.task_object.prediction_cells(p) for p in run.predict(image_paths([test]))}
    for row in range(3):
        name = panel.table.item(row, 0).text()
        cells = tuple(panel.table.item(row, j).text() for j in range(1, panel.table.columnCount()))
        text, *rest = want[name]
        assert all(ch.isdigit() for ch in text)  # text, read by CTC (a 1-epoch model may read nothing)
        assert cells == (text or NOTHING_READ, *rest)
    panel.shutdown()


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # unpickling this would create the marker file
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("zipped", [True, False])
def test_a_crafted_pickle_is_refused_as_a_message(qtbot, text_bundle, tmp_path: Path, zipped: bool) -> None:
    bundle, _ = text_bundle
    marker = tmp_path / "pwned"
    evil = tmp_path / "model.pt"
    payload = {"cnn.0.0.weight": torch.zeros(1), "trap": _Evil(marker)}
    torch.save(payload, evil) if zipped else evil.write_bytes(pickle.dumps(payload))
    evil.with_suffix(".json").write_bytes(bundle.with_suffix(".json").read_bytes())
    panel = _panel(qtbot)
    with qtbot.waitSignal(panel.loadFailed, timeout=60_000) as blocker:
        panel.open_model(evil)
    message = blocker.args[0]
    assert "Traceback" not in message and "weights_only=False" not in message
    box = panel.message_box
    assert isinstance(box, QMessageBox) and box.isVisible() and str(evil) in box.text()
    assert panel.run is None and not panel.add_btn.isEnabled()
    assert not marker.exists()
    box.close()
    panel.shutdown()


def test_mismatched_weights_are_a_message_listing_keys(qtbot, text_bundle, tmp_path: Path) -> None:
    bundle, _ = text_bundle
    state = {k: v for k, v in load_run(bundle).model.state_dict().items()}
    state["extra.weight"] = torch.zeros(2)
    first = next(iter(state))
    del state[first]
    pt = tmp_path / "m.pth"
    torch.save(state, pt)
    pt.with_suffix(".json").write_bytes(bundle.with_suffix(".json").read_bytes())
    panel = _panel(qtbot)
    with qtbot.waitSignal(panel.loadFailed, timeout=60_000):
        panel.open_model(pt)
    text = panel.message_box.text()
    assert "extra.weight" in text and first in text
    panel.message_box.close()
    panel.shutdown()


def test_the_filter_and_run_folder_choice(tmp_path: Path) -> None:
    for suffix in (".safetensors", ".pt", ".pth", ".json"):
        assert f"*{suffix}" in MODEL_FILTER
    run = tmp_path / "r"
    run.mkdir()
    (run / "config.json").write_text("{}")
    (run / "weights.safetensors").write_bytes(b"")
    assert model_path(run / "config.json") == run
    assert model_path(tmp_path / "x.json") == tmp_path / "x.json"
    with (tmp_path / "labels.csv").open("w") as f:
        csv.writer(f).writerow(["path"])
    (tmp_path / "a.png").write_bytes(b"")
    assert image_paths([tmp_path]) == [str(tmp_path / "a.png")]
