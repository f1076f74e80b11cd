from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from explorer.data import Vocabulary, open_source, tokenize


def test_tokenize_lowercases_and_splits_punctuation() -> None:
    assert tokenize("A red Circle, left of a BLUE square.") == [
        "a",
        "red",
        "circle",
        ",",
        "left",
        "of",
        "a",
        "blue",
        "square",
        ".",
    ]
    assert tokenize("It's  ok!") == ["it's", "ok", "!"]


def test_vocabulary_round_trip_min_count_and_specials() -> None:
    v = Vocabulary.build(["a red circle", "a blue circle", "a rare word"], min_count=2)
    assert v.tokens[:4] == ["<pad>", "<start>", "<end>", "<unk>"]
    assert v.tokens[4:] == ["a", "circle"]  # by frequency, then alphabetical
    ids = v.encode("A circle!")
    assert ids[0] == v.start_id and ids[-1] == v.end_id
    assert v.decode(ids) == ["a", "circle", "<unk>"]
    assert v.decode(v.encode("a circle a circle", max_len=2)) == ["a", "circle"]
    again = Vocabulary(list(json.loads(json.dumps(v.tokens))))
    assert again.encode("a circle") == v.encode("a circle")
    with pytest.raises(ValueError):
        Vocabulary(["a", "b"])


def test_coco_captions_json(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(tmp_path / "images" / name), np.zeros((8, 8), np.uint8))
    doc = {
        "images": [
            {"id": 1, "file_name": "a.png"},
            {"id": 2, "file_name": "b.png"},
            {"id": 3, "file_name": "gone.png"},
        ],
        "annotations": [
            {"image_id": 1, "caption": "a dark square"},
            {"image_id": 1, "caption": "black"},
            {"image_id": 2, "caption": "night"},
            {"image_id": 3, "caption": "lost"},
            {"image_id": 9, "caption": "nobody"},
        ],
    }
    (tmp_path / "captions.json").write_text(json.dumps(doc))
    src = open_source(tmp_path)
    assert src.task == "caption"
    assert [(s.path.name, s.target) for s in src.samples] == [
        ("a.png", "a dark square"),
        ("a.png", "black"),
        ("b.png", "night"),
    ]
    reasons = " | ".join(str(p) for p in src.problems)
    assert "gone.png" in reasons and "unknown image id 9" in reasons
