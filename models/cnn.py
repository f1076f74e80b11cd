"""Family ``cnn``: a plain stack of conv blocks and a small dense head.

Each block is ``convs_per_block`` x (conv -> [batch norm] -> activation), then an
optional 2x2 pooling and an optional spatial dropout. The head reduces the last
feature map (global average pool, or flatten) and classifies it, optionally through
one hidden dense layer. Module names: ``features.0`` ... one per block, ``head``.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from ._base import ACTIVATIONS, ExplorerModel, head_dropout_param, init_param, init_weights, make_activation
from ._intermediates import Intermediate
from ._registry import register_model
from ._spec import ParamError, Params, param

__all__ = ["CNN", "CNNParams", "ConvBlock"]

# A flatten head over more features than this is almost certainly a mistake (and a
# memory hog): the hidden/output layer alone would hold millions of weights.
_MAX_FLATTEN_FEATURES = 1 << 20


@dataclass
class CNNParams(Params):
    channels: tuple[int, ...] = param(
        (32, 64, 128),
        help="Output channels of each conv block; one block per value. More blocks see larger patterns.",
        min=1,
        max=1024,
    )
    kernel_size: int = param(3, help="Size of the square conv kernels (pixels).", choices=(3, 5, 7))
    convs_per_block: int = param(
        1, help="Conv layers in each block before its pooling (2 = VGG style, slower).", min=1, max=4
    )
    pool: str = param(
        "max",
        help="Pooling at the end of every block; each halves height and width. 'none' keeps the full size.",
        choices=("max", "avg", "none"),
    )
    batch_norm: bool = param(True, help="Batch normalisation after every conv: faster, steadier training.")
    activation: str = param(
        "relu", help="Non-linearity after every conv and the hidden dense layer.", choices=ACTIVATIONS
    )
    dropout: float = param(
        0.0, help="Spatial dropout at the end of every conv block (drops whole feature maps).", min=0.0, max=0.9
    )
    head: str = param(
        "gap",
        help="How the last feature map reaches the classifier: 'gap' averages each channel over the image "
        "(any image size, few weights), 'flatten' keeps every position (fixed size, many weights).",
        choices=("gap", "flatten"),
    )
    hidden: int = param(0, help="Units of a hidden dense layer in the head; 0 = classify directly.", min=0, max=4096)
    head_dropout: float = head_dropout_param(0.2)
    init: str = init_param(
        help="Weight initialisation: 'default' = PyTorch's, 'xavier' = Glorot uniform (tanh-like activations), "
        "'he' = Kaiming normal (ReLU-like activations).",
    )

    def check(self, *, in_channels: int, image_size: tuple[int, int | None]) -> None:
        h, w = image_size
        if w is None and self.head == "flatten":
            raise ParamError("head", "'flatten' needs a fixed image width; use head=gap for variable-width images")
        if self.pool != "none":
            stages = len(self.channels)
            need = 2**stages
            if h < need:
                raise ParamError(
                    "pool",
                    f"{stages} pooling stages need an image at least {need} px high, got {h}; "
                    "use fewer blocks (channels) or pool=none",
                )
            if w is not None and w < need:
                raise ParamError(
                    "pool",
                    f"{stages} pooling stages need an image at least {need} px wide, got {w}; "
                    "use fewer blocks (channels) or pool=none",
                )
        if self.head == "flatten" and w is not None:
            fh, fw = _feature_size(self, h, w)
            n = self.channels[-1] * fh * fw
            if n > _MAX_FLATTEN_FEATURES:
                raise ParamError(
                    "head",
                    f"'flatten' gives {n:,} features ({self.channels[-1]} x {fh} x {fw}), more than "
                    f"{_MAX_FLATTEN_FEATURES:,}; use head=gap, pooling or a smaller image",
                )


def _feature_size(p: CNNParams, h: int, w: int) -> tuple[int, int]:
    """(H, W) of the last block's output: 'same' convs, each pooling floors the halving."""
    if p.pool != "none":
        for _ in p.channels:
            h, w = h // 2, w // 2
    return h, w


class ConvBlock(nn.Sequential):
    """``n_convs`` x (conv -> [BN] -> act), then [2x2 pool], then [Dropout2d]."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        *,
        kernel_size: int,
        n_convs: int,
        pool: str,
        batch_norm: bool,
        activation: str,
        dropout: float,
    ) -> None:
        layers: list[nn.Module] = []
        for i in range(n_convs):
            layers.append(
                nn.Conv2d(
                    in_ch if i == 0 else out_ch, out_ch, kernel_size, padding=kernel_size // 2, bias=not batch_norm
                )
            )
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_ch))
            layers.append(make_activation(activation))
        if pool == "max":
            layers.append(nn.MaxPool2d(2))
        elif pool == "avg":
            layers.append(nn.AvgPool2d(2))
        if dropout > 0:
            layers.append(nn.Dropout2d(dropout))
        super().__init__(*layers)


class CNN(ExplorerModel):
    """Conv blocks (``features.N``) followed by a dense head (``head``)."""

    channels_last = True

    def __init__(self, p: CNNParams, *, in_channels: int, num_outputs: int, image_size: tuple[int, int | None]) -> None:
        super().__init__()
        self.params = p
        blocks = []
        prev = in_channels
        for ch in p.channels:
            blocks.append(
                ConvBlock(
                    prev,
                    ch,
                    kernel_size=p.kernel_size,
                    n_convs=p.convs_per_block,
                    pool=p.pool,
                    batch_norm=p.batch_norm,
                    activation=p.activation,
                    dropout=p.dropout,
                )
            )
            prev = ch
        self.features = nn.Sequential(*blocks)

        head: list[nn.Module] = []
        if p.head == "gap":
            head += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
            n_in = prev
        else:
            h, w = image_size
            assert w is not None  # check() refuses flatten without a width
            fh, fw = _feature_size(p, h, w)
            head.append(nn.Flatten())
            n_in = prev * fh * fw
        if p.hidden > 0:
            head += [nn.Linear(n_in, p.hidden), make_activation(p.activation)]
            n_in = p.hidden
        if p.head_dropout > 0:
            head.append(nn.Dropout(p.head_dropout))
        head.append(nn.Linear(n_in, num_outputs))
        self.head = nn.Sequential(*head)

        init_weights(self, p.init)

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)  # (B, C, H', W')
        return self.head(x)  # (B, num_outputs)

    def forward_intermediates(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        feats: dict[str, Tensor] = {}
        for i, block in enumerate(self.features):
            x = block(x)  # (B, C_i, H_i, W_i)
            feats[f"features.{i}"] = x
        return self.head(x), feats

    def intermediate_info(self, image_size: tuple[int, int]) -> dict[str, Intermediate]:
        return {
            f"features.{i}": Intermediate("feature_map", f"features.{i}", f"conv block {i + 1}")
            for i in range(len(self.features))
        }

    def output_info(self, image_size: tuple[int, int]) -> Intermediate:
        return Intermediate("logits", "head", "class scores")


@register_model(
    "cnn",
    params=CNNParams,
    description="Configurable conv blocks (channels, kernel, pooling, batch norm, dropout) and a dense head.",
    tasks=("classify",),
)
def _build_cnn(p: CNNParams, *, in_channels: int, num_outputs: int, image_size: tuple[int, int | None]) -> CNN:
    return CNN(p, in_channels=in_channels, num_outputs=num_outputs, image_size=image_size)
