"""The captioner's parameters: encoder choice and pooling, positions, decoder sizes.

:class:`CaptionerParams` is what ``archs`` lists for the ``captioner`` family (see
:mod:`models.captioner`); :meth:`CaptionerParams.pools` resolves the automatic pooling of
the own conv encoder for an input size (text lines keep many columns to attend to).
"""

from __future__ import annotations

from dataclasses import dataclass

from ._base import init_param
from ._spec import ParamError, Params, param
from .backbone import ARCHS, check_weights_file

__all__ = ["ENCODERS", "POSITIONS", "CaptionerParams", "NOMINAL_LINE_ASPECT"]

ENCODERS = ("cnn", *ARCHS)
POSITIONS = ("sinusoidal", "learned", "none")
_LINE_ASPECT = 2  # images at least this many times as wide as high (or of variable width) are read as lines
NOMINAL_LINE_ASPECT = 4  # learned positions of a variable-width model are laid out for width = 4 x height


@dataclass
class CaptionerParams(Params):
    encoder: str = param(
        "cnn",
        help="Image encoder: 'cnn' = the conv stack below (channels, height_pools, width_pools), trained from "
        "scratch; or a torchvision backbone (resnet18, mobilenet_v3_small, ...) without its classifier, optionally "
        "from a local weights file.",
        choices=ENCODERS,
    )
    channels: tuple[int, ...] = param(
        (32, 64, 128, 256),
        help="encoder=cnn: output channels of each conv stage (3x3 conv, batch norm, ReLU, then max pooling as "
        "height_pools/width_pools say); one stage per value.",
        min=1,
        max=1024,
    )
    height_pools: int = param(
        -1,
        help="encoder=cnn: how many of the first stages halve the height. -1 = auto: every stage for text-like "
        "lines (variable width, or at least twice as wide as high), else 3 (a grid of 1/8 the image size).",
        min=-1,
        max=8,
    )
    width_pools: int = param(
        -1,
        help="encoder=cnn: how many of the first stages halve the width; the later ones keep it, so a text line "
        "keeps many columns to attend to. -1 = auto: 2 for text-like lines (a 32x140 line gives a 2 x 35 grid "
        "with 4 stages), else 3 (64x64 gives 8 x 8).",
        min=-1,
        max=8,
    )
    weights: str = param(
        "",
        help="Torchvision encoders: local .pth/.pt/.safetensors state dict of the whole torchvision model to "
        "start from (empty = random init). Tensors that do not fit are skipped.",
    )
    freeze_encoder: bool = param(
        False, help="Keep the (pretrained) encoder fixed, batch-norm statistics included; only the decoder trains."
    )
    encoder_lr_scale: float = param(
        1.0,
        help="The encoder's learning rate relative to the decoder's (e.g. 0.1 to fine-tune a pretrained backbone "
        "gently).",
        min=0.0,
        max=10.0,
    )
    pos_encoding: str = param(
        "sinusoidal",
        help="Position added to every grid cell so the attention knows where it looks: 'sinusoidal' = fixed 2-D "
        "sine/cosine code (any grid size), 'learned' = a trained table (resized to other grid sizes), 'none'.",
        choices=POSITIONS,
    )
    embed_dim: int = param(128, help="Size of the word embeddings (and of the deep output layer).", min=1, max=4096)
    hidden_size: int = param(256, help="Units of the decoder's LSTM cell.", min=1, max=4096)
    attention_dim: int = param(128, help="Size of the additive attention's hidden layer.", min=1, max=4096)
    dropout: float = param(0.3, help="Dropout before the word classifier.", min=0.0, max=0.9)
    attention_reg: float = param(
        1.0,
        help="Weight of the doubly stochastic attention penalty: over a caption every grid cell should receive "
        "about as much attention as any other (0 = off).",
        min=0.0,
        max=100.0,
    )
    gate: bool = param(
        True, help="Scale the attention context by a learned gate sigmoid(f(h)) (Show, Attend and Tell)."
    )
    init: str = init_param()

    def pools(self, image_size: tuple[int, int | None]) -> tuple[int, int]:
        """(height_pools, width_pools) of encoder=cnn for this input size, auto resolved."""
        h, w = image_size
        stages = len(self.channels)
        line = w is None or w >= _LINE_ASPECT * h
        hp = self.height_pools if self.height_pools >= 0 else (stages if line else min(stages, 3))
        wp = self.width_pools if self.width_pools >= 0 else min(stages, 2 if line else 3)
        return hp, wp

    def check(self, *, in_channels: int, image_size: tuple[int, int | None]) -> None:
        h, w = image_size
        if self.encoder == "cnn":
            stages = len(self.channels)
            if self.weights:
                raise ParamError("weights", "only torchvision encoders load weights files; encoder=cnn starts random")
            if self.freeze_encoder:
                raise ParamError(
                    "freeze_encoder",
                    "a randomly initialised encoder=cnn would never learn; use a backbone with weights",
                )
            for name in ("height_pools", "width_pools"):
                if getattr(self, name) > stages:
                    raise ParamError(
                        name, f"{getattr(self, name)} is more than the {stages} conv stages; valid range [-1, {stages}]"
                    )
            hp, wp = self.pools(image_size)
            if h < 2**hp:
                raise ParamError(
                    "channels" if self.height_pools < 0 else "height_pools",
                    f"{hp} height-halving stages need an image at least {2**hp} px high, got {h}; "
                    "use fewer stages or height_pools",
                )
            if w is not None and w < 2**wp:
                raise ParamError(
                    "width_pools",
                    f"{wp} width-halving stages need an image at least {2**wp} px wide, got {w}",
                )
        else:
            if self.weights:
                check_weights_file(self.weights)
            elif self.freeze_encoder:
                raise ParamError("freeze_encoder", "freezing a randomly initialised encoder is useless; give weights")
