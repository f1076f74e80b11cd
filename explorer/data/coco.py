"""COCO-style captions JSON: ``images`` with file names, ``annotations`` with one caption each."""

from __future__ import annotations

import json
from pathlib import Path

from .errors import DataError
from .layouts import COCO_LAYOUT
from .records import Problem, Sample, Source

__all__ = ["COCO_CAPTIONS_NAME", "read_coco_captions"]

#: A folder holding this file (and no CSV manifest) is read as COCO-style captions.
COCO_CAPTIONS_NAME = "captions.json"


def read_coco_captions(json_path: str | Path) -> Source:
    """COCO-style captions: ``{"images": [{"id", "file_name"}], "annotations": [{"image_id", "caption"}]}``.

    One sample per (image, caption) pair, the caption layout's task; ``file_name`` is relative to
    the JSON file (or to an ``images/`` folder beside it). Annotations naming an unknown
    image, images without a caption and missing files become problems.

    Raises:
        DataError: unreadable JSON or not the COCO layout; the message names the file.
    """
    path = Path(json_path).expanduser()
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
        images = {img["id"]: str(img["file_name"]) for img in doc["images"]}
        annotations = [(a["image_id"], str(a["caption"])) for a in doc["annotations"]]
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{path}: cannot read captions JSON: {exc}") from exc
    except (KeyError, TypeError) as exc:
        raise DataError(
            f"{path}: not COCO captions (needs images[].id/file_name and annotations[].image_id/caption): {exc}"
        ) from exc
    base = path.parent
    samples: list[Sample] = []
    problems: list[Problem] = []
    resolved: dict[object, Path | None] = {}
    for image_id, caption in annotations:
        if image_id not in images:
            problems.append(Problem(str(path), f"annotation for unknown image id {image_id!r}"))
            continue
        if image_id not in resolved:
            candidates = [base / images[image_id], base / "images" / images[image_id]]
            found = next((c for c in candidates if c.is_file()), None)
            resolved[image_id] = found
            if found is None:
                problems.append(Problem(str(candidates[0]), "file not found (named in the captions JSON)"))
        target = COCO_LAYOUT.parse(caption)
        if resolved[image_id] is not None and target:
            samples.append(Sample(resolved[image_id], target))  # type: ignore[arg-type]
    for image_id, name in images.items():
        if image_id not in resolved:  # no annotation names it
            problems.append(Problem(str(base / name), "image has no caption in the JSON"))
    return Source(samples=samples, problems=problems, task=COCO_LAYOUT.task, origin=str(path))
