"""The headless contract of DESIGN.md, end to end through ``main()``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from explorer.cli import main
from tests.datasets import write_two_class_folder


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_two_class_folder(tmp_path_factory.mktemp("cli") / "data", n=20, size=16)


@pytest.fixture(scope="module")
def run_dir(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli-run") / "run"
    rc = main(
        [
            "train",
            str(data),
            "--arch",
            "cnn",
            "--set",
            "channels=8,16",
            "--epochs",
            "8",
            "--batch-size",
            "8",
            "--lr",
            "3e-3",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert rc == 0
    return out


def test_archs_json_lists_every_family_with_its_parameters(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["archs", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    names = {f["name"] for f in doc["families"]}
    assert {"cnn", "backbone", "rnn", "crnn"} <= names
    for fam in doc["families"]:
        assert fam["params"], fam["name"]
        for p in fam["params"]:
            assert {"name", "kind", "default", "help", "min", "max", "choices"} <= p.keys()
            assert p["help"], (fam["name"], p["name"])


def test_archs_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["archs"]) == 0
    out = capsys.readouterr().out
    assert "cnn:" in out and "rnn:" in out and "cell" in out


def test_train_prints_plain_epoch_lines_when_piped(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(
        [
            "train",
            str(data),
            "--arch",
            "cnn",
            "--set",
            "channels=8",
            "--epochs",
            "2",
            "--batch-size",
            "8",
            "--out",
            str(tmp_path / "r"),
        ]
    )
    assert rc == 0
    cap = capsys.readouterr()
    assert "epoch 1/2" in cap.err and "epoch 2/2" in cap.err
    assert "\r" not in cap.err  # no progress bar when not a terminal
    assert "completed" in cap.out and "val_accuracy" in cap.out


def test_evaluate_json_is_one_document(run_dir: Path, data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["evaluate", str(run_dir), str(data), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {"accuracy", "loss", "per_class", "confusion"} <= doc.keys()
    assert set(doc["per_class"]) == {"bottom", "top"}
    assert sum(map(sum, doc["confusion"])) == 40
    assert doc["accuracy"] >= 0.9


def test_predict_json_is_one_list(run_dir: Path, data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    imgs = sorted(str(p) for p in (data / "top").glob("*.png"))[:3]
    capsys.readouterr()
    assert main(["predict", str(run_dir), *imgs, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert isinstance(doc, list) and len(doc) == 3
    for item in doc:
        assert item["label"] in ("top", "bottom")
        assert set(item["probabilities"]) == {"top", "bottom"}


def test_predict_names_an_unreadable_image_and_exits_1(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "x.png"
    bad.write_text("hello")
    assert main(["predict", str(run_dir), str(bad), "--json"]) == 1
    cap = capsys.readouterr()
    assert str(bad) in cap.err
    assert json.loads(cap.out)[0]["error"]


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--set", "channels=0"], "channels"),
        (["--set", "colour=red"], "colour"),
        (["--arch", "transformer"], "transformer"),
        (["--lr", "-1"], "train.lr"),
        (["--image-size", "big"], "--image-size"),
    ],
)
def test_bad_parameters_fail_before_training_naming_them(
    data: Path, tmp_path: Path, extra: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["train", str(data), "--epochs", "1", "--out", str(tmp_path / "r"), *extra])
    assert rc == 2
    err = capsys.readouterr().err
    assert fragment in err and "error" in err
    assert not (tmp_path / "r" / "weights.safetensors").exists()


def test_missing_data_folder_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["train", str(tmp_path / "nope"), "--out", str(tmp_path / "r")])
    assert rc == 2
    assert "nope" in capsys.readouterr().err


def test_resume_continues_an_interrupted_run(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r"
    assert (
        main(
            [
                "train",
                str(data),
                "--set",
                "channels=8",
                "--epochs",
                "1",
                "--batch-size",
                "8",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    assert main(["train", "--resume", str(out), "--epochs", "2", "--quiet"]) == 0
    hist = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in hist] == [1, 2]


def test_console_script_is_installed() -> None:
    exe = shutil.which("model-explorer") or str(Path(sys.executable).parent / "model-explorer")
    assert Path(exe).exists(), "pip install . must provide the model-explorer command"
    r = subprocess.run([exe, "archs"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "cnn" in r.stdout


TRAIN_OPTIONS = (
    "--arch --task --set --epochs --batch-size --lr --optimizer --schedule --weight-decay --grad-clip "
    "--early-stopping --val-fraction --image-size --color --augment --regress --regression-weight --device "
    "--seed --no-amp --config --out --overwrite --resume --quiet --nproc-per-node --no-cache --cache-dir --memory-budget"
).split()


def _train_options() -> set[str]:
    import argparse

    from explorer.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    train = sub.choices["train"].complete()
    return {o for a in train._actions for o in a.option_strings if o.startswith("--")} - {"--help"}


def test_train_offers_the_same_options_as_before() -> None:
    assert _train_options() == set(TRAIN_OPTIONS)


def _config_from(argv: list[str]) -> object:
    from explorer.cli import build_parser
    from explorer.cli.train import train_config

    return train_config(build_parser().parse_args(["train", *argv]))


def test_config_file_loads_and_flags_override_it(tmp_path: Path) -> None:
    from explorer.engine import RunConfig

    saved = RunConfig(arch="rnn", params={"cell": "gru"})
    saved.train.epochs, saved.train.lr, saved.data.val_fraction = 3, 5e-4, 0.3
    saved.data.augment.rotate = 10.0
    path = tmp_path / "run.json"
    path.write_text(json.dumps(saved.to_dict()))
    cfg = _config_from(["sample:shapes", "--config", str(path)])
    saved.data.source = "sample:shapes"
    assert cfg == saved
    cfg = _config_from(["sample:shapes", "--config", str(path), "--lr", "1e-2", "--augment", "hflip=yes", "--no-amp"])
    assert (cfg.train.lr, cfg.train.epochs, cfg.train.amp) == (1e-2, 3, False)
    assert cfg.data.augment.hflip is True and cfg.data.augment.rotate == 10.0


def test_setting_flags_reach_their_settings() -> None:
    cfg = _config_from(
        [
            "sample:shapes",
            "--task=classify",
            "--regress",
            "area",
            "--regress",
            "size",
            "--regression-weight",
            "0.5",
            "--early-stopping",
            "4",
            "--image-size",
            "24x32",
            "--val-fraction",
            "0.1",
            "--device",
            "cpu",
            "--seed",
            "7",
        ]
    )
    assert cfg.data.task == "classify" and cfg.data.regression_columns == ["area", "size"]
    assert (cfg.data.regression_weight, cfg.data.height, cfg.data.width, cfg.data.val_fraction) == (0.5, 24, 32, 0.1)
    assert (cfg.train.early_stopping, cfg.train.device, cfg.train.seed, cfg.train.amp) == (4, "cpu", 7, True)


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--augment", "rotate=200"], "--augment"),
        (["--augment", "hflip=maybe"], "hflip"),
        (["--image-size", "2x2"], "data.height"),
        (["--epochs", "0"], "train.epochs"),
        (["--seed=-1"], "train.seed"),
    ],
)
def test_bad_setting_flags_exit_2_naming_the_setting(
    extra: list[str], fragment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "sample:shapes", "--out", str(tmp_path / "r"), *extra]) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.startswith("model-explorer train: error:")
