"""The desktop app (PySide6 + pyqtgraph). Everything Qt lives here, nothing else imports it.

Entry points: :func:`explorer.ui.app.run_app` (the window) and :func:`explorer.ui.bench.bench_ui`
(event-loop stalls while the real worker trains). Modules are small and bound to one job:

* ``project`` (Qt-free) and ``session`` hold the user's data, configs and runs;
* ``dataset_*``, ``thumbnails``, ``welcome`` the data screen; ``arch_panel`` + ``param_form`` the
  architecture screen; ``train_panel``, ``curves``, ``probe_view`` the training screen;
* ``worker`` runs the engine's :class:`~explorer.engine.Trainer` generator in a QThread.

Only plain Python and numpy cross from the worker into widgets.
"""
