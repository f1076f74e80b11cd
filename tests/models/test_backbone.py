"""Family ``backbone``: torchvision classifiers, local weights only."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file
from torchvision import models as tvm

from models import ParamError, build_model
from models.backbone import ARCHS

STAGES = {
    "resnet18": ["relu", "layer1", "layer2", "layer3", "layer4"],
    "resnet34": ["relu", "layer1", "layer2", "layer3", "layer4"],
    "mobilenet_v3_small": [f"features.{i}" for i in range(13)],
    "efficientnet_b0": [f"features.{i}" for i in range(9)],
}


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize(("channels", "size"), [(1, 32), (3, 32), (1, 64), (3, 64)])
def test_builds_and_runs(arch, channels, size, check_intermediates) -> None:
    net = build_model("backbone", in_channels=channels, num_outputs=4, image_size=(size, size), arch=arch)
    x = torch.randn(2, channels, size, size)
    feats = check_intermediates(net, x, atol=1e-4)
    assert net(x).shape == (2, 4)
    assert list(feats) == STAGES[arch]
    assert all(t.ndim == 4 for t in feats.values())
    first = feats[STAGES[arch][0]]
    # auto stem: small (stride 1) below 64 px, the ImageNet stem (stride 2) from 64 px
    assert first.shape[-1] == (size if size < 64 else size // 2)


@pytest.mark.parametrize(
    ("size", "small"), [((32, 32), True), ((63, 200), True), ((64, 64), False), ((64, None), False), ((96, 80), False)]
)
def test_auto_stem_is_small_below_64_px(size, small) -> None:
    net = build_model("backbone", in_channels=1, num_outputs=2, image_size=size)
    assert net.conv1.stride == ((1, 1) if small else (2, 2))
    assert isinstance(net.maxpool, torch.nn.Identity) is small


def test_stem_choice() -> None:
    x = torch.randn(1, 3, 64, 64)
    small = build_model("backbone", in_channels=3, num_outputs=2, image_size=(64, 64), stem="small").eval()
    big = build_model("backbone", in_channels=3, num_outputs=2, image_size=(64, 64)).eval()
    assert small.conv1.kernel_size == (3, 3) and small.conv1.stride == (1, 1)
    assert big.conv1.kernel_size == (7, 7) and big.conv1.stride == (2, 2)
    assert small.forward_intermediates(x)[1]["layer1"].shape[-1] == 64
    assert big.forward_intermediates(x)[1]["layer1"].shape[-1] == 16
    forced = build_model("backbone", in_channels=3, num_outputs=2, image_size=(128, 128), stem="small")
    assert forced.conv1.stride == (1, 1)


def test_variable_width_is_accepted() -> None:
    net = build_model("backbone", in_channels=1, num_outputs=2, image_size=(32, None), arch="mobilenet_v3_small")
    assert net.eval()(torch.randn(1, 1, 32, 50)).shape == (1, 2)


def test_state_dict_keys_are_torchvision_keys() -> None:
    net = build_model("backbone", in_channels=3, num_outputs=1000, image_size=(224, 224))
    assert net.state_dict().keys() == tvm.resnet18(weights=None).state_dict().keys()


def test_weights_from_pth_file(tmp_path) -> None:
    src = tvm.resnet18(weights=None)  # stands in for an ImageNet checkpoint: 3 channels, 1000 classes
    path = tmp_path / "resnet18.pth"
    torch.save(src.state_dict(), path)
    net = build_model("backbone", in_channels=3, num_outputs=5, image_size=(128, 128), weights=str(path))
    sd = net.state_dict()
    assert torch.equal(sd["conv1.weight"], src.conv1.weight)
    assert torch.equal(sd["layer3.1.bn2.running_var"], src.layer3[1].bn2.running_var)
    assert set(net.weights_report["skipped"]) == {"fc.weight", "fc.bias"}
    assert net.fc.out_features == 5


def test_gray_model_sums_rgb_kernels(tmp_path) -> None:
    src = tvm.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save({"state_dict": src.state_dict()}, path)  # a wrapped checkpoint is unwrapped
    net = build_model("backbone", in_channels=1, num_outputs=2, image_size=(128, 128), weights=str(path))
    assert net.conv1.weight.shape == (64, 1, 7, 7)
    assert torch.allclose(net.conv1.weight, src.conv1.weight.sum(dim=1, keepdim=True))
    # a gray image gives the response the RGB model gives to the same image in R = G = B
    net.eval()
    src.eval()
    g = torch.randn(1, 1, 128, 128)
    ours = net.forward_intermediates(g)[1]["layer4"]
    body = torch.nn.Sequential(*list(src.children())[:-2])  # conv1 ... layer4
    assert torch.allclose(ours, body(g.expand(1, 3, 128, 128)), atol=1e-4)


def test_small_stem_skips_the_imagenet_first_conv(tmp_path) -> None:
    src = tvm.resnet18(weights=None)
    path = tmp_path / "resnet18.pt"
    torch.save(src.state_dict(), path)
    net = build_model("backbone", in_channels=1, num_outputs=2, image_size=(32, 32), weights=str(path))
    assert "conv1.weight" in net.weights_report["skipped"]
    assert torch.equal(net.layer1[0].conv1.weight, src.layer1[0].conv1.weight)


def test_weights_from_safetensors_gray_mobilenet(tmp_path) -> None:
    src = tvm.mobilenet_v3_small(weights=None)
    path = tmp_path / "mnv3.safetensors"
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(path))
    net = build_model(
        "backbone", in_channels=1, num_outputs=3, image_size=(224, 224), arch="mobilenet_v3_small", weights=str(path)
    )
    assert torch.allclose(net.features[0][0].weight, src.features[0][0].weight.sum(1, keepdim=True))
    assert torch.equal(net.classifier[0].weight, src.classifier[0].weight)  # hidden head layer fits
    assert set(net.weights_report["skipped"]) == {"classifier.3.weight", "classifier.3.bias"}


def test_weights_errors_name_weights(tmp_path) -> None:
    for bad in (str(tmp_path / "missing.pth"), str(tmp_path / "notes.txt")):
        with pytest.raises(ParamError) as e:
            build_model("backbone", in_channels=3, num_outputs=2, image_size=(32, 32), weights=bad)
        assert e.value.param == "weights"
    other = tmp_path / "mnv3.pth"
    torch.save(tvm.mobilenet_v3_small(weights=None).state_dict(), other)
    with pytest.raises(ParamError, match="fit resnet18") as e:
        build_model("backbone", in_channels=3, num_outputs=2, image_size=(32, 32), weights=str(other))
    assert e.value.param == "weights"
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ParamError, match="cannot read") as e:
        build_model("backbone", in_channels=3, num_outputs=2, image_size=(32, 32), weights=str(garbage))


def test_freeze_trains_only_the_head(tmp_path) -> None:
    path = tmp_path / "r18.pth"
    torch.save(tvm.resnet18(weights=None).state_dict(), path)
    net = build_model("backbone", in_channels=3, num_outputs=2, image_size=(32, 32), weights=str(path), freeze=True)
    trainable = {n for n, p in net.named_parameters() if p.requires_grad}
    assert trainable == {"fc.weight", "fc.bias"}
    before = {k: v.clone() for k, v in net.state_dict().items()}
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    net.train()
    loss = torch.nn.functional.cross_entropy(net(torch.randn(4, 3, 32, 32)), torch.tensor([0, 1, 0, 1]))
    loss.backward()
    opt.step()
    after = net.state_dict()
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert changed == {"fc.weight", "fc.bias"}  # BN running statistics of the frozen body included


def test_freeze_needs_weights() -> None:
    with pytest.raises(ParamError) as e:
        build_model("backbone", in_channels=3, num_outputs=2, image_size=(32, 32), freeze=True)
    assert e.value.param == "freeze"


def test_it_learns(two_class_images, train_losses) -> None:
    x, y = two_class_images(channels=1, size=16)  # small and ImageNet stem: 30 resnet18 steps in seconds
    net = build_model("backbone", in_channels=1, num_outputs=2, image_size=(16, 16), stem="imagenet")
    losses = train_losses(net, x, y)
    assert losses[-1] < losses[0] / 2, losses
