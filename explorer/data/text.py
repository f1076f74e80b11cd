"""Caption text: tokenizer and vocabulary.

Tokenizing lower-cases and splits punctuation off words (``"A cat, sitting."`` ->
``a cat , sitting .``). The vocabulary keeps words seen at least ``min_count`` times
in the training captions, after four specials with fixed ids: ``<pad>`` 0,
``<start>`` 1, ``<end>`` 2, ``<unk>`` 3. It is saved with the run as a plain list.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["PAD", "START", "END", "UNK", "SPECIALS", "tokenize", "Vocabulary"]

PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
SPECIALS = (PAD, START, END, UNK)

_TOKEN = re.compile(r"\w+(?:'\w+)?|[^\w\s]", re.UNICODE)


def tokenize(text: str) -> list[str]:
    """Lower-case words and punctuation marks, in order."""
    return _TOKEN.findall(text.lower())


@dataclass
class Vocabulary:
    tokens: list[str]  # index = id; the first four are SPECIALS

    def __post_init__(self) -> None:
        if tuple(self.tokens[:4]) != SPECIALS:
            raise ValueError(f"a vocabulary must start with {', '.join(SPECIALS)}")
        if len(set(self.tokens)) != len(self.tokens):
            raise ValueError("a vocabulary must not repeat tokens")
        self.index = {t: i for i, t in enumerate(self.tokens)}

    pad_id, start_id, end_id, unk_id = 0, 1, 2, 3

    @classmethod
    def build(cls, texts: Iterable[str], *, min_count: int = 1, max_size: int | None = None) -> Vocabulary:
        """From training captions: words seen >= ``min_count`` times, most frequent first
        (ties alphabetical, so the result is deterministic)."""
        counts = Counter(tok for text in texts for tok in tokenize(text))
        words = sorted(
            (w for w, c in counts.items() if c >= min_count and w not in SPECIALS), key=lambda w: (-counts[w], w)
        )
        if max_size is not None:
            words = words[: max(0, max_size - len(SPECIALS))]
        return cls(list(SPECIALS) + words)

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str, max_len: int | None = None) -> list[int]:
        """``<start> w1 ... wn <end>`` as ids; unknown words become ``<unk>``; at most
        ``max_len`` words (the caption is cut, ``<end>`` kept)."""
        ids = [self.index.get(t, self.unk_id) for t in tokenize(text)]
        if max_len is not None:
            ids = ids[:max_len]
        return [self.start_id, *ids, self.end_id]

    def decode(self, ids: Sequence[int]) -> list[str]:
        """Words of an id sequence: stops at ``<end>``, drops ``<start>``/``<pad>``."""
        out = []
        for i in ids:
            i = int(i)
            if i == self.end_id:
                break
            if i in (self.pad_id, self.start_id):
                continue
            out.append(self.tokens[i] if 0 <= i < len(self.tokens) else UNK)
        return out
