"""Family ``backbone``: torchvision classifiers, from scratch or from a local weights file.

The torchvision model is built with ``weights=None`` (nothing is ever downloaded) and
its top-level children become this model's children, so module names and state-dict
keys are torchvision's own (``layer1``, ``features.3``, ``fc``, ``classifier.3``): a
torchvision state dict loads as is, and intermediates are named like the stages.

Adaptations:

* the first conv takes ``in_channels`` (1 or 3); gray models loading 3-channel
  weights get the first conv's kernels summed over the input channels;
* ``stem="small"`` makes the first conv 3x3 stride 1 and drops ResNet's max-pool so a
  32x32 input is not shrunk to 8x8 before the first stage (``auto`` picks it below
  64 px: from 64 px on, the ImageNet stem keeps CPU training affordable);
* the classifier's last layer has ``num_outputs`` units;
* ``freeze`` trains only the head (``fc`` / ``classifier``) and keeps the frozen
  body's batch-norm statistics fixed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torchvision import models as tvm

from ._base import ExplorerModel, init_param, init_weights
from ._intermediates import Intermediate
from ._registry import register_model
from ._spec import ParamError, Params, param

__all__ = ["ARCHS", "Backbone", "BackboneParams", "check_weights_file", "load_state_dict_file"]

# arch -> (constructor, kind): "resnet" models have conv1/bn1/relu/maxpool/layer1..4/avgpool/fc,
# "features" models have features/avgpool/classifier.
_ARCHS: dict[str, tuple[Callable[..., nn.Module], str]] = {
    "resnet18": (tvm.resnet18, "resnet"),
    "resnet34": (tvm.resnet34, "resnet"),
    "mobilenet_v3_small": (tvm.mobilenet_v3_small, "features"),
    "efficientnet_b0": (tvm.efficientnet_b0, "features"),
}
ARCHS = tuple(_ARCHS)
WEIGHT_SUFFIXES = (".pth", ".pt", ".safetensors")
_SMALL_STEM_BELOW = 64  # px: stem="auto" uses the small stem when min(H, W) is below this


@dataclass
class BackboneParams(Params):
    arch: str = param(
        "resnet18",
        help="torchvision architecture: resnet18/resnet34 (residual nets), mobilenet_v3_small (fast, small), "
        "efficientnet_b0 (accurate, slower).",
        choices=ARCHS,
    )
    stem: str = param(
        "auto",
        help="First layers: 'imagenet' = the original strided stem (shrinks the image 4x, or 2x); 'small' = "
        "stride-1 3x3 conv and no max-pool, for small images like 32x32 (up to 16x the compute); 'auto' = small "
        "when the image's shorter side is below 64 px.",
        choices=("auto", "imagenet", "small"),
    )
    weights: str = param(
        "",
        help="Local .pth/.pt/.safetensors state dict of the torchvision model to start from (empty = random "
        "init). Tensors that do not fit (classifier, adapted first conv) are skipped.",
    )
    freeze: bool = param(False, help="Train only the classifier head; the pretrained body stays fixed.")
    init: str = init_param(
        help="Weight initialisation before any weights file is loaded: 'default' = torchvision's, "
        "'xavier' = Glorot uniform, 'he' = Kaiming normal.",
    )

    def check(self, *, in_channels: int, image_size: tuple[int, int | None]) -> None:
        if self.weights:
            check_weights_file(self.weights)
        elif self.freeze:
            raise ParamError("freeze", "freezing a randomly initialised body trains nothing useful; give weights")

    def small_stem(self, image_size: tuple[int, int | None]) -> bool:
        if self.stem != "auto":
            return self.stem == "small"
        h, w = image_size
        return min(h, w if w is not None else h) < _SMALL_STEM_BELOW


# -- weights files ------------------------------------------------------------------------------


def check_weights_file(path: str) -> None:
    """Refuse (ParamError on ``weights``) a path that is not an existing weights file."""
    if not path.lower().endswith(WEIGHT_SUFFIXES):
        raise ParamError("weights", f"'{path}' is not a {', '.join(WEIGHT_SUFFIXES)} file")
    if not os.path.isfile(path):
        raise ParamError("weights", f"no such file: '{path}'")


def load_state_dict_file(path: str) -> dict[str, Tensor]:
    """Read a state dict from ``.safetensors`` or ``.pth``/``.pt`` (never unpickling code).

    A checkpoint that wraps the state dict under ``"state_dict"`` or ``"model"`` is
    unwrapped, and a ``"module."`` prefix (DataParallel) is stripped.

    Raises:
        ParamError: the file cannot be read or holds no tensors.
    """
    try:
        if path.lower().endswith(".safetensors"):
            from safetensors.torch import load_file

            obj: Any = load_file(path, device="cpu")
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure to read is the user's file, reported as such
        raise ParamError("weights", f"cannot read '{path}': {e}") from None
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not any(isinstance(v, Tensor) for v in obj.values()):
        raise ParamError("weights", f"'{path}' holds no state dict of tensors")
    return {k.removeprefix("module."): v for k, v in obj.items() if isinstance(v, Tensor)}


def _fit_state_dict(model: nn.Module, state: dict[str, Tensor], first_conv: str) -> tuple[dict[str, Tensor], list[str]]:
    """Keep the tensors whose key and shape fit ``model``; sum RGB first-conv kernels for gray."""
    own = model.state_dict()
    fitted: dict[str, Tensor] = {}
    skipped: list[str] = []
    for k, v in state.items():
        target = own.get(k)
        if target is None:
            skipped.append(k)
            continue
        if k == first_conv and v.ndim == 4 and v.shape[1] == 3 and target.shape[1] == 1:
            v = v.sum(dim=1, keepdim=True)  # gray input = R = G = B: summing keeps the response
        if v.shape != target.shape:
            skipped.append(k)
            continue
        fitted[k] = v
    return fitted, skipped


# -- the model ----------------------------------------------------------------------------------


class Backbone(ExplorerModel):
    """A torchvision classifier whose children are this module's children.

    Intermediates: ResNets give ``relu`` (the stem) and ``layer1`` ... ``layer4``;
    MobileNet/EfficientNet give every ``features.N`` block. All are (B, C, H, W).
    """

    channels_last = True

    def __init__(self, p: BackboneParams, *, in_channels: int, num_outputs: int, image_size: tuple[int, int | None]):
        super().__init__()
        self.params = p
        ctor, kind = _ARCHS[p.arch]
        net = ctor(weights=None, num_classes=num_outputs)
        self.kind = kind
        small = p.small_stem(image_size)
        if kind == "resnet":
            net.conv1 = _new_first_conv(net.conv1, in_channels, kernel=3 if small else 7, stride=1 if small else 2)
            if small:
                net.maxpool = nn.Identity()
            self.first_conv, self.head_name = "conv1.weight", "fc"
        else:
            stem = net.features[0]  # Conv2dNormActivation: conv, BN, activation
            stem[0] = _new_first_conv(stem[0], in_channels, kernel=3, stride=1 if small else 2)
            self.first_conv, self.head_name = "features.0.0.weight", "classifier"
        for name, child in net.named_children():
            self.add_module(name, child)
        init_weights(self, p.init)

        # What a weights file contributed, for the engine to report.
        self.weights_report: dict[str, Any] = {"loaded": 0, "skipped": [], "missing": []}
        if p.weights:
            self._load(p.weights)
        if p.freeze:
            for name, prm in self.named_parameters():
                prm.requires_grad = name.startswith(self.head_name + ".")

    def _load(self, path: str) -> None:
        state = load_state_dict_file(path)
        fitted, skipped = _fit_state_dict(self, state, self.first_conv)
        if not any(not k.endswith("num_batches_tracked") for k in fitted):
            raise ParamError(
                "weights", f"none of the {len(state)} tensors in '{path}' fit {self.params.arch}; is it that model's?"
            )
        missing = [k for k in self.state_dict() if k not in fitted]
        self.load_state_dict(fitted, strict=False)
        self.weights_report = {"loaded": len(fitted), "skipped": skipped, "missing": missing}

    def train(self, mode: bool = True) -> Backbone:
        super().train(mode)
        if self.params.freeze:
            # A frozen body must not drift or drop either: batch-norm statistics stay fixed and
            # stochastic depth stays off, so only the head trains.
            for name, child in self.named_children():
                if name != self.head_name:
                    child.eval()
        return self

    def _head(self, x: Tensor) -> Tensor:
        x = self.avgpool(x)  # (B, C, 1, 1)
        x = torch.flatten(x, 1)  # (B, C)
        return getattr(self, self.head_name)(x)  # (B, num_outputs)

    def forward(self, x: Tensor) -> Tensor:
        if self.kind == "resnet":
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, 64, H/s, W/s)
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (B, 512, H', W')
        else:
            x = self.features(x)  # (B, C, H', W')
        return self._head(x)

    def forward_intermediates(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        feats: dict[str, Tensor] = {}
        if self.kind == "resnet":
            x = self.relu(self.bn1(self.conv1(x)))  # (B, 64, H/s, W/s)
            feats["relu"] = x
            x = self.maxpool(x)
            for name in ("layer1", "layer2", "layer3", "layer4"):
                x = getattr(self, name)(x)  # (B, C, H, W)
                feats[name] = x
        else:
            for i, block in enumerate(self.features):
                x = block(x)  # (B, C, H, W)
                feats[f"features.{i}"] = x
        return self._head(x), feats

    def intermediate_info(self, image_size: tuple[int, int]) -> dict[str, Intermediate]:
        if self.kind == "resnet":
            names = {"relu": "stem (conv1, bn1, relu)"} | {f"layer{i}": f"residual stage {i}" for i in range(1, 5)}
        else:
            names = {f"features.{i}": f"features block {i}" for i in range(len(self.features))}
        return {k: Intermediate("feature_map", k, t) for k, t in names.items()}

    def output_info(self, image_size: tuple[int, int]) -> Intermediate:
        return Intermediate("logits", self.head_name, "class scores")


def _new_first_conv(old: nn.Conv2d, in_channels: int, *, kernel: int, stride: int) -> nn.Conv2d:
    new = nn.Conv2d(in_channels, old.out_channels, kernel, stride=stride, padding=kernel // 2, bias=False)
    nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")  # as torchvision inits its convs
    return new


@register_model(
    "backbone",
    params=BackboneParams,
    description="torchvision classifiers (resnet18/34, mobilenet_v3_small, efficientnet_b0), trained from "
    "scratch or from a local weights file.",
    tasks=("classify",),
)
def _build_backbone(
    p: BackboneParams, *, in_channels: int, num_outputs: int, image_size: tuple[int, int | None]
) -> Backbone:
    return Backbone(p, in_channels=in_channels, num_outputs=num_outputs, image_size=image_size)
