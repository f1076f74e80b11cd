"""Shared pieces of every family: the model base class, activations, weight init."""

from __future__ import annotations

import math
from typing import ClassVar

from torch import Tensor, nn

from ._intermediates import Intermediate
from ._spec import param

__all__ = [
    "ExplorerModel",
    "ACTIVATIONS",
    "INITS",
    "head_dropout_param",
    "init_param",
    "make_activation",
    "init_weights",
]

ACTIVATIONS = ("relu", "leaky_relu", "gelu", "elu", "tanh", "silu")
INITS = ("default", "xavier", "he")


_INIT_HELP = "Weight initialisation: 'default' = PyTorch's, 'xavier' = Glorot uniform, 'he' = Kaiming normal."


def init_param(help: str = _INIT_HELP) -> str:
    """The ``init`` field every family has (see :func:`init_weights`)."""
    return param("default", help=help, choices=INITS)


def head_dropout_param(default: float = 0.0, layer: str = "classifier layer") -> float:
    """The ``head_dropout`` field: dropout right before the last layer."""
    return param(default, help=f"Dropout right before the {layer}.", min=0.0, max=0.9)


def make_activation(name: str) -> nn.Module:
    return {
        "relu": lambda: nn.ReLU(inplace=True),
        "leaky_relu": lambda: nn.LeakyReLU(0.1, inplace=True),
        "gelu": nn.GELU,
        "elu": lambda: nn.ELU(inplace=True),
        "tanh": nn.Tanh,
        "silu": lambda: nn.SiLU(inplace=True),
    }[name]()


def init_weights(module: nn.Module, scheme: str) -> None:
    """Re-initialise conv, linear and recurrent weights: ``default`` keeps PyTorch's.

    Xavier (Glorot) uniform suits tanh/sigmoid nets; He (Kaiming) normal suits ReLU.
    Biases are zeroed; recurrent weight matrices get the same scheme per gate block.
    """
    if scheme == "default":
        return
    if scheme not in INITS:
        raise ValueError(f"unknown init '{scheme}'; valid: {', '.join(INITS)}")
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            if scheme == "xavier":
                nn.init.xavier_uniform_(m.weight)
            else:
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.RNN, nn.LSTM, nn.GRU)):
            for name, w in m.named_parameters():
                if name.startswith("weight"):
                    if scheme == "xavier":
                        nn.init.xavier_uniform_(w)
                    else:
                        nn.init.kaiming_normal_(
                            w, nonlinearity="relu" if isinstance(m, nn.RNN) and m.nonlinearity == "relu" else "tanh"
                        )
                else:
                    nn.init.zeros_(w)


class ExplorerModel(nn.Module):
    """Base of every family.

    ``forward(x)`` returns the head's output; ``forward_intermediates(x)`` returns the
    model's output first (the same as ``forward(x)``; for the captioner, whose ``forward`` is
    teacher forced, the token logits of its greedy decoding) plus named intermediates, which
    ``intermediate_info`` declares, names being ``named_modules()`` names where
    a module produced the tensor (e.g. ``"features.0"`` for a conv block's output, or
    ``"rnn.0:fwd"`` for the forward direction of recurrent layer 0, shape (B, T, H)).
    """

    #: True for a conv-dominated family: on CUDA the engine then trains it in channels-last
    #: (NHWC) memory format, which cuDNN runs faster, above all under mixed precision.
    channels_last: ClassVar[bool] = False

    def forward_intermediates(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        raise NotImplementedError  # every family implements it (tests/models/test_intermediates.py)

    def intermediate_info(self, image_size: tuple[int, int]) -> dict[str, Intermediate]:
        """What each entry of ``forward_intermediates`` is for an input of ``image_size``
        (H, W): same keys, same order (see :mod:`models._intermediates`)."""
        raise NotImplementedError  # every family implements it (tests/models/test_intermediates.py)

    def output_info(self, image_size: tuple[int, int]) -> Intermediate:
        """What the first element of ``forward_intermediates`` is."""
        raise NotImplementedError  # every family implements it (tests/models/test_intermediates.py)

    def forward(self, x: Tensor) -> Tensor:  # pragma: no cover - families override
        return self.forward_intermediates(x)[0]

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    return math.floor((size + 2 * padding - kernel) / stride) + 1
