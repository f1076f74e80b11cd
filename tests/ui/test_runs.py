"""The runs screen with text and caption runs: the task decides the figures and the prediction table."""

from __future__ import annotations

from pathlib import Path

import pytest

from explorer.engine import RunConfig, Trainer, load_run
from explorer.ui.project import RunRecord
from explorer.ui.runs_panel import EMPTY_CELL, RunsPanel, run_summary
from explorer.ui.session import ProjectSession
from tests.datasets import export_digit_strings

pytestmark = pytest.mark.gui

_TINY = {
    "sequence": ("crnn", {"channels": [8, 16], "hidden_size": 16}),
    "caption": ("captioner", {"channels": "8,16", "hidden_size": 16, "embed_dim": 8, "attention_dim": 8}),
}


def _train(root: Path, task: str) -> tuple[Path, list[str]]:
    """A one-epoch run of ``task`` on a few digit lines; (run folder, test images)."""
    train, test = export_digit_strings(root / "data", n_train=16, n_test=3, captions=task == "caption")
    arch, params = _TINY[task]
    cfg = RunConfig(arch=arch, params=params)
    cfg.data.source = str(train)
    cfg.train.epochs, cfg.train.batch_size, cfg.train.device = 1, 8, "cpu"
    list(Trainer(cfg, root / "run").run())
    return root / "run", sorted(str(p) for p in (test / "images").iterdir())


@pytest.fixture(scope="module", params=sorted(_TINY))
def text_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, list[str]]:
    task = request.param
    run_dir, images = _train(tmp_path_factory.mktemp(task), task)
    return task, run_dir, images


def test_predict_images_shows_the_task_s_columns_and_cells(qtbot, text_run) -> None:  # noqa: ANN001
    task, run_dir, images = text_run
    session = ProjectSession(autosave=False)
    panel = RunsPanel(session)
    qtbot.addWidget(panel)
    run = load_run(run_dir)
    record = RunRecord(str(run_dir), "tiny", arch=run.arch, task=task, status="completed", metrics=run.metrics)
    session.add_run(record)
    with qtbot.waitSignal(session.message, check_params_cb=lambda m: m.startswith("predicted"), timeout=30000):
        panel.predict(record, images)
    table = panel.predictions
    want = run.task_object
    headers = [table.horizontalHeaderItem(j).text() for j in range(table.columnCount())]
    assert headers == ["Image", *want.prediction_columns()]  # Text / Caption, not Prediction
    expected = [tuple(c or EMPTY_CELL for c in want.prediction_cells(p)) for p in run.predict(images)]
    got = [tuple(table.item(i, j).text() for j in range(1, table.columnCount())) for i in range(table.rowCount())]
    assert got == expected
    assert table.item(0, 0).text() == Path(images[0]).name

    # the run's figure is the task's headline, under the headline's name
    head = want.headline
    assert panel.table.horizontalHeaderItem(4).text() == f"Val. {head.name}"
    assert panel.table.item(0, 4).text() == head.cell(run.metrics) != ""
    assert head.cell(run.metrics) in run_summary(record)
    panel.shutdown()


def test_the_curves_name_the_task_s_loss(qtbot, text_run) -> None:  # noqa: ANN001
    task, run_dir, _ = text_run
    session = ProjectSession(autosave=False)
    panel = RunsPanel(session)
    qtbot.addWidget(panel)
    run = load_run(run_dir)
    session.add_run(RunRecord(str(run_dir), "tiny", arch=run.arch, task=task, status="completed"))
    left = panel.curves.loss_plot.getPlotItem().getAxis("left").labelText
    assert left == run.task_object.loss_name != "cross-entropy"  # "CTC", "cross-entropy per word"
    acc = panel.curves.acc_plot.getPlotItem()  # a name too long for the axis is a line under the title
    assert run.task_object.accuracy_name in (acc.getAxis("left").labelText + acc.titleLabel.text)
    panel.shutdown()


def test_the_app_names_run_folder_files_only_through_runfolder() -> None:
    """File names inside a run folder have one owner, explorer/engine/runfolder.py."""
    import ast

    from explorer.engine import runfolder

    names = {runfolder.CONFIG, runfolder.WEIGHTS, runfolder.METRICS, runfolder.HISTORY}
    names |= {runfolder.CHECKPOINT, runfolder.PROBLEMS}
    ui = Path(__file__).resolve().parents[2] / "explorer" / "ui"
    found = [
        f"{path.relative_to(ui)}:{node.lineno}: {node.value!r}"
        for path in sorted(ui.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and node.value in names
    ]
    assert not found, "use the runfolder constants / helpers:\n" + "\n".join(found)
