"""Measures the decoded-image cache on a generated folder (issue 12's acceptance figures).

Usage::

    python tests/bench/cache_bench.py WORK_DIR [--images 20000] [--size 64] [--budget 256] [--budget-size 96] [--contrast]

1. writes ``--images`` random-noise PNGs of ``--size`` px (10 class folders; time stamps set an
   hour back, as data that exists before a run; files written in the last 2 s are never cached);
2. ``train --epochs 1`` twice with a fresh cache folder: the first run decodes and fills the
   cache, the second maps it; prints both ``data_seconds`` from ``metrics.json`` and the ratio;
3. on a second folder of ``--budget-size`` px images, a cold and a warm run with
   ``--memory-budget`` below the decoded size (and, with
   ``--contrast``, a ``--no-cache`` run): each in a fresh process that samples its own
   ``RssAnon`` (``/proc/self/status``: the process's anonymous memory; the mapped cache file is
   file-backed, ``RssFile``, which the kernel can drop) every 5 ms, and prints the peak growth over
   the value after the imports, next to the budget.

Everything goes to WORK_DIR; the output ends with one JSON line of the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _status() -> dict[str, int]:
    out = {}
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("RssAnon", "RssFile", "VmHWM", "VmRSS"):
                out[key] = int(rest.split()[0]) * 1024
    return out


def child(argv: list[str]) -> None:
    """Runs ``model-explorer`` ``argv`` here, sampling this process's memory; prints one JSON line."""
    import torch  # noqa: F401

    import explorer.cli as cli  # everything the run needs is imported before the baseline
    import explorer.engine  # noqa: F401

    base = _status()
    peak = dict(base)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for k, v in _status().items():
                peak[k] = max(peak[k], v)
            time.sleep(0.005)

    from explorer.engine.tasks.classify import ClassifyTask

    prepare = ClassifyTask.prepare
    data_phase: dict[str, int] = {}

    def measured_prepare(self, *a, **k):  # the data phase: decode or map, split, statistics
        out = prepare(self, *a, **k)
        data_phase.update({key: max(v, _status()[key]) for key, v in peak.items()})
        return out

    ClassifyTask.prepare = measured_prepare  # type: ignore[method-assign]
    t = threading.Thread(target=sample, daemon=True)
    t.start()
    t0 = time.perf_counter()
    rc = cli.main(argv)
    done.set()
    t.join()
    print(
        json.dumps(
            {
                "rc": rc,
                "wall_s": round(time.perf_counter() - t0, 1),
                "base_anon_mib": round(base["RssAnon"] / 2**20, 1),
                "peak_anon_mib": round(peak["RssAnon"] / 2**20, 1),
                "growth_anon_mib": round((peak["RssAnon"] - base["RssAnon"]) / 2**20, 1),
                "data_phase_growth_anon_mib": round((data_phase["RssAnon"] - base["RssAnon"]) / 2**20, 1),
                "peak_file_mib": round(peak["RssFile"] / 2**20, 1),
            }
        )
    )


def generate(folder: Path, n: int, size: int) -> float:
    import cv2
    import numpy as np

    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    old = time.time() - 3600
    for c in range(10):
        (folder / f"c{c}").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        path = folder / f"c{i % 10}" / f"{i:06d}.png"
        if path.exists():
            continue
        img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        img[: size // 2] //= 1 + i % 10  # a little signal per class
        ok, buf = cv2.imencode(".png", img)
        assert ok
        path.write_bytes(buf.tobytes())
        os.utime(path, (old, old))
    return time.perf_counter() - t0


def _run(args: list[str], env: dict[str, str], measured: bool) -> dict:
    cmd = [sys.executable, __file__, "--child", *args] if measured else [sys.executable, "-m", "explorer", *args]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    out = json.loads(proc.stdout.strip().splitlines()[-1]) if measured else {}
    out["process_s"] = round(time.perf_counter() - t0, 1)
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("work", type=Path)
    p.add_argument("--images", type=int, default=20_000)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--budget", type=int, default=256, help="MiB for the memory-budget runs")
    p.add_argument("--budget-size", type=int, default=96, help="image side of the memory-budget runs' folder")
    p.add_argument("--contrast", action="store_true", help="also measure a --no-cache run")
    p.add_argument("--skip-ratio", action="store_true", help="only the memory-budget runs")
    p.add_argument("--skip-cold", action="store_true", help="no cold memory-budget run (the cache is filled)")
    p.add_argument("--tiny", type=int, default=0, help="also a run on this many images (compute-only memory)")
    a = p.parse_args()
    work: Path = a.work
    data = work / f"data-{a.images}-{a.size}"
    gen_s = generate(data, a.images, a.size)
    decoded_mib = a.images * a.size * a.size * 3 / 2**20
    print(f"{a.images} PNGs of {a.size}x{a.size} in {data} ({gen_s:.1f} s); decoded {decoded_mib:.0f} MiB", flush=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    common = ["train", str(data), "--arch", "cnn", "--set", "channels=8,16", "--epochs", "1", "--quiet", "--overwrite"]
    figures: dict = {"images": a.images, "size": a.size, "decoded_mib": round(decoded_mib, 1)}

    def metrics(run: Path) -> dict:
        return json.loads((run / "metrics.json").read_text())

    for cache in ("cache-a",) + (() if a.skip_cold else ("cache-b",)):
        for stale in (work / cache).glob("*/*"):
            stale.unlink()
    runs = []
    for i in () if a.skip_ratio else (1, 2):
        out = work / f"run{i}"
        proc = _run([*common, "--cache-dir", str(work / "cache-a"), "--out", str(out)], env, measured=False)
        runs.append(metrics(out)["data_seconds"])
        print(f"run {i}: data_seconds {runs[-1]:.2f} (process {proc['process_s']} s)", flush=True)
    if runs:
        figures.update(first_data_s=runs[0], second_data_s=runs[1], ratio=round(runs[1] / runs[0], 4))
        print(f"second / first data_seconds = {runs[1] / runs[0]:.3f}", flush=True)

    data = work / f"data-{a.images}-{a.budget_size}"
    gen_s = generate(data, a.images, a.budget_size)
    decoded_mib = a.images * a.budget_size * a.budget_size * 3 / 2**20
    print(
        f"{a.images} PNGs of {a.budget_size}x{a.budget_size} ({gen_s:.1f} s); decoded {decoded_mib:.0f} MiB", flush=True
    )
    common[1] = str(data)
    figures["budget_decoded_mib"] = round(decoded_mib, 1)
    budget = ["--memory-budget", str(a.budget)]
    if a.tiny:
        tiny = work / f"data-{a.tiny}-{a.budget_size}"
        generate(tiny, a.tiny, a.budget_size)
        m = _run(
            [
                *common[:1],
                str(tiny),
                *common[2:],
                *budget,
                "--cache-dir",
                str(work / "cache-t"),
                "--out",
                str(work / "tiny"),
            ],
            env,
            True,
        )
        figures["tiny"] = m
        print(f"tiny ({a.tiny} images, compute only): {m}", flush=True)
    for name, extra in (
        *(() if a.skip_cold else (("budget_cold", [*budget, "--cache-dir", str(work / "cache-b")]),)),
        ("budget_warm", [*budget, "--cache-dir", str(work / "cache-b")]),
        *((("no_cache", ["--no-cache"]),) if a.contrast else ()),
    ):
        out = work / name
        m = _run([*common, *extra, "--out", str(out)], env, measured=True)
        m["data_seconds"] = metrics(out)["data_seconds"]
        figures[name] = m
        print(f"{name}: {m} (budget {a.budget} MiB)", flush=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
