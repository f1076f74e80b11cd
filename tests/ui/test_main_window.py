"""The main window: chrome, drops anywhere and onto classes, the class buckets, the welcome view."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import Qt

from explorer.engine.config import TASKS
from explorer.ui.main_window import APP_TITLE
from models import list_models
from tests.ui.conftest import drop_paths
from tests.ui.helpers import make_window

pytestmark = pytest.mark.gui


def _pngs(folder: Path, n: int, size: int = 16, seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        p = folder / f"img_{i:03d}.png"
        ok, buf = cv2.imencode(".png", rng.integers(0, 255, (size, size), dtype=np.uint8))
        assert ok
        p.write_bytes(buf.tobytes())
        out.append(p)
    return out


def test_window_has_title_menus_toolbar_and_status_bar(qtbot) -> None:
    w = make_window(qtbot)
    assert w.windowTitle() == APP_TITLE
    menus = [a.text().replace("&", "") for a in w.menuBar().actions()]
    assert menus[:2] == ["File", "View"] and menus[-1] == "Help"
    file_items = [a.text().replace("&", "") for a in w.file_menu.actions() if a.text()]
    for item in (
        "New Project",
        "Open Project…",
        "Save Project",
        "Import Folder…",
        "Import Manifest…",
        "Open Model…",
        "Export Model…",
        "Recent Projects",
        "Quit",
    ):
        assert item in file_items, item
    help_items = [a.text().replace("&", "") for a in w.help_menu.actions()]
    assert "Keyboard Shortcuts" in help_items and "About Model Explorer" in help_items
    assert [a.text() for a in w.toolbar.actions()[:3]] == ["Train", "Pause", "Stop"]
    assert w.act_train.isEnabled() and not w.act_pause.isEnabled() and not w.act_stop.isEnabled()
    assert w.device_label.text().startswith("Device: ")
    assert w.state_label.text() == "Idle"
    assert w.data_stack.currentWidget() is w.welcome  # first start: the welcome view


def test_drop_files_on_the_window_land_in_the_selected_class(qtbot, tmp_path: Path) -> None:
    w = make_window(qtbot)
    w.session.add_class("cats")
    w.session.add_class("dogs")
    w.dataset_panel.select_class("dogs")
    files = _pngs(tmp_path / "loose", 3)
    assert drop_paths(w, files)
    p = w.session.project
    assert sorted(path for path, t in p.samples if t == "dogs") == sorted(map(str, files))
    assert w.data_stack.currentWidget() is w.dataset_panel
    assert w.dataset_panel.sample_model.rowCount() == 3  # the grid shows the class they went to


def test_drop_files_onto_a_class_add_them_to_that_class(qtbot, tmp_path: Path) -> None:
    w = make_window(qtbot)
    for name in ("cats", "dogs", "birds"):
        w.session.add_class(name)
    w.dataset_panel.select_class("cats")  # selected, but the drop names another class
    view = w.dataset_panel.class_view
    model = w.dataset_panel.class_model
    rect = view.visualRect(model.index(model.row_of("birds")))
    files = _pngs(tmp_path / "b", 4)
    assert drop_paths(view.viewport(), files, rect.center())
    counts = w.session.project.counts()
    assert counts == {"cats": 0, "dogs": 0, "birds": 4}
    assert w.dataset_panel.selected_class == "birds"


def test_drop_a_folder_of_class_folders_imports_classes(qtbot, two_class: Path) -> None:
    w = make_window(qtbot)
    assert drop_paths(w, [two_class])
    p = w.session.project
    assert sorted(p.classes) == ["bottom", "top"]
    assert p.counts() == {"bottom": 12, "top": 12}
    assert w.dataset_panel.class_model.rowCount() == 3  # "All images" + 2 classes
    assert "24 images · 2 classes" in w.dataset_label.text()


def test_a_folder_of_images_becomes_a_class_named_after_it(qtbot, tmp_path: Path) -> None:
    w = make_window(qtbot)
    _pngs(tmp_path / "zebra", 2)
    assert drop_paths(w, [tmp_path / "zebra"])
    assert w.session.project.counts() == {"zebra": 2}


def test_problems_list_names_each_unusable_file_and_why(qtbot, tmp_path: Path) -> None:
    w = make_window(qtbot)
    w.session.add_class("things")
    w.dataset_panel.select_class("things")
    good = _pngs(tmp_path / "in", 2)
    broken = tmp_path / "in" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    text = tmp_path / "in" / "notes.txt"
    text.write_text("hello")
    assert drop_paths(w, [*good, broken, text])
    # the text file is refused at once; the broken PNG when its thumbnail is decoded
    qtbot.waitUntil(lambda: len(w.session.project.problems) == 2, timeout=5000)
    w.thumbs.wait_idle()
    problems = dict(w.session.project.problems)
    assert "not an image file type" in problems[str(text)]
    assert problems[str(broken)]
    assert sorted(w.problems_view.paths()) == sorted([str(text), str(broken)])
    assert "2 problems" in w.dataset_panel.problems_btn.text()


def test_class_buckets_create_rename_delete_and_remove_images(qtbot, tmp_path: Path) -> None:
    w = make_window(qtbot)
    panel = w.dataset_panel
    name = panel.add_class()
    assert name == "Class 1" and panel.selected_class == "Class 1"
    model = panel.class_model
    idx = model.index(model.row_of("Class 1"))
    assert model.setData(idx, "apples")
    assert w.session.project.classes == ["apples"]
    panel.add_class()
    errors = []
    model.renameFailed.connect(errors.append)
    assert not model.setData(model.index(model.row_of("Class 2")), "apples")  # duplicate names refused
    assert errors and "already" in errors[0]
    files = _pngs(tmp_path / "a", 5)
    w.import_paths([str(f) for f in files], "apples")
    panel.select_class("apples")
    panel.grid.selectAll()
    sel = panel.grid.selectionModel().selectedIndexes()
    panel.grid.selectionModel().clearSelection()
    for i in sel[:2]:
        panel.grid.selectionModel().select(i, panel.grid.selectionModel().SelectionFlag.Select)
    assert panel.remove_selected() == 2
    assert w.session.project.counts()["apples"] == 3
    assert all(Path(f).exists() for f in files)  # removing never deletes files
    panel.select_class("Class 2")
    panel.delete_selected_class()  # empty: no confirmation needed
    assert w.session.project.classes == ["apples"]


def test_grid_stays_virtualised_with_10000_images(qtbot, tmp_path: Path) -> None:
    ok, buf = cv2.imencode(".png", np.full((24, 24), 128, np.uint8))
    data = buf.tobytes()
    folder = tmp_path / "many" / "all"
    folder.mkdir(parents=True)
    for i in range(10_000):
        (folder / f"{i:05d}.png").write_bytes(data)
    w = make_window(qtbot)
    t0 = time.perf_counter()
    w.import_paths([str(tmp_path / "many")])
    imported = time.perf_counter() - t0
    grid = w.dataset_panel.grid
    assert w.dataset_panel.sample_model.rowCount() == 10_000
    assert grid.uniformItemSizes()
    qtbot.waitUntil(lambda: w.thumbs.requests > 0, timeout=3000)
    w.thumbs.wait_idle()
    qtbot.wait(100)
    # only what is on screen was decoded
    assert w.thumbs.requests < 600, w.thumbs.requests
    t0 = time.perf_counter()
    grid.scrollToBottom()
    grid.viewport().repaint()
    scroll = time.perf_counter() - t0
    w.thumbs.wait_idle()
    qtbot.wait(100)
    assert w.thumbs.requests < 1200
    assert scroll < 0.5, f"scrolling 10,000 thumbnails took {scroll:.2f} s"
    assert imported < 5.0, f"importing 10,000 files took {imported:.2f} s"
    last = w.dataset_panel.sample_model.index(9_999)
    assert w.thumbs.pixmap(str(folder / "09999.png")) is not None or grid.visualRect(last).isValid()


def test_welcome_opens_a_built_in_sample_in_one_click(qtbot) -> None:
    w = make_window(qtbot)
    assert w.data_stack.currentWidget() is w.welcome
    btn = w.welcome.sample_buttons["shapes"]
    qtbot.mouseClick(btn, Qt.MouseButton.LeftButton)
    p = w.session.project
    assert len(p.samples) == 1200 and sorted(p.classes) == ["circle", "square", "star", "triangle"]
    assert w.data_stack.currentWidget() is w.dataset_panel
    assert APP_TITLE in w.windowTitle() and "shapes" in w.windowTitle()
    assert w.training_problem() is None  # ready to train right away


def test_manifests_import_for_their_task(qtbot, tmp_path: Path) -> None:
    imgs = _pngs(tmp_path / "m", 4)
    labels = tmp_path / "m" / "labels.csv"
    labels.write_text("path,label\n" + "".join(f"{p.name},{'a' if i % 2 else 'b'}\n" for i, p in enumerate(imgs)))
    w = make_window(qtbot)
    assert drop_paths(w, [labels])
    assert w.session.project.task == "classify" and w.session.project.counts() == {"b": 2, "a": 2}

    captions = tmp_path / "m" / "captions.csv"
    captions.write_text(
        "path,caption\n" + "".join(f"{p.name},a picture of noise number {i}\n" for i, p in enumerate(imgs))
    )
    w2 = make_window(qtbot)
    assert drop_paths(w2, [captions])
    p = w2.session.project
    assert p.task == "caption" and len(p.samples) == 4
    combo = w2.dataset_panel.task_combo
    assert combo.currentData() == "caption"
    if "caption" not in TASKS:
        assert "not trainable yet" in combo.currentText()
    assert w2.dataset_panel.sample_model.index(0).data() == "a picture of noise number 0"  # texts under thumbnails
    assert not w2.dataset_panel.classes_pane.isVisible()  # no class buckets for captions
    if "caption" not in TASKS or not list_models("caption"):  # nothing can learn it yet: say so, do not start
        assert not w2.start_training()
        assert "caption" in w2.train_panel.error_banner.text.text()

    # mixing tasks in one project is refused with a message, nothing is lost
    assert drop_paths(w, [captions])
    assert w.session.project.task == "classify" and len(w.session.project.samples) == 4


def test_dropping_a_project_file_opens_it(qtbot, two_class: Path, tmp_path: Path) -> None:
    w = make_window(qtbot)
    w.import_paths([str(two_class)])
    path = tmp_path / "p.mexp"
    w.session.save(path)
    w2 = make_window(qtbot)
    assert drop_paths(w2, [path])
    assert w2.session.path == path and w2.session.project.counts() == {"bottom": 12, "top": 12}
