"""Batch augmentation (explorer.data.augment)."""

from __future__ import annotations

import pytest
import torch

from explorer.data import AugmentConfig, augment_batch

torch.set_num_threads(1)

ALL_ON = AugmentConfig(hflip=True, vflip=True, rotate=30, shift=0.1, crop=0.3, noise=0.05, brightness=0.2, contrast=0.3)


def _batch(b: int = 6, c: int = 3, h: int = 12, w: int = 20, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, c, h, w, generator=torch.Generator().manual_seed(seed))


def test_off_by_default_and_identity() -> None:
    cfg = AugmentConfig()
    assert not cfg.enabled
    x = _batch()
    assert augment_batch(x, cfg) is x
    assert AugmentConfig(hflip=True).enabled and AugmentConfig(noise=0.1).enabled


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_shape_range_dtype_preserved(dtype: torch.dtype) -> None:
    x = _batch().to(dtype)
    y = augment_batch(x, ALL_ON, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.dtype == dtype and y.device == x.device
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    assert not torch.equal(y, x)


def test_deterministic_with_seeded_generator() -> None:
    x = _batch()
    a = augment_batch(x, ALL_ON, torch.Generator().manual_seed(42))
    b = augment_batch(x, ALL_ON, torch.Generator().manual_seed(42))
    c = augment_batch(x, ALL_ON, torch.Generator().manual_seed(43))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_flips_actually_flip_per_sample() -> None:
    x = _batch(b=32)
    y = augment_batch(x, AugmentConfig(hflip=True), torch.Generator().manual_seed(0))
    flipped = [torch.equal(y[i], x[i].flip(-1)) for i in range(32)]
    kept = [torch.equal(y[i], x[i]) for i in range(32)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 4 <= sum(flipped) <= 28  # each sample decides on its own
    y = augment_batch(x, AugmentConfig(vflip=True), torch.Generator().manual_seed(0))
    assert any(torch.equal(y[i], x[i].flip(-2)) for i in range(32))


def test_geometry_moves_content_but_keeps_constant_images() -> None:
    flat = torch.full((4, 1, 10, 16), 0.25)
    cfg = AugmentConfig(rotate=45, shift=0.2, crop=0.5)
    y = augment_batch(flat, cfg, torch.Generator().manual_seed(0))
    assert torch.allclose(y, flat, atol=1e-6)  # border padding adds no black corners
    x = _batch()
    assert not torch.allclose(augment_batch(x, cfg, torch.Generator().manual_seed(0)), x)


def test_photometric_ranges() -> None:
    x = torch.full((64, 1, 4, 4), 0.5)
    y = augment_batch(x, AugmentConfig(brightness=0.1), torch.Generator().manual_seed(0))
    shift = (y - x)[:, 0, 0, 0]
    assert shift.abs().max() <= 0.1 + 1e-6 and shift.std() > 0.02
    assert torch.allclose(y, y[:, :, :1, :1].expand_as(y))  # one value per sample
    y = augment_batch(x, AugmentConfig(contrast=0.5), torch.Generator().manual_seed(0))
    assert torch.allclose(y, x)  # a flat image has no contrast to change
    y = augment_batch(x, AugmentConfig(noise=0.05), torch.Generator().manual_seed(0))
    assert 0.03 < float((y - x).std()) < 0.07


def test_without_generator_still_works() -> None:
    y = augment_batch(_batch(), ALL_ON)
    assert y.shape == (6, 3, 12, 20)


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="float"):
        augment_batch(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), ALL_ON)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        augment_batch(torch.zeros(3, 4, 4), ALL_ON)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_batch_with_cpu_generator_matches_cpu() -> None:
    x = _batch()
    cpu = augment_batch(x, ALL_ON, torch.Generator().manual_seed(5))
    gpu = augment_batch(x.cuda(), ALL_ON, torch.Generator().manual_seed(5))
    assert gpu.device.type == "cuda"
    assert torch.allclose(gpu.cpu(), cpu, atol=1e-4)


def test_config_dict_round_trip_and_validation() -> None:
    cfg = AugmentConfig(hflip=True, rotate=10.0, noise=0.02)
    assert AugmentConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.to_dict()["rotate"] == 10.0 and cfg.to_dict()["vflip"] is False
    parsed = AugmentConfig.from_dict({"hflip": True, "rotate": "15", "shift": 0, "vflip": True})
    assert parsed == AugmentConfig(hflip=True, vflip=True, rotate=15.0)
    assert isinstance(parsed.shift, float)
    with pytest.raises(ValueError, match="'rotation'"):
        AugmentConfig.from_dict({"rotation": 5})
    with pytest.raises(ValueError, match=r"augment\.rotate must be in \[0.0, 180.0\]"):
        AugmentConfig.from_dict({"rotate": 200})
    with pytest.raises(ValueError, match=r"augment\.crop"):
        AugmentConfig(crop=1.0).validate()
    with pytest.raises(ValueError, match=r"augment\.noise must be a number"):
        AugmentConfig.from_dict({"noise": "lots"})
    with pytest.raises(ValueError, match=r"augment\.hflip must be true or false"):
        AugmentConfig.from_dict({"hflip": "yes"})  # words are read by the engine's settings
    with pytest.raises(ValueError, match=r"augment\.shift"):
        AugmentConfig(shift=float("nan")).validate()
    assert AugmentConfig().validate() == AugmentConfig()
