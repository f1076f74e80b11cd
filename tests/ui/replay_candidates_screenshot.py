"""Screenshot of a reopened captioner run replayed at an epoch, its attention section showing
that epoch's beam candidates with the second one clicked (not a test; run by hand under X):

    xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python tests/ui/replay_candidates_screenshot.py RUN_DIR OUT.png [EPOCH]

RUN_DIR: a captioner run with probe snapshots, e.g. ``model-explorer train sample:shape-scenes
--arch captioner --epochs 3 --out RUN_DIR``. EPOCH (default: the one before the last) is replayed.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.ui.studio_screenshots import painted_view, pump, wait_for  # noqa: E402  (sets an isolated home)

# isort: split
from explorer.ui.app import ensure_app  # noqa: E402
from explorer.ui.inspector import InspectorPanel  # noqa: E402
from explorer.ui.probe.attention import AttentionSection  # noqa: E402


def main(run_dir: Path, out: Path, epoch: int | None) -> None:
    ensure_app()
    panel = InspectorPanel()
    panel.resize(1400, 900)
    panel.show()
    panel.set_run(run_dir)
    if not wait_for(lambda: painted_view(panel) is not None and panel.epochs, 120):
        raise SystemExit("nothing painted")
    epoch = epoch if epoch is not None else panel.epochs[max(len(panel.epochs) - 2, 0)]
    panel.replay_epoch(epoch)

    def attention() -> AttentionSection | None:
        v = painted_view(panel)
        if v is None or v._ctx is None or v._ctx.report.epoch != epoch:
            return None
        return next((s for s in v.sections if isinstance(s, AttentionSection) and s._candidates), None)

    if not wait_for(lambda: attention() is not None, 60):
        raise SystemExit(f"epoch {epoch}: no beam candidates shown")
    pump(800)
    sec = attention()
    sec.show_candidate(1)  # as a click on the second candidate
    sec.select(min(2, len(sec.words) - 1))
    painted_view(panel).scroll.verticalScrollBar().setValue(sec.y())
    pump(600)
    panel.grab().save(str(out))
    print(out, "epoch", epoch, "candidates:", sec.candidate_rows)
    panel.shutdown()
    panel.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else None)
