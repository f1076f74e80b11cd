"""Task ``sequence``: a text per image, read by a per-frame (CTC) head.

Images keep their aspect ratio at a fixed height and are right-padded per batch to
the batch's widest image (never squashed to a square). The charset comes from the
training texts (saved in the run); class 0 is the CTC blank. Before training, every
image is checked to give the model enough frames for its text.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from explorer.data import Sample, Source, random_split
from models import list_models, model_info

from ..config import ConfigError, DataConfig
from ..ctc import cer as char_error_rate
from ..ctc import char_confusion, encode, greedy_decode, greedy_decode_batch, prefix_beam_search, required_frames
from ..preprocess import Preprocess
from ._export import ExportGraph, image_graph
from ._prepare import MAX_HEIGHT, MIN_HEIGHT, Geometry, fit_preprocess, load
from .base import EVAL_BATCH, Evaluation, Headline, InspectRequest, PreparedData, Split, Task

__all__ = ["SequenceTask", "MIN_HEIGHT", "MAX_HEIGHT"]


def _within_charset(samples: list[Sample], charset: Sequence[str], problems: list[str]) -> list[Sample]:
    """The samples whose text the charset can write; a problem line for each other one."""
    known = set(charset)
    for s in samples:
        if set(s.target) - known:
            problems.append(
                f"{s.path}: characters not in the model's charset: {''.join(sorted(set(s.target) - known))}"
            )
    return [s for s in samples if not set(s.target) - known]


def _encode_texts(texts: list[str], charset: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(labels (N, longest) int64 zero-padded, lengths (N,)) of the texts as charset ids."""
    encoded = [encode(t, list(charset)) for t in texts]
    labels = torch.zeros((len(encoded), max(len(e) for e in encoded)), dtype=torch.int64)
    for i, e in enumerate(encoded):
        labels[i, : len(e)] = torch.tensor(e, dtype=torch.int64)
    return labels, torch.tensor([len(e) for e in encoded], dtype=torch.int64)


def _output_lengths(model: nn.Module, widths: torch.Tensor, frames: int) -> torch.Tensor:
    fn = getattr(model, "output_lengths", None)
    if fn is None:
        return torch.full_like(widths, frames)
    return fn(widths).clamp(max=frames)


