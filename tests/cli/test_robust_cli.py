"""Clumsy or hostile use of the CLI: messages, never tracebacks or hangs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from explorer.cli import main
from explorer.cli.output import dump_json, escape
from tests.datasets import write_two_class_folder

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_two_class_folder(tmp_path_factory.mktemp("robust") / "data", n=8, size=16)


@pytest.fixture(scope="module")
def run(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("robust-run") / "run"
    argv = ["train", str(data), "--set", "channels=4", "--epochs", "1", "--batch-size", "8", "--quiet"]
    assert main([*argv, "--out", str(out)]) == 0
    return out


def _cli(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "explorer.cli", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_escape_keeps_text_and_neutralises_terminal_controls() -> None:
    assert escape("café 猫\tok\n") == "café 猫\tok\n"
    assert escape("\x1b]0;pwned\x07red\x1b[31m\r\u202e") == "\\x1b]0;pwned\\x07red\\x1b[31m\\x0d\\u202e"


def test_json_is_strict_with_nan_as_null_and_a_warning(capsys) -> None:
    import io

    out, err = io.StringIO(), io.StringIO()
    dump_json({"a": float("nan"), "b": [1.0, float("inf")], "c": "x"}, out, err)
    assert json.loads(out.getvalue()) == {"a": None, "b": [1.0, None], "c": "x"}
    assert "NaN" not in out.getvalue() and "Infinity" not in out.getvalue()
    assert "2 value(s)" in err.getvalue() and "a" in err.getvalue() and "b[1]" in err.getvalue()


def test_nan_weights_give_strict_json(run: Path, data: Path, tmp_path: Path, capsys) -> None:
    from safetensors.torch import load_file, save_file

    bad = tmp_path / "run"
    shutil.copytree(run, bad)
    weights = load_file(str(bad / "weights.safetensors"))
    from safetensors import safe_open

    with safe_open(str(bad / "weights.safetensors"), framework="pt") as f:
        meta = f.metadata()
    save_file(
        {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in weights.items()},
        str(bad / "weights.safetensors"),
        metadata=meta,
    )
    image = str(next((data / "top").iterdir()))
    capsys.readouterr()
    assert main(["predict", str(bad), image, "--json"]) == 0
    cap = capsys.readouterr()
    doc = json.loads(cap.out)  # strict: json.loads accepts NaN, so check the text too
    assert "NaN" not in cap.out and doc[0]["confidence"] is None
    assert "warning" in cap.err and "null" in cap.err
    assert main(["evaluate", str(bad), str(data), "--json"]) == 0
    cap = capsys.readouterr()
    assert "NaN" not in cap.out and json.loads(cap.out)["loss"] is None


def test_labels_with_terminal_escapes_are_printed_escaped(run: Path, data: Path, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "run"
    shutil.copytree(run, bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["labels"] = ["\x1b[2J\x1b]0;owned\x07", "top"]
    (bad / "config.json").write_text(json.dumps(cfg))
    image = str(next((data / "top").iterdir()))
    capsys.readouterr()
    assert main(["predict", str(bad), image, "--top", "2"]) == 0
    assert main(["evaluate", str(bad), str(data)]) == 0
    cap = capsys.readouterr()
    assert "\x1b" not in cap.out + cap.err and "\x07" not in cap.out + cap.err
    assert "\\x1b[2J" in cap.out
    assert main(["predict", str(bad), image, "--json"]) == 0  # JSON escapes them its own way
    assert json.loads(capsys.readouterr().out)[0]["probabilities"].keys() == set(cfg["labels"])


def test_special_files_are_never_opened(data: Path, tmp_path: Path, capsys) -> None:
    fifo = tmp_path / "p.json"
    os.mkfifo(fifo)

    def hung(*_):  # noqa: ANN002
        raise AssertionError("blocked opening a FIFO")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(30)  # opening a FIFO for reading blocks until a writer comes: a hang becomes a failure
    try:
        for argv, fragment in (
            (["--config", str(fifo), str(data)], "not a regular file"),
            ([str(fifo)], "pipe, device or socket"),
            (["/dev/zero"], "pipe, device or socket"),
        ):
            assert main(["train", *argv, "--out", str(tmp_path / "r")]) == 2
            err = capsys.readouterr().err
            assert fragment in err and "Traceback" not in err
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert not (tmp_path / "r").exists()


def test_a_config_that_is_a_folder_or_missing_is_a_message(data: Path, tmp_path: Path, capsys) -> None:
    for config in (tmp_path, tmp_path / "missing.json"):
        assert main(["train", str(data), "--config", str(config), "--out", str(tmp_path / "r")]) == 2
        assert "--config" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True, reason="root reads everything")
def test_an_unreadable_data_root_is_a_message(data: Path, tmp_path: Path, capsys) -> None:
    locked = tmp_path / "locked"
    shutil.copytree(data, locked)
    locked.chmod(0)
    try:
        assert main(["train", str(locked), "--out", str(tmp_path / "r")]) == 2
        assert str(locked) in capsys.readouterr().err
    finally:
        locked.chmod(0o755)


def test_an_unreadable_data_root_read_error_is_a_message(data: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    import explorer.engine.trainer as trainer_module

    def denied(spec):  # noqa: ANN001
        raise PermissionError(13, "Permission denied", str(spec))

    monkeypatch.setattr(trainer_module, "open_source", denied)
    assert main(["train", str(data), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "Permission denied" in err and str(data) in err and "Traceback" not in err


def test_a_closed_stdout_is_quiet() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "explorer.cli", "archs", "--json"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # like `| head -0`: the reader is gone before anything is written
    err = proc.stderr.read().decode()
    proc.stderr.close()
    proc.wait(60)
    assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_an_oversized_input_is_refused_before_decoding_naming_the_estimate(tmp_path: Path, monkeypatch, capsys) -> None:
    from explorer.engine import resources

    monkeypatch.setattr(resources, "available_bytes", lambda device="cpu": 16 * 1024**3)  # a 16 GB machine
    assert main(["train", "sample:shapes", "--image-size", "4096x4096", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "4096x4096" in err and "GB" in err and "--image-size" in err
    assert not (tmp_path / "r").exists()


def test_a_huge_batch_is_refused_naming_the_estimate(data: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    from explorer.engine import resources

    monkeypatch.setattr(resources, "available_bytes", lambda device="cpu": 2 * 1024**3)
    assert (
        main(["train", str(data), "--image-size", "1024x1024", "--batch-size", "16", "--out", str(tmp_path / "r")]) == 2
    )
    err = capsys.readouterr().err
    assert "training step of 16 images at 1024x1024" in err and "GB" in err and "--batch-size" in err
    assert main(["train", str(data), "--batch-size", "100000", "--out", str(tmp_path / "r")]) == 2
    assert "batch_size" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
