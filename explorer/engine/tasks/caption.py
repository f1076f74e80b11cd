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
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from explorer.data import Sample, Source, Vocabulary, infer_image_size, random_split, tokenize
from explorer.data.text import END, PAD, SPECIALS, START
from models import list_models, model_info

from ..bleu import bleu_scores
from ..config import ConfigError, DataConfig
from ..preprocess import Preprocess
from ._export import ExportGraph, random_images
from ._maps import sum_to_one, to_size
from ._prepare import Geometry, fit_preprocess, load
from .base import EVAL_BATCH, Evaluation, Headline, InspectRequest, PreparedData, Split, Task

__all__ = ["CaptionTask", "DEFAULT_MAX_LEN"]

DEFAULT_MAX_LEN = 30  # words per caption kept for training (longer ones are cut)
PROBE_BEAM = 3  # beam candidates shown with a probe of the captioner
LINE_ASPECT = 2.0  # median width / height at or above which images are read as lines
PLACEHOLDER_CAPTION = "a small red circle above a large blue square"  # preview vocabulary before any data


class CaptionTask(Task):
    name = "caption"
    labels_noun = "words"
    title = "Caption: describe an image in words"
    headline = Headline("val_bleu4", "BLEU-4", percent=False)
    inspects = ("attention",)

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
        samples, by_image = _group_captions(source.samples, problems)
        geometry = Geometry.of(preprocess) if preprocess is not None else _geometry(samples, cfg)
        images = load(
            samples,
            geometry,
            origin=source.origin,
            max_pixels=cfg.max_pixels,
            problems=problems,
            progress=progress,
            data=cfg,
        )
        paths = [str(s.path) for s in images.samples]
        refs = [by_image[p] for p in paths]
        train_img, val_img = random_split(len(paths), cfg.val_fraction, seed)
        vocab, max_len = self._vocabulary(labels, [c for i in train_img for c in refs[i]], extra or {})
        preprocess = preprocess or fit_preprocess(images, geometry, cfg.resize, train_img)

        def split(ids: np.ndarray) -> Split:
            x, w = images.take(ids)
            pairs = [(k, c) for k, i in enumerate(ids) for c in refs[i]]
            targets = {
                "image": torch.tensor([k for k, _ in pairs], dtype=torch.int64),
                "tokens": _encode_captions([c for _, c in pairs], vocab, max_len),
                "refs": [[tokenize(c) for c in refs[i]] for i in ids],
            }
            return Split(x, targets, [paths[i] for i in ids], w, size=len(pairs))

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

    def _vocabulary(
        self, labels: list[str] | None, train_captions: list[str], settings: dict[str, Any]
    ) -> tuple[Vocabulary, int]:
        """The run's vocabulary (given, or built from the training captions) and the words
        per caption kept; adopts ``max_len`` and ``min_count`` as the run's settings."""
        max_len = int(settings.get("max_len", DEFAULT_MAX_LEN))
        min_count = int(settings.get("min_count", 1))
        if labels is not None:
            vocab = Vocabulary(list(labels))
        else:
            vocab = Vocabulary.build(train_captions, min_count=min_count)
            max_len = min(max_len, max((len(tokenize(c)) for c in train_captions), default=1))
        self.configure({"max_len": max_len, "min_count": min_count})
        return vocab, max_len

    def input_size(self, samples: Sequence[Sample], cfg: DataConfig) -> tuple[int, int | None]:
        g = _geometry(list(samples), cfg)
        return g.height, g.width

    def labels_from_targets(self, targets: Sequence[str]) -> list[str]:
        """The vocabulary: PAD, START, END, UNK, then the captions' words by frequency."""
        return Vocabulary.build(targets, min_count=int(self.extra.get("min_count", 1))).tokens

    # -- model ---------------------------------------------------------------------------
    def model_params(self, arch: str, params: dict[str, Any]) -> dict[str, Any]:
        if self.name not in model_info(arch).tasks:
            raise ConfigError(
                "arch",
                f"'{arch}' cannot write captions (task caption); use one of: {', '.join(list_models(self.name))}",
            )
        return params

    def preview_labels(self, labels: Sequence[str] | None = None) -> list[str]:
        """The vocabulary, or a small placeholder one when there are no captions yet."""
        if labels and len(labels) > len(SPECIALS):
            return list(labels)
        return Vocabulary.build([PLACEHOLDER_CAPTION]).tokens

    def example_input(self, in_channels: int, image_size: tuple[int, int | None], labels: Sequence[str]) -> tuple:
        """The image and a short teacher-forced caption ``START w... END`` (what training feeds)."""
        (x,) = super().example_input(in_channels, image_size, labels)
        words = list(range(len(SPECIALS), min(len(labels), len(SPECIALS) + 6)))
        return x, torch.tensor([[SPECIALS.index(START), *words, SPECIALS.index(END)]], dtype=torch.int64)

    @property
    def accuracy_name(self) -> str:
        return "words right (train, teacher-forced), exact captions (val)"

    @property
    def loss_name(self) -> str:
        return "cross-entropy per word"

    # -- export --------------------------------------------------------------------------
    def export_graphs(self, model: nn.Module, input_shape: tuple[int, int, int | None]) -> list[ExportGraph]:
        """Two graphs: ``encoder`` (image -> features, h, c) and ``decoder`` (one step)."""
        encoder, step = model.export_modules()
        images = random_images(input_shape)
        vocab = model.vocab_size
        free = "cells" if input_shape[2] is None else None  # the grid grows with the width

        def step_inputs(b: int, w: int) -> tuple[torch.Tensor, ...]:
            with torch.no_grad():
                feats, h, c = encoder(images(b, w))
            token = torch.randint(len(SPECIALS), vocab, (b,), generator=torch.Generator().manual_seed(w))
            return token, h, c, feats

        enc_dyn = {0: "batch"} if input_shape[2] is not None else {0: "batch", 3: "width"}
        return [
            ExportGraph("encoder", encoder, lambda b, w: (images(b, w),), ("image",), ("features", "h", "c"),
                        (enc_dyn,), (("batch", "cells", "dim"), ("batch", "hidden"), ("batch", "hidden"))),
            ExportGraph("decoder", step, step_inputs, ("token", "h", "c", "features"),
                        ("logits", "h_next", "c_next", "alpha"),
                        ({0: "batch"}, {0: "batch"}, {0: "batch"}, {0: "batch", **({1: free} if free else {})}),
                        (("batch", "vocabulary"), ("batch", "hidden"), ("batch", "hidden"), ("batch", "cells"))),
        ]  # fmt: skip

    def export_info(self, model: nn.Module, labels: list[str], input_shape: tuple[int, int, int | None]) -> dict:
        """The vocabulary and the greedy loop's constants."""
        _, h, w = input_shape
        gh, gw = model.grid_size(h, w if w is not None else h)  # gh does not depend on the width
        return {
            "vocabulary": list(labels),
            "pad": SPECIALS.index(PAD),
            "start": SPECIALS.index(START),
            "end": SPECIALS.index(END),
            "grid": [gh, gw if w is not None else None],
            "max_length": self.decode_steps,
            "outputs": {
                "features": "(batch, cells, dim) annotation vectors, cell = row * grid[1] + col",
                "h": "(batch, hidden) the decoder's initial state; c likewise",
                "logits": "(batch, vocabulary) next-word scores, pad and start at -inf: greedy takes the argmax",
                "alpha": "(batch, cells) attention of this step over the grid, sums to 1",
            },
            "decoding": "token = start; up to max_length steps: logits, h, c, alpha = decoder(token, h, c, features); "
            "token = argmax(logits); stop at end; the words are vocabulary[token]",
        }

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
        for i in range(0, n_pairs, EVAL_BATCH):
            idx = torch.arange(i, min(i + EVAL_BATCH, n_pairs), device=split.x.device)
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
        batch_size: int = EVAL_BATCH,
    ) -> list[dict[str, Any]]:
        n = int(split.x.shape[0])
        out: list[dict[str, Any]] = []
        assert split.widths is not None
        for i in range(0, n, batch_size):
            w = split.widths[i : i + batch_size]
            x = split.x[i : i + batch_size][:, :, : int(w.max())]
            with autocast():
                results = model.generate(pre.to_tensor(x.to(device)), max_len=self.decode_steps, beam=beam)
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
        results = model.generate(x, max_len=self.decode_steps, beam=max(beam, 1))
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

    def format_prediction(self, pred: Mapping[str, Any], top: int = 3) -> str:
        """``the caption (score -1.234)``."""
        return pred["caption"] + (f" (score {pred['score']:.3f})" if "score" in pred else "")

    def format_candidates(self, pred: Mapping[str, Any]) -> list[str]:
        return [f"    {c['caption']} ({c['score']:.3f})" for c in pred.get("candidates", [])[1:]]

    def prediction_columns(self) -> tuple[str, ...]:
        return ("Caption", "Score")

    def prediction_cells(self, pred: Mapping[str, Any]) -> tuple[str, ...]:
        return (pred["caption"], f"{pred['score']:.3f}" if "score" in pred else "")

    def inspect(self, req: InspectRequest) -> dict[str, Any]:
        """The caption and its attention: ``tokens`` (the words) and ``maps`` (n_words, H, W)
        at the image's resolution, each summing to 1. Greedy (``beam`` 1): the forward pass's
        own declared tokens and attention; with ``beam`` > 1, those of the beam search's best."""
        req.refuse_target(self.name)
        tokens, attention = req.of_kind("tokens"), req.of_kind("attention")
        if req.beam <= 1 and tokens and attention:
            words = Vocabulary(list(req.labels)).decode(next(iter(tokens.values()))[0].tolist())
            grids = next(iter(attention.values()))[0, : len(words)].float().cpu().numpy()
        else:
            att = self.attention(req.model, req.x, req.labels, beam=req.beam)[0]
            words, grids = att["words"], att["grids"]
        oh, ow = req.image_size
        maps = [sum_to_one(to_size(g, oh, ow)) for g in grids]
        return {
            "prediction": {"caption": " ".join(words)},
            "attention": {
                "tokens": np.array(words),
                "maps": (np.stack(maps) if maps else np.zeros((0, oh, ow))).astype(np.float32),
            },
        }

    def attention(self, model: nn.Module, x: torch.Tensor, labels: list[str], beam: int = 1) -> list[dict[str, Any]]:
        """Words and their attention grids (n_words, gh, gw) of the best caption per image."""
        vocab = Vocabulary(list(labels))
        h, w = x.shape[-2:]
        gh, gw = model.grid_size(h, w)
        out = []
        for cands in model.generate(x, max_len=self.decode_steps, beam=beam):
            best = cands[0]
            words = vocab.decode(best["tokens"])
            alphas = best["alphas"][: len(words)].float().cpu().reshape(len(words), gh, gw).numpy()
            out.append({"words": words, "grids": alphas})
        return out

    @property
    def decode_steps(self) -> int:
        """Most decoding steps of a caption (its words and END): the run's ``max_len`` + 1."""
        return int(self.extra["max_len"]) + 1

    def forward_intermediates(self, model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Greedy decoding as long as ``predict`` decodes (the model's own default is longer)."""
        return model.forward_intermediates(x, max_len=self.decode_steps)

    @torch.no_grad()
    def probe_candidates(self, model: nn.Module, x: torch.Tensor, labels: list[str]) -> list[dict[str, Any]] | None:
        """The beam search's ``PROBE_BEAM`` candidates for the first image, best first: ``words``,
        ``score`` (the ranking score, length-normalised), ``logp`` (the sum of the words'
        log-probabilities, END included when ``ended``) and ``alphas`` (n_words, gh, gw)."""
        vocab = Vocabulary(list(labels))
        gh, gw = model.grid_size(*x.shape[-2:])
        out = []
        for c in model.generate(x[:1], max_len=self.decode_steps, beam=PROBE_BEAM)[0]:
            words = vocab.decode(c["tokens"])
            alphas = c["alphas"][: len(words)].float().cpu().reshape(len(words), gh, gw).numpy()
            out.append(
                {"words": words, "score": float(c["score"]), "logp": float(c["logp"]), "ended": bool(c["ended"]),
                 "alphas": alphas}
            )  # fmt: skip
        return out

    def probe_output(self, out: torch.Tensor, labels: list[str]) -> tuple[np.ndarray, str | None]:
        # out: the greedy decoding's token logits (B, L, V); their argmax is the emitted word
        words = Vocabulary(list(labels)).decode(out[0].argmax(-1).tolist())
        return np.zeros(0, np.float32), " ".join(words)


def _group_captions(samples: list[Sample], problems: list[str]) -> tuple[list[Sample], dict[str, list[str]]]:
    """One sample per image (first appearance order) and each image's captions; a problem
    line per empty caption."""
    by_image: OrderedDict[str, list[str]] = OrderedDict()
    first: dict[str, Sample] = {}
    for s in samples:
        if not s.target.strip():
            problems.append(f"{s.path}: empty caption")
            continue
        by_image.setdefault(str(s.path), []).append(s.target)
        first.setdefault(str(s.path), s)
    return [first[p] for p in by_image], by_image


def _geometry(samples: list[Sample], cfg: DataConfig) -> Geometry:
    """Lines (median width >= LINE_ASPECT x height, no width set) keep their aspect ratio;
    other images get one size."""
    h, w = infer_image_size(samples, min_side=1, max_side=1 << 20)
    if cfg.width is None and w >= LINE_ASPECT * h:
        return Geometry.line(samples, cfg, median_height=h)
    return Geometry.fixed(samples, cfg)


def _encode_captions(captions: list[str], vocab: Vocabulary, max_len: int) -> torch.Tensor:
    """(N, max_len + 2) int64 ``START w... END`` ids, PAD after."""
    tokens = torch.zeros((len(captions), max_len + 2), dtype=torch.int64)
    for r, caption in enumerate(captions):
        enc = vocab.encode(caption, max_len)
        tokens[r, : len(enc)] = torch.tensor(enc)
    return tokens


def _describe(cands: list[dict[str, Any]], vocab: Vocabulary) -> dict[str, Any]:
    best = cands[0]
    words = vocab.decode(best["tokens"])
    return {"words": words, "caption": " ".join(words), "score": float(best["score"])}
