"""Shared helpers of the UI tests."""

from __future__ import annotations

from pathlib import Path

from explorer.ui.main_window import MainWindow


def make_window(qtbot, data: Path | None = None, *, epochs: int = 2, probe: float = 0.0, **params) -> MainWindow:  # noqa: ANN001
    """A shown main window; with ``data`` imported and a tiny CNN configured."""
    w = MainWindow(report_interval=0.0)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    if data is not None:
        w.import_paths([str(data)])
        configure_tiny(w, epochs=epochs, probe=probe, **params)
    return w


def configure_tiny(w: MainWindow, *, epochs: int = 2, probe: float = 0.0, batch_size: int = 8, **params) -> None:
    s = w.session
    cfg = s.project.config
    cfg.arch = "cnn"
    s.set_params("cnn", {"channels": [8], **params})
    cfg.train.epochs = epochs
    cfg.train.batch_size = batch_size
    cfg.train.probe_interval = probe
    cfg.train.lr = 3e-3
    cfg.train.device = "cpu"
    w.arch_panel.load_from_session()
    w.train_panel.settings.load_from_session()


def wait_idle(qtbot, w: MainWindow, timeout: int = 60000) -> None:  # noqa: ANN001
    qtbot.waitUntil(lambda: not w.controller.is_running(), timeout=timeout)


def shown(qtbot, widget, size: tuple[int, int], labels: list[str]):  # noqa: ANN001, ANN201
    """``widget`` (an inspector panel or a probe view) kept by ``qtbot``, resized, shown, with the
    run's ``labels`` set: the set-up of the probe-view tests."""
    qtbot.addWidget(widget)
    widget.resize(*size)
    widget.show()
    widget.set_labels(labels)
    return widget
