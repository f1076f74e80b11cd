"""Model families for Model Explorer: pure PyTorch, no Qt, no file I/O.

Public API::

    from models import list_models, model_params, build_model
    net = build_model("cnn", in_channels=1, num_outputs=10, image_size=(32, 32), channels="32,64")
    logits, feats = net.forward_intermediates(x)
"""

from ._base import ExplorerModel
from ._intermediates import AXES, KINDS, Intermediate
from ._registry import ModelInfo, build_model, list_models, model_info, model_params, register_model
from ._spec import ParamError, ParamInfo, Params, param, parse_bool

# Importing the family modules registers them.
from . import backbone, captioner, cnn, conv_rnn, crnn, patch_rnn, rnn  # noqa: E402,F401  isort: skip

__all__ = [
    "AXES",
    "ExplorerModel",
    "Intermediate",
    "KINDS",
    "ModelInfo",
    "ParamError",
    "ParamInfo",
    "Params",
    "build_model",
    "list_models",
    "model_info",
    "model_params",
    "param",
    "parse_bool",
    "register_model",
]
