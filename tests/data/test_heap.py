"""The C heap during training: freed step memory is kept for the next step (glibc)."""

from __future__ import annotations

import ctypes
import json
import subprocess
import sys
from pathlib import Path

import pytest

from explorer.data import memory
from tests.datasets import write_two_class_folder

_MALLOPT = memory._glibc("mallopt", ctypes.c_int, ctypes.c_int)  # noqa: SLF001 - what reuse_freed_heap calls
pytestmark = pytest.mark.skipif(_MALLOPT is None, reason="needs glibc's mallopt")

# A training step in miniature: one large block freed (glibc raises its thresholds to its size),
# then each "step" allocates four blocks a little smaller, writes them and frees them all. With
# glibc's defaults the freed top of the heap exceeds the raised trim threshold and is handed back,
# so every step faults its pages in again.
_STEPS = """
import ctypes, json, resource, sys
from explorer.data.memory import reuse_freed_heap
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
if sys.argv[1] == "reuse":
    reuse_freed_heap()
libc.free(libc.malloc(4 << 20))
faults = []
for step in range(12):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    blocks = [libc.malloc(3 << 20) for _ in range(4)]
    for b in blocks:
        ctypes.memset(b, 1, 3 << 20)
    for b in blocks:
        libc.free(b)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps(faults))
"""


def _step_faults(mode: str) -> list[int]:
    out = subprocess.run([sys.executable, "-c", _STEPS, mode], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_a_steps_freed_memory_is_reused_not_faulted_in_again() -> None:
    default, reuse = _step_faults("default"), _step_faults("reuse")
    pages = (4 * (3 << 20)) // 4096
    # the first step faults its pages in either way; glibc's defaults do it again at every step
    assert min(default[1:]) > pages // 2, default
    assert max(reuse[1:]) < pages // 20, reuse


def test_the_trainer_keeps_step_memory_and_gives_it_back_at_the_end(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from explorer.engine import Finished, RunConfig, Trainer, trainer

    calls: list[str] = []
    monkeypatch.setattr(trainer, "reuse_freed_heap", lambda: calls.append("reuse"))
    monkeypatch.setattr(trainer, "release_free_heap", lambda: calls.append("release"))
    cfg = RunConfig(arch="cnn", params={"channels": "8,16"})
    cfg.data.source = str(write_two_class_folder(tmp_path / "data", n=8))
    cfg.train.epochs, cfg.train.batch_size, cfg.train.device = 1, 8, "cpu"
    events = list(Trainer(cfg, tmp_path / "run").run())
    assert isinstance(events[-1], Finished) and events[-1].status == "completed", events[-1]
    # decoding's garbage handed back, the steps' memory kept, and all of it given back at the end
    assert calls == ["release", "reuse", "release"]
