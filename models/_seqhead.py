"""What the sequence-reading families share: one parameter block, one check, one head.

``rnn`` (rows), ``crnn`` (feature columns) and ``patch_rnn`` (tiles) read a sequence with
a :class:`~models._recurrent.RecurrentStack` and classify its pooled states. Their
recurrent settings are declared once, in :class:`RecurrentParams`; a family derives its
parameter dataclass from it and names what it reads in ``reading`` (help texts then say
"rows", "columns" or "tiles"). The head (``[Dropout] -> Linear``, optionally after
family layers such as ``conv_rnn``'s global pooling) comes from :func:`linear_head`.

Field order of a family's parameters (what ``archs`` and the form list) follows the
dataclass rule: fields of the bases, farthest first, then the family's own. A family
whose own fields come *before* the recurrent block (``crnn``'s conv stages) declares them
in a small base dataclass listed after :class:`RecurrentParams`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor, nn

from ._recurrent import CELLS, POOLS, RecurrentStack, pool_sequence
from ._spec import ParamError, ParamInfo, Params, param

__all__ = ["Reading", "RecurrentParams", "cell_param", "linear_head", "pooled_logits", "recurrent_stack"]

_CELL_HELP = {
    "rnn": "'rnn' = simple tanh RNN (forgets quickly)",
    "lstm": "'lstm' = long short-term memory",
    "gru": "'gru' = gated recurrent unit (LSTM-like, lighter)",
}


def cell_param(default: str, choices: tuple[str, ...] = CELLS) -> str:
    """The ``cell`` field; a family offering fewer cells redeclares it with its ``choices``."""
    return param(default, help="Recurrent cell: " + ", ".join(_CELL_HELP[c] for c in choices) + ".", choices=choices)


@dataclass(frozen=True)
class Reading:
    """How help texts name the steps a family reads.

    Attributes:
        step: one step, as an adjective ("row").
        steps: the steps ("rows").
        both_ways: what ``bidirectional`` does ("Read the rows top to bottom and bottom to top").
        pool_scope: when ``pool`` applies, e.g. " (head=classify)".
        pool_note: a sentence appended to ``pool``'s help.
    """

    step: str
    steps: str
    both_ways: str
    pool_scope: str = ""
    pool_note: str = ""


@dataclass
class RecurrentParams(Params):
    """The recurrent block: cell, hidden_size, num_layers, bidirectional, dropout, pool."""

    reading: ClassVar[Reading] = Reading("row", "rows", "Read the rows top to bottom and bottom to top")

    cell: str = cell_param("lstm")
    hidden_size: int = param(128, help="Units of each recurrent layer (per direction).", min=1, max=2048)
    num_layers: int = param(1, help="Stacked recurrent layers; each reads the one below.", min=1, max=8)
    bidirectional: bool = param(True, help="{both_ways}; doubles the state size and the cost.")
    dropout: float = param(
        0.0, help="Dropout between stacked recurrent layers (needs num_layers >= 2).", min=0.0, max=0.9
    )
    pool: str = param(
        "last",
        help="How the {step} states become one vector{pool_scope}: 'last' = final state of each direction, "
        "'mean' / 'max' = average / maximum over all {steps}.{pool_note}",
        choices=POOLS,
    )

    @classmethod
    def describe(cls) -> list[ParamInfo]:
        words = dataclasses.asdict(cls.reading)
        return [
            dataclasses.replace(i, help=i.help.format(**words)) if i.name in ("bidirectional", "pool") else i
            for i in super().describe()
        ]

    def check(self, *, in_channels: int, image_size: tuple[int, int | None]) -> None:
        """The recurrent block's rule; families check their own fields first, then call this."""
        if self.dropout > 0 and self.num_layers < 2:
            raise ParamError(
                "dropout",
                f"{self.dropout} has no effect with num_layers=1 (it acts between recurrent layers); "
                "set num_layers >= 2 or dropout=0",
            )


def recurrent_stack(p: RecurrentParams, input_size: int) -> RecurrentStack:
    """The stack ``p`` describes, reading ``input_size`` features per step."""
    return RecurrentStack(p.cell, input_size, p.hidden_size, p.num_layers, p.bidirectional, p.dropout)


def linear_head(n_in: int, num_outputs: int, dropout: float, *before: nn.Module) -> nn.Sequential:
    """``before... -> [Dropout] -> Linear(n_in, num_outputs)`` (state-dict keys ``head.K``)."""
    layers = [*before]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(n_in, num_outputs))
    return nn.Sequential(*layers)


def pooled_logits(head: nn.Module, out: Tensor, p: RecurrentParams, lengths: Tensor | None = None) -> Tensor:
    """Recurrent output (B, T, D*H) pooled as ``p.pool`` says, through ``head``: (B, num_outputs)."""
    pooled = pool_sequence(out, p.pool, p.hidden_size, p.bidirectional, lengths)  # (B, D*H)
    return head(pooled)
