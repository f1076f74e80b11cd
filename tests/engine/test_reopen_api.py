"""What a reopened model tells the inspector: whether it has a run folder (history, snapshots,
data) or is a bundle, and that a probe and a prediction on two threads take turns on its model."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np

from explorer.engine import load_run, runfolder
from explorer.engine.atomic import write_json
from explorer.engine.export import export_run
from explorer.engine.probe_run import probe_run
from tests.engine.export_helpers import make_run


def _image(tmp_path: Path) -> str:
    p = tmp_path / "x.png"
    cv2.imwrite(str(p), (np.arange(256, dtype=np.uint8).reshape(16, 16)))
    return str(p)


def test_a_run_folder_has_its_history_a_bundle_has_none(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "run", "cnn", "classify", params={"channels": "4,8"}, size=(16, 16))
    write_json(run_dir / runfolder.HISTORY, [{"epoch": 1}, {"epoch": 2}, {"epoch": 3}])
    run = load_run(run_dir)
    assert run.run_dir == run_dir and run.final_epoch == 3
    (tmp_path / "out").mkdir()
    bundle = Path(export_run(run, "safetensors", tmp_path / "out" / "m").files[0])
    reopened = load_run(bundle)
    assert reopened.run_dir is None and reopened.final_epoch == 0
    assert probe_run(reopened, _image(tmp_path)).epoch == 0


def test_a_prediction_waits_while_a_probe_holds_the_model(tmp_path: Path) -> None:
    run = load_run(make_run(tmp_path / "run", "cnn", "classify", params={"channels": "4,8"}, size=(16, 16)))
    image = _image(tmp_path)
    t0 = time.monotonic()
    run.predict([image])  # warm
    alone = time.monotonic() - t0
    original = run.model.forward_intermediates
    inside = threading.Event()

    def slow(x):  # noqa: ANN001, ANN202 - a probe that takes its time inside the model
        inside.set()
        time.sleep(1.5)
        return original(x)

    run.model.forward_intermediates = slow
    probe = threading.Thread(target=lambda: probe_run(run, image, with_gradcam=False))
    probe.start()
    assert inside.wait(10)
    t0 = time.monotonic()
    (pred,) = run.predict([image])
    waited = time.monotonic() - t0
    probe.join()
    assert "label" in pred and waited > 1.0 > alone  # it ran only once the probe had let go of the model
