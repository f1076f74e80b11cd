"""Task ``sequence``: a text per image, read by a per-frame (CTC) head.

Images keep their aspect ratio at a fixed height and are right-padded per batch to
the batch's widest image (never squashed to a square). The charset comes from the
training texts (saved in the run); class 0 is the CTC blank. Before training, every
image is checked to give the model enough frames for its text.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from explorer.data import Source, infer_image_size, load_images, random_split
from models import model_info

from ..config import ConfigError, DataConfig
from ..ctc import cer as char_error_rate
from ..ctc import char_confusion, encode, greedy_decode, greedy_decode_batch, prefix_beam_search, required_frames
from ..preprocess import Preprocess, channel_stats, valid_pixels
from .base import Evaluation, PreparedData, Split, Task

__all__ = ["SequenceTask", "MIN_HEIGHT", "MAX_HEIGHT"]

MIN_HEIGHT, MAX_HEIGHT = 16, 64  # derived line height is clamped to this range
MAX_WIDTH_FACTOR = 40  # widest accepted line: 40 x its height (longer ones are squeezed)


def _output_lengths(model: nn.Module, widths: torch.Tensor, frames: int) -> torch.Tensor:
    fn = getattr(model, "output_lengths", None)
    if fn is None:
        return torch.full_like(widths, frames)
    return fn(widths).clamp(max=frames)


class SequenceTask(Task):
    name = "sequence"

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
        samples = [s for s in source.samples]
        problems = [str(p) for p in source.problems]
        empty = [s for s in samples if not s.target]
        problems += [f"{s.path}: empty text" for s in empty]
        samples = [s for s in samples if s.target]
        if preprocess is not None:
            height, width, color, resize, max_width = (
                preprocess.height,
                preprocess.width,
                preprocess.color,
                preprocess.resize,
                preprocess.max_width,
            )
        else:
            height, width = cfg.height, cfg.width
            if height is None:
                h, _ = infer_image_size(samples, min_side=1, max_side=1 << 20)
                height = min(max(h, MIN_HEIGHT), MAX_HEIGHT)
            color, resize = cfg.color, cfg.resize
            max_width = MAX_WIDTH_FACTOR * height
        if labels is not None:
            charset = list(labels)
            bad = [s for s in samples if set(s.target) - set(charset)]
            problems += [
                f"{s.path}: characters not in the model's charset: {''.join(sorted(set(s.target) - set(charset)))}"
                for s in bad
            ]
            samples = [s for s in samples if not set(s.target) - set(charset)]
        loaded = load_images(
            samples,
            height=height,
            width=width,
            color=color,
            resize=resize,
            max_pixels=cfg.max_pixels,
            progress=progress,
            max_width=max_width or MAX_WIDTH_FACTOR * height,
        )
        problems += [str(p) for p in loaded.problems]
        if not loaded.samples:
            raise ConfigError("data.source", f"no usable image in {source.origin} ({len(problems)} unusable files)")
        texts = [s.target for s in loaded.samples]
        if labels is None:
            charset = sorted(set("".join(texts)))
        widths = (
            torch.from_numpy(loaded.widths)
            if loaded.widths is not None
            else torch.full((len(texts),), loaded.images.shape[2], dtype=torch.int64)
        )
        train_idx, val_idx = random_split(len(texts), cfg.val_fraction, seed)
        if preprocess is None:
            mean, std = channel_stats(valid_pixels(loaded.images, widths.numpy(), train_idx))
            preprocess = Preprocess(
                channels=loaded.images.shape[-1],
                color=loaded.color,
                height=height,
                width=width,
                resize=cfg.resize,
                mean=mean,
                std=std,
                fit="keep_aspect" if width is None else "stretch",
                max_width=max_width if width is None else None,
                pad="edge",
            )
        images = torch.from_numpy(loaded.images)
        encoded = [encode(t, charset) for t in texts]
        longest = max(len(e) for e in encoded)
        label_tensor = torch.zeros((len(encoded), longest), dtype=torch.int64)
        for i, e in enumerate(encoded):
            label_tensor[i, : len(e)] = torch.tensor(e, dtype=torch.int64)
        lengths = torch.tensor([len(e) for e in encoded], dtype=torch.int64)
        paths = [str(s.path) for s in loaded.samples]

        def split(ids: np.ndarray) -> Split:
            t = torch.from_numpy(np.asarray(ids, dtype=np.int64))
            w = widths[t]
            x = images[t][:, :, : int(w.max()) if len(t) else 1].contiguous()
            targets = {"labels": label_tensor[t], "lengths": lengths[t], "texts": [texts[i] for i in ids]}
            return Split(x, targets, [paths[i] for i in ids], w.contiguous())

        return PreparedData(
            task=self.name,
            labels=charset,
            preprocess=preprocess,
            train=split(train_idx),
            val=split(val_idx),
            problems=problems,
            seconds=time.perf_counter() - t0,
        )

    def prepare_eval(
        self, source: Source, preprocess: Preprocess, labels: list[str], extra: dict[str, Any], max_pixels: int
    ) -> tuple[Split, list[str]]:
        cfg = DataConfig(val_fraction=0.0, max_pixels=max_pixels)
        data = self.prepare(source, cfg, seed=0, labels=labels, preprocess=preprocess)
        return data.train, data.problems

    # -- model ---------------------------------------------------------------------------
    def num_outputs(self, data: PreparedData) -> int:
        return len(data.labels) + 1  # + the CTC blank

    def model_params(self, arch: str, params: dict[str, Any]) -> dict[str, Any]:
        info = model_info(arch)
        if "sequence" not in info.tasks:
            from models import list_models

            raise ConfigError(
                "arch", f"'{arch}' cannot read text (task sequence); use one of: {', '.join(list_models('sequence'))}"
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
        for i in range(0, n, 128):
            idx = torch.arange(i, min(i + 128, n), device=split.x.device)
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
