"""A followed run of another process shows its OWN settings (its config.json), read-only, not the
project's; when it ends, the settings of the next Train (the project's) are back and editable."""

from __future__ import annotations

from pathlib import Path

from explorer.engine import RunConfig, Trainer
from tests.ui.helpers import make_window


def test_a_followed_run_shows_its_own_settings_then_the_projects_again(qtbot, two_class: Path, tmp_path: Path) -> None:
    cfg = RunConfig(arch="cnn", params={"channels": "4"})
    cfg.data.source = str(two_class)
    cfg.train.epochs, cfg.train.batch_size, cfg.train.seed, cfg.train.device = 2, 8, 7, "cpu"
    run = tmp_path / "run"
    list(Trainer(cfg, run).run())  # a finished run: its log holds every event, its folder config.json

    w = make_window(qtbot)
    project = w.session.project.config.train
    assert (project.epochs, project.seed) != (2, 7)
    settings = w.train_panel.settings
    seen: list[RunConfig] = []
    w.follower.configRead.connect(seen.append)
    w.follower.idle.disconnect(settings.load_from_session)  # look at the settings while the run is on screen
    with qtbot.waitSignal(w.follower.finished, timeout=10000):
        assert w.follow_run(run)
    assert len(seen) == 1 and seen[0].train.epochs == 2 and seen[0].train.seed == 7
    assert settings.epochs.value() == 2 and settings.seed.value() == 7 and settings.batch_size.value() == 8
    assert not settings.isEnabled()  # the run's settings cannot be edited here
    assert (project.epochs, project.seed) != (2, 7)  # and the project's were not overwritten

    settings.load_from_session()  # what the follower's idle does
    assert settings.isEnabled() and settings.epochs.value() == project.epochs and settings.seed.value() == project.seed
    w.follower.unfollow()
