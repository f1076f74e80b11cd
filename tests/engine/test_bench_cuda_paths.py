"""The CUDA speed paths (mixed precision, channels-last, pinned non-blocking copies) as far as a
CPU-only machine can run them, and ``bench train`` reporting throughput against the bare loop."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from explorer.cli import main
from explorer.engine import Finished, RunConfig, Trainer, runfolder
from explorer.engine import session as session_module
from explorer.engine import step as step_module
from explorer.engine.bench import bench_train
from explorer.engine.device import autocast_dtype, fits_on_device, memory_format, pinned, to_device
from models import build_model
from tests.datasets import write_two_class_folder

CUDA = torch.device("cuda")  # a device object can be named without a GPU
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only behaviour")


@pytest.fixture(scope="module")
def two_class(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_two_class_folder(tmp_path_factory.mktemp("bench") / "data", n=12, size=16)


def _cnn() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("cnn", in_channels=3, num_outputs=5, image_size=(32, 32), channels=[8, 16]).eval()


def test_conv_families_declare_channels_last_and_recurrent_ones_do_not() -> None:
    cnn = _cnn()
    crnn = build_model("crnn", in_channels=1, num_outputs=5, image_size=(32, 64))
    assert memory_format(cnn, CUDA) is torch.channels_last
    assert memory_format(crnn, CUDA) is torch.contiguous_format
    assert memory_format(cnn, torch.device("cpu")) is torch.contiguous_format  # only where cuDNN gains


def test_channels_last_preserves_the_outputs() -> None:
    model = _cnn()
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        ref = model(x)
        model = model.to(memory_format=torch.channels_last)
        assert model.features[0][0].weight.is_contiguous(memory_format=torch.channels_last)
        out = model(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(out, ref, atol=1e-5, rtol=1e-5)


def test_mixed_precision_only_on_cuda_and_only_when_asked() -> None:
    assert autocast_dtype(torch.device("cpu"), True) is None
    assert autocast_dtype(CUDA, False) is None


@no_cuda
def test_pinned_copies_fall_back_cleanly_without_cuda() -> None:
    t = torch.arange(6)
    assert pinned(t) is t  # nothing to pin into: the tensor itself, no error
    batch = (torch.zeros(2, 3), {"labels": torch.ones(2), "widths": [torch.tensor(1)]}, "name")
    same = to_device(batch, torch.device("cpu"))
    assert same[0] is batch[0] and same[1]["labels"] is batch[1]["labels"] and same[2] == "name"
    moved = to_device(batch, torch.device("meta"))  # another device: every tensor moves, structure kept
    assert moved[0].device.type == "meta" and moved[1]["widths"][0].device.type == "meta"
    assert isinstance(moved, tuple) and moved[2] == "name"
    assert fits_on_device(10**15, torch.device("cpu"))


def test_a_channels_last_session_trains_and_saves_plain_weights(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """The CUDA layout, forced on the CPU: batches follow the weights' layout, training runs,
    and the saved weights load into a plain model with the same outputs."""
    monkeypatch.setattr(session_module, "memory_format", lambda model, device: torch.channels_last)
    layouts = []
    real = step_module.batch_inputs

    def spy(s, idx):  # noqa: ANN001, ANN202
        xb, yb = real(s, idx)
        conv = s.model.features[0][0].weight
        layouts.append(
            xb.is_contiguous(memory_format=torch.channels_last)
            and conv.is_contiguous(memory_format=torch.channels_last)
        )
        return xb, yb

    monkeypatch.setattr(step_module, "batch_inputs", spy)
    data = write_two_class_folder(tmp_path / "rgb", n=12, size=16, rgb=True)  # 3 channels: layouts differ
    cfg = RunConfig(arch="cnn", params={"channels": [8, 16]})
    cfg.data.source = str(data)
    cfg.data.augment.brightness = 0.1  # augmented batches come out in the default layout
    cfg.train.epochs = 1
    cfg.train.batch_size = 8
    cfg.train.device = "cpu"
    trainer = Trainer(cfg, tmp_path / "run")
    fin = [ev for ev in trainer.run() if isinstance(ev, Finished)][-1]
    assert fin.status == "completed", fin.message
    assert layouts and all(layouts)
    assert runfolder.weights_file(tmp_path / "run") is not None


@no_cuda
def test_bench_train_on_cuda_says_plainly_that_there_is_none(capsys) -> None:  # noqa: ANN001
    rc = main(["bench", "train", "--device", "cuda", "--epochs", "1", "--repeats", "1"])
    captured = capsys.readouterr()
    assert rc == 2
    assert "no CUDA GPU is available" in captured.err and "train.device" in captured.err


def test_bench_train_reports_throughput_of_both_loops(two_class: Path) -> None:
    r = bench_train(str(two_class), params={"channels": [8]}, epochs=1, batch_size=8, repeats=1, device="cpu")
    assert r["bare_samples_per_second"] > 0 and r["engine_samples_per_second"] > 0
    assert r["ratio"] > 0 and r["amp"] == "off"
    assert r["engine_samples_per_second"] == pytest.approx(r["train_samples"] / r["engine_seconds"], rel=0.01)
