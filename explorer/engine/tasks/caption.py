"""Task ``caption``: one or more sentences per image, an encoder-decoder with attention.

Training items are (image, caption) pairs, so an image with five captions is seen
five times an epoch; the image itself is stored once. Validation decodes freely
(never teacher-forced) and scores BLEU-1..4 against *all* of an image's captions.
The vocabulary (``labels``) is built from the training captions and saved with the
run; ``task_extra`` keeps ``max_len`` and ``min_count``.

Images keep their aspect ratio at a fixed height when they look like lines (median
width >= 2 x height, e.g. digit strings); otherwise they are stretched to one size.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from explorer.data import Source, Vocabulary, infer_image_size, load_images, random_split, tokenize
from models import list_models, model_info

from ..bleu import bleu_scores
from ..config import ConfigError, DataConfig
from ..preprocess import Preprocess, channel_stats, valid_pixels
from .base import Evaluation, PreparedData, Split, Task
from .sequence import MAX_HEIGHT, MAX_WIDTH_FACTOR, MIN_HEIGHT

__all__ = ["CaptionTask", "DEFAULT_MAX_LEN"]

DEFAULT_MAX_LEN = 30  # words per caption kept for training (longer ones are cut)
LINE_ASPECT = 2.0  # median width / height at or above which images are read as lines


class CaptionTask(Task):
    name = "caption"

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
        by_image: OrderedDict[str, list[str]] = OrderedDict()
        first_sample: dict[str, Any] = {}
        for s in source.samples:
            if not s.target.strip():
                problems.append(f"{s.path}: empty caption")
                continue
            by_image.setdefault(str(s.path), []).append(s.target)
            first_sample.setdefault(str(s.path), s)
        samples = [first_sample[p] for p in by_image]
        if preprocess is None:
            h, w = infer_image_size(samples, min_side=1, max_side=1 << 20)
            line_like = cfg.width is None and w >= LINE_ASPECT * h
            if line_like:
                height = cfg.height or min(max(h, MIN_HEIGHT), MAX_HEIGHT)
                width, max_width = None, MAX_WIDTH_FACTOR * (cfg.height or min(max(h, MIN_HEIGHT), MAX_HEIGHT))
            else:
                dh, dw = infer_image_size(samples)
                height, width, max_width = cfg.height or dh, cfg.width or dw, None
            color, resize = cfg.color, cfg.resize
        else:
            height, width, color, resize = preprocess.height, preprocess.width, preprocess.color, preprocess.resize
            max_width = preprocess.max_width
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
        paths = [str(s.path) for s in loaded.samples]
        refs = [by_image[p] for p in paths]
        n_img = len(paths)
        widths = (
            torch.from_numpy(loaded.widths)
            if loaded.widths is not None
            else torch.full((n_img,), loaded.images.shape[2], dtype=torch.int64)
        )
        train_img, val_img = random_split(n_img, cfg.val_fraction, seed)
        settings = dict(extra or {})
        max_len = int(settings.get("max_len", DEFAULT_MAX_LEN))
        if labels is not None:
            vocab = Vocabulary(list(labels))
        else:
            vocab = Vocabulary.build(
                (c for i in train_img for c in refs[i]), min_count=int(settings.get("min_count", 1))
            )
            longest = max((len(tokenize(c)) for i in train_img for c in refs[i]), default=1)
            max_len = min(max_len, longest)
        self.configure({"max_len": max_len, "min_count": int(settings.get("min_count", 1))})
        if preprocess is None:
            mean, std = channel_stats(valid_pixels(loaded.images, widths.numpy(), train_img))
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
            )
        images = torch.from_numpy(loaded.images)

        def split(ids: np.ndarray) -> Split:
            ids = np.asarray(ids, dtype=np.int64)
            t = torch.from_numpy(ids)
            pairs = [(k, c) for k, i in enumerate(ids) for c in refs[i]]
            tokens = torch.zeros((len(pairs), max_len + 2), dtype=torch.int64)
            for r, (_, caption) in enumerate(pairs):
                enc = vocab.encode(caption, max_len)
                tokens[r, : len(enc)] = torch.tensor(enc)
            w = widths[t]
            x = images[t][:, :, : int(w.max()) if len(t) else 1].contiguous()
            targets = {
                "image": torch.tensor([k for k, _ in pairs], dtype=torch.int64),
                "tokens": tokens,
                "refs": [[tokenize(c) for c in refs[i]] for i in ids],
            }
            return Split(x, targets, [paths[i] for i in ids], w.contiguous(), size=len(pairs))

        return PreparedData(
            task=self.name,
            labels=vocab.tokens,
            preprocess=preprocess,
            train=split(train_img),
            val=split(val_img),
            problems=problems,
            seconds=time.perf_counter() - t0,
            extra=self.extra,
        )

    def prepare_eval(
        self, source: Source, preprocess: Preprocess, labels: list[str], extra: dict[str, Any], max_pixels: int
    ) -> tuple[Split, list[str]]:
        cfg = DataConfig(val_fraction=0.0, max_pixels=max_pixels)
        data = self.prepare(source, cfg, seed=0, labels=labels, preprocess=preprocess, extra=extra)
        return data.train, data.problems

    # -- model ---------------------------------------------------------------------------
    def model_params(self, arch: str, params: dict[str, Any]) -> dict[str, Any]:
        if "caption" not in model_info(arch).tasks:
            raise ConfigError(
                "arch",
                f"'{arch}' cannot write captions (task caption); use one of: {', '.join(list_models('caption'))}",
            )
        return params

    # -- training ------------------------------------------------------------------------
    def batch(self, split: Split, idx: torch.Tensor) -> tuple[torch.Tensor, Any]:
        t = split.targets
        img = t["image"][idx]
        assert split.widths is not None
        w = split.widths[img]
        x = split.x[img][:, :, : int(w.max())]
        tokens = t["tokens"][idx]
        longest = int((tokens != 0).sum(1).max())
        return x, {"tokens": tokens[:, :longest], "widths": w}

    def loss(self, model: nn.Module, x: torch.Tensor, targets: Any) -> tuple[torch.Tensor, torch.Tensor, int]:
        tokens = targets["tokens"]
        logits, alphas = model(x, tokens)  # (B, L-1, V), (B, L-1, P)
        target = tokens[:, 1:]
        mask = target != 0
        ce = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=0)
        reg_weight = float(getattr(getattr(model, "params", None), "attention_reg", 0.0))
        loss = ce
        if reg_weight > 0:
            # doubly stochastic attention: over a caption, every cell should be looked at about once
            seen = (alphas.float() * mask.unsqueeze(-1)).sum(1)  # (B, P)
            loss = ce + reg_weight * ((1.0 - seen) ** 2).mean()
        with torch.no_grad():
            hit = ((logits.argmax(-1) == target) & mask).sum(1).float()
            correct = (hit / mask.sum(1).clamp(min=1)).sum()  # per-caption word accuracy, summed
        return loss, correct, int(tokens.shape[0])

    # -- evaluation ----------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(
        self, model: nn.Module, split: Split, pre: Preprocess, device: torch.device, autocast: Any, labels: list[str]
    ) -> Evaluation:
        was_training = model.training
        model.eval()
        vocab = Vocabulary(list(labels))
        n_pairs = len(split)
        loss_sum, n_words = 0.0, 0
        for i in range(0, n_pairs, 128):
            idx = torch.arange(i, min(i + 128, n_pairs), device=split.x.device)
            x, t = self.batch(split, idx)
            with autocast():
                logits, _ = model(pre.to_tensor(x.to(device)), t["tokens"].to(device))
            target = t["tokens"][:, 1:].to(device)
            loss_sum += float(F.cross_entropy(logits.float().transpose(1, 2), target, ignore_index=0, reduction="sum"))
            n_words += int((target != 0).sum())
        hyps = self._generate(model, split, pre, device, autocast, vocab, beam=1)
        model.train(was_training)
        refs = split.targets["refs"]
        scores = bleu_scores(refs, [h["words"] for h in hyps])
        exact = float(np.mean([h["words"] in r for h, r in zip(hyps, refs)])) if refs else float("nan")
        return Evaluation(
            loss=loss_sum / max(n_words, 1),
            accuracy=exact,
            metrics={**scores, "exact": exact},
            predictions=(refs, hyps),
        )

    def _generate(
        self,
        model: nn.Module,
        split: Split,
        pre: Preprocess,
        device: torch.device,
        autocast: Any,
        vocab: Vocabulary,
        beam: int,
        batch_size: int = 64,
    ) -> list[dict[str, Any]]:
        n = int(split.x.shape[0])
        out: list[dict[str, Any]] = []
        assert split.widths is not None
        for i in range(0, n, batch_size):
            w = split.widths[i : i + batch_size]
            x = split.x[i : i + batch_size][:, :, : int(w.max())]
            with autocast():
                results = model.generate(pre.to_tensor(x.to(device)), max_len=self.extra["max_len"] + 1, beam=beam)
            out += [_describe(r, vocab) for r in results]
        return out

    def final_metrics(self, ev: Evaluation, labels: list[str]) -> dict[str, Any]:
        return {**{f"val_{k}": v for k, v in ev.metrics.items()}, "val_loss": ev.loss}

    def report(self, ev: Evaluation, labels: list[str]) -> dict[str, Any]:
        refs, hyps = ev.predictions
        return {**ev.metrics, "loss": ev.loss, "samples": len(refs)}

    # -- prediction ----------------------------------------------------------------------
    @torch.no_grad()
    def predict(
        self, model: nn.Module, x: torch.Tensor, widths: torch.Tensor, labels: list[str], beam: int = 0
    ) -> list[dict[str, Any]]:
        vocab = Vocabulary(list(labels))
        results = model.generate(x, max_len=self.extra["max_len"] + 1, beam=max(beam, 1))
        out = []
        for cands in results:
            best = _describe(cands, vocab)
            item: dict[str, Any] = {"caption": best["caption"], "score": best["score"]}
            if beam > 1:
                item["candidates"] = [
                    {"caption": " ".join(vocab.decode(c["tokens"])), "score": float(c["score"])} for c in cands
                ]
            out.append(item)
        return out

    def attention(self, model: nn.Module, x: torch.Tensor, labels: list[str], beam: int = 1) -> list[dict[str, Any]]:
        """Words and their attention grids (n_words, gh, gw) of the best caption per image."""
        vocab = Vocabulary(list(labels))
        h, w = x.shape[-2:]
        gh, gw = model.grid_size(h, w)
        out = []
        for cands in model.generate(x, max_len=self.extra["max_len"] + 1, beam=beam):
            best = cands[0]
            words = vocab.decode(best["tokens"])
            alphas = best["alphas"][: len(words)].float().cpu().reshape(len(words), gh, gw).numpy()
            out.append({"words": words, "grids": alphas})
        return out

    def probe_output(self, out: torch.Tensor, labels: list[str]) -> tuple[np.ndarray, str | None]:
        # out: the greedy decoding's token logits (B, L, V); their argmax is the emitted word
        words = Vocabulary(list(labels)).decode(out[0].argmax(-1).tolist())
        return np.zeros(0, np.float32), " ".join(words)


def _describe(cands: list[dict[str, Any]], vocab: Vocabulary) -> dict[str, Any]:
    best = cands[0]
    words = vocab.decode(best["tokens"])
    return {"words": words, "caption": " ".join(words), "score": float(best["score"])}
