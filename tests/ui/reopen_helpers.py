"""Tiny trained runs of three families (classify cnn, CTC crnn, captioner), their exported
safetensors bundles, and a fresh-process client that opens a bundle in the app's Open Model
window and prints what it predicted (the "after restarting the app" check).

    python -m tests.ui.reopen_helpers '[["BUNDLE", ["IMAGE", ...]], ...]'
        -> on stdout, one JSON list per bundle: the predictions its window showed
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: family -> (CLI arguments, epochs); sizes kept tiny, the point is faithfulness, not accuracy
RECIPES: dict[str, tuple[list[str], int]] = {
    "cnn": (["--arch", "cnn", "--set", "channels=8,16"], 2),
    "crnn": (["--arch", "crnn", "--set", "channels=8,16", "--set", "hidden_size=16"], 1),
    "captioner": (
        ["--arch", "captioner", "--set", "channels=8,16", "--set", "hidden_size=16", "--set", "embed_dim=8",
         "--set", "attention_dim=8"],
        1,
    ),
}  # fmt: skip


@dataclass
class Trained:
    family: str
    run_dir: Path
    bundle: Path  # the exported .safetensors (NAME.json beside it)
    images: list[str]  # images the run never trained on
    before: list[dict[str, Any]]  # load_run(run_dir).predict(images), before the export


def train_and_export(root: Path, family: str) -> Trained:
    from explorer.cli import main
    from explorer.engine import load_run
    from explorer.engine.export import export_run
    from tests.datasets import export_digit_strings, write_two_class_folder

    argv, epochs = RECIPES[family]
    if family == "cnn":
        train = write_two_class_folder(root / "data", n=8, size=16)
        test = write_two_class_folder(root / "new", n=2, size=16, seed=7)
        images = sorted(str(p) for p in test.rglob("*.png"))[:3]
    else:
        train, test = export_digit_strings(root / "data", n_train=16, n_test=3, captions=family == "captioner")
        images = sorted(str(p) for p in (test / "images").glob("*.png"))
    run_dir = root / "run"
    args = ["train", str(train), *argv, "--epochs", str(epochs), "--batch-size", "8", "--out", str(run_dir)]
    assert main([*args, "--quiet"]) == 0
    run = load_run(run_dir)
    before = run.predict(images)
    (root / "export").mkdir()
    result = export_run(run, "safetensors", root / "export" / family)
    return Trained(family, run_dir, Path(result.files[0]), images, before)


def same_prediction(a: dict[str, Any], b: dict[str, Any], tol: float = 1e-5) -> list[str]:
    """What differs between two predictions: texts exactly, numbers within ``tol``."""
    diffs: list[str] = []
    if set(a) != set(b):
        return [f"keys {sorted(a)} != {sorted(b)}"]
    for k in a:
        x, y = a[k], b[k]
        if isinstance(x, dict):
            diffs += [f"{k}.{d}" for d in same_prediction(x, y, tol)]
        elif isinstance(x, (int, float)) and not isinstance(x, bool):
            if abs(float(x) - float(y)) > tol:
                diffs.append(f"{k}: {x} != {y}")
        elif isinstance(x, list) and x and isinstance(x[0], dict):
            diffs += [f"{k}[{i}].{d}" for i, (u, v) in enumerate(zip(x, y)) for d in same_prediction(u, v, tol)]
            if len(x) != len(y):
                diffs.append(f"{k}: {len(x)} != {len(y)} entries")
        elif isinstance(x, list) and x and isinstance(x[0], (int, float)):
            if len(x) != len(y) or not np.allclose(x, y, rtol=0, atol=tol):
                diffs.append(f"{k}: {x} != {y}")
        elif x != y:
            diffs.append(f"{k}: {x!r} != {y!r}")
    return diffs


def _client(jobs: list[tuple[str, list[str]]]) -> list[list[dict[str, Any]]]:
    """A new process, a new application: for each (bundle, images), a new Open Model window
    opens the bundle and predicts the images."""
    import explorer.ui  # noqa: F401  (Qt-binding work-around first)

    # isort: split
    from PySide6.QtWidgets import QApplication

    from explorer.ui.open_model import OpenModelWindow

    app = QApplication(sys.argv[:1])  # only what the window needs: the main window is not imported

    def wait(cond, what: str, timeout: float = 120.0) -> None:  # noqa: ANN001
        t0 = time.monotonic()
        while not cond():
            if time.monotonic() - t0 > timeout:
                raise TimeoutError(what)
            app.processEvents()
            time.sleep(0.01)

    out = []
    for bundle, images in jobs:
        win = OpenModelWindow(bundle)
        win.show()
        wait(lambda: win.run is not None or win.panel.message_box is not None, "the model to load")  # noqa: B023
        if win.run is None:
            raise SystemExit(win.panel.message_box.text())
        win.panel.add_images(images)
        wait(lambda: len(win.panel.results) == len(images) and not win.panel.busy, "the predictions")  # noqa: B023
        out.append(list(win.panel.results))
        win.close()
        app.processEvents()
    return out


if __name__ == "__main__":
    print(json.dumps(_client(json.loads(sys.argv[1]))))