class SequenceTask(Task):
    name = "sequence"
    labels_noun = "characters"
    title = "Sequence: read the text in an image"
    headline = Headline("val_sequence_accuracy", "sequence accuracy")
    inspects = ("ctc",)

    # -- data ----------------------------------------------------------------------------
    def prepare(
        self,
        source: Source,
        cfg: DataConfig,
        *,
        seed: int,
        labels: list[str] | None = None,
        preprocess: Preprocess | None = None,
        extra: dict[str, Any] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> PreparedData:
        t0 = time.perf_counter()
        problems = [str(p) for p in source.problems]
        problems += [f"{s.path}: empty text" for s in source.samples if not s.target]
        samples = [s for s in source.samples if s.target]
        if labels is not None:
            samples = _within_charset(samples, labels, problems)
        geometry = Geometry.of(preprocess) if preprocess is not None else Geometry.line(samples, cfg)
        images = load(
            samples,
            geometry,
            origin=source.origin,
            max_pixels=cfg.max_pixels,
            problems=problems,
            progress=progress,
            data=cfg,
        )
        texts = [s.target for s in images.samples]
        charset = list(labels) if labels is not None else self.labels_from_targets(texts)
        train_idx, val_idx = random_split(len(texts), cfg.val_fraction, seed)
        preprocess = preprocess or fit_preprocess(images, geometry, cfg.resize, train_idx)
        label_tensor, lengths = _encode_texts(texts, charset)

        def split(ids: np.ndarray) -> Split:
            x, w = images.take(ids)
            t = torch.from_numpy(np.asarray(ids, dtype=np.int64))
            targets = {"labels": label_tensor[t], "lengths": lengths[t], "texts": [texts[i] for i in ids]}
            return Split(x, targets, [str(images.samples[i].path) for i in ids], w)

        return PreparedData(
            task=self.name,
            labels=charset,
            preprocess=preprocess,
            train=split(train_idx),
            val=split(val_idx),
            problems=problems,
            seconds=time.perf_counter() - t0,
        )

    def input_size(self, samples: Sequence[Sample], cfg: DataConfig) -> tuple[int, int | None]:
        g = Geometry.line([s for s in samples if s.target], cfg)
        return g.height, g.width

    def labels_from_targets(self, targets: Sequence[str]) -> list[str]:
        """The charset: every character of the texts, sorted (class 0 of the model is the blank)."""
        return sorted(set("".join(targets)))

    # -- model ---------------------------------------------------------------------------
    def output_count(self, labels: Sequence[str]) -> int:
        return len(labels) + 1  # + the CTC blank

    def preview_labels(self, labels: Sequence[str] | None = None) -> list[str]:
        """The charset, or the ten digits when there are no texts yet."""
        return list(labels) if labels else list("0123456789")

    @property
    def accuracy_name(self) -> str:
        return "texts read exactly"

    @property
    def loss_name(self) -> str:
        return "CTC"

    def export_graphs(self, model: nn.Module, input_shape: tuple[int, int, int | None]) -> list[ExportGraph]:
        return [image_graph(model, input_shape, ("batch", "frames", "classes"))]

    def export_info(self, model: nn.Module, labels: list[str], input_shape: tuple[int, int, int | None]) -> dict:
        """Class 0 is the CTC blank, class i >= 1 is ``labels[i - 1]``."""
        return {
            "blank": 0,
            "outputs": {
                "logits": f"(batch, frames, {len(labels) + 1}) per-frame scores (left to right): class 0 is the CTC "
                "blank, class i >= 1 is labels[i - 1]; greedy reading: argmax per frame, merge repeats, drop blanks. "
                "Run one image per call (or images of one width): padding is read as frames"
            },
        }

    def model_params(self, arch: str, params: dict[str, Any]) -> dict[str, Any]:
        info = model_info(arch)
        if self.name not in info.tasks:
            raise ConfigError(
                "arch", f"'{arch}' cannot read text (task sequence); use one of: {', '.join(list_models(self.name))}"
            )
        return {**params, "head": "ctc"}

    def check_model(self, model: nn.Module, data: PreparedData) -> None:
        """Refuse, before training, any image whose frames are too few for its text."""
        fn = getattr(model, "output_lengths", None)
        if fn is None:
            return
        for split in (data.train, data.val):
            if not len(split):
                continue
            frames = fn(split.widths.cpu())
            for i, text in enumerate(split.targets["texts"]):
                need = required_frames(text)
                if int(frames[i]) < need:
                    raise ConfigError(
                        "data.source",
                        f"{split.paths[i]}: the model reads {int(frames[i])} frames from this image "
                        f"({int(split.widths[i])} px wide at height {data.preprocess.height}) but its text "
                        f"'{text}' ({len(text)} characters) needs at least {need}; use wider images, a larger "
                        "height, or less horizontal pooling",
                    )

    # -- training ------------------------------------------------------------------------
    def batch(self, split: Split, idx: torch.Tensor) -> tuple[torch.Tensor, Any]:
        assert split.widths is not None
        w = split.widths[idx]
        x = split.x[idx][:, :, : int(w.max())]
        t = split.targets
        return x, {"labels": t["labels"][idx], "lengths": t["lengths"][idx], "widths": w}

    def loss(self, model: nn.Module, x: torch.Tensor, targets: Any) -> tuple[torch.Tensor, torch.Tensor, int]:
        logits = model(x)  # (B, T, classes)
        frames = _output_lengths(model, targets["widths"], logits.shape[1])
        log_probs = logits.float().log_softmax(-1).transpose(0, 1)  # (T, B, classes)
        loss = F.ctc_loss(
            log_probs, targets["labels"], frames, targets["lengths"], blank=0, reduction="mean", zero_infinity=True
        )
        with torch.no_grad():
            decoded = greedy_decode_batch(logits, frames)
            labels = targets["labels"]
            width = max(decoded.shape[1], labels.shape[1])
            decoded = F.pad(decoded, (0, width - decoded.shape[1]))
            labels = F.pad(labels, (0, width - labels.shape[1]))
            correct = (decoded == labels).all(1).sum()
        return loss, correct, int(x.shape[0])

    # -- evaluation ----------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(
        self, model: nn.Module, split: Split, pre: Preprocess, device: torch.device, autocast: Any, labels: list[str]
    ) -> Evaluation:
        was_training = model.training
        model.eval()
        total_loss, texts = 0.0, []
        n = len(split)
        for i in range(0, n, EVAL_BATCH):
            idx = torch.arange(i, min(i + EVAL_BATCH, n), device=split.x.device)
            x, t = self.batch(split, idx)
            x = pre.to_tensor(x.to(device))
            with autocast():
                logits = model(x).float()
            frames = _output_lengths(model, t["widths"].to(device), logits.shape[1])
            lp = logits.log_softmax(-1)
            loss = F.ctc_loss(
                lp.transpose(0, 1),
                t["labels"].to(device),
                frames,
                t["lengths"].to(device),
                blank=0,
                reduction="sum",
                zero_infinity=True,
            )
            total_loss += float(loss)
            lp_cpu, frames_cpu = lp.cpu().numpy(), frames.cpu().numpy()
            for j in range(len(idx)):
                texts.append(greedy_decode(lp_cpu[j, : frames_cpu[j]], labels)[0])
        model.train(was_training)
        refs = split.targets["texts"]
        seq_acc = float(np.mean([r == h for r, h in zip(refs, texts)])) if n else float("nan")
        rate = char_error_rate(refs, texts)
        return Evaluation(
            loss=total_loss / max(n, 1),
            accuracy=seq_acc,
            metrics={"cer": rate, "sequence_accuracy": seq_acc},
            predictions=(refs, texts),
        )

    def final_metrics(self, ev: Evaluation, labels: list[str]) -> dict[str, Any]:
        refs, hyps = ev.predictions
        return {
            "val_sequence_accuracy": ev.accuracy,
            "val_cer": ev.metrics["cer"],
            "val_loss": ev.loss,
            "val_char_confusion": char_confusion(refs, hyps),
        }

    def report(self, ev: Evaluation, labels: list[str]) -> dict[str, Any]:
        refs, hyps = ev.predictions
        return {
            "sequence_accuracy": ev.accuracy,
            "cer": ev.metrics["cer"],
            "loss": ev.loss,
            "samples": len(refs),
            "char_confusion": char_confusion(refs, hyps),
            "charset": "".join(labels),
        }

    def probe_output(self, out: torch.Tensor, labels: list[str]) -> tuple[np.ndarray, str | None]:
        lp = out.float().log_softmax(-1)[0].cpu().numpy()
        return np.exp(lp).copy(), greedy_decode(lp, labels)[0]

    # -- prediction ----------------------------------------------------------------------
    @torch.no_grad()
    def predict(
        self, model: nn.Module, x: torch.Tensor, widths: torch.Tensor, labels: list[str], beam: int = 0
    ) -> list[dict[str, Any]]:
        logits = model(x).float()
        frames = _output_lengths(model, widths.to(x.device), logits.shape[1]).cpu().numpy()
        lp = logits.log_softmax(-1).cpu().numpy()
        out = []
        for j in range(len(x)):
            frame_lp = lp[j, : frames[j]]
            if beam and beam > 1:
                cands = prefix_beam_search(frame_lp, labels, beam=beam)
                text, conf = cands[0]
                out.append(
                    {"text": text, "confidence": conf, "candidates": [{"text": t, "score": p} for t, p in cands]}
                )
            else:
                text, conf = greedy_decode(frame_lp, labels)
                out.append({"text": text, "confidence": conf})
        return out

    def format_prediction(self, pred: Mapping[str, Any], top: int = 3) -> str:
        """``'text' (0.987)``."""
        return f"{pred['text']!r} ({pred['confidence']:.3f})"

    def format_candidates(self, pred: Mapping[str, Any]) -> list[str]:
        return [f"    {c['text']!r} ({c['score']:.3f})" for c in pred.get("candidates", [])[1:]]

    def prediction_columns(self) -> tuple[str, ...]:
        return ("Text", "Confidence")

    def prediction_cells(self, pred: Mapping[str, Any]) -> tuple[str, ...]:
        return (pred["text"], f"{pred['confidence']:.1%}")

    def inspect(self, req: InspectRequest) -> dict[str, Any]:
        """The text and the CTC frames: per-frame probabilities over blank + charset, the
        charset and the best path (argmax per frame)."""
        req.refuse_target(self.name)
        lp = req.out.float().log_softmax(-1)[0]
        widths = torch.tensor([req.x.shape[-1]], device=req.x.device)
        frames = int(_output_lengths(req.model, widths, lp.shape[0])[0])
        lp_np = lp[:frames].cpu().numpy()
        text, conf = greedy_decode(lp_np, req.labels)
        return {
            "prediction": {"text": text, "confidence": conf},
            "ctc": {"probs": np.exp(lp_np), "charset": np.array(req.labels), "best_path": lp_np.argmax(1)},
        }
