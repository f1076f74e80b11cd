"""Acceptance check for the ``captioner`` family on captioned lines of handwritten digits.

Not a test: a script reproducing the figures in the captioner brief::

    python tests/bench/caption_check.py                      # defaults, 30 epochs
    python tests/bench/caption_check.py --epochs 5 --n-train 1000
    python tests/bench/caption_check.py --set pos_encoding=learned --set gate=false
    python tests/bench/caption_check.py --data shapes --epochs 10   # coloured shapes scenes

Data: :func:`tests.datasets.export_digit_strings` with ``captions=True`` (lines of 3-5
of scikit-learn's real handwritten digits, 32 px high, ~100-170 px wide, captioned
"three one four"); images are read back with OpenCV, and the composition is replayed
with the same random generator to learn every digit's pixel span.

Recipe (the engine's caption task): minimal tokenizer (split on spaces; vocabulary
PAD/START/END/UNK + words), one channel standardised with the training pixels'
mean/std, batches right-padded to their widest line by repeating the last column,
Adam lr=1e-3 with a one-cycle schedule, batch 32, teacher forcing, cross-entropy on
non-PAD words + ``attention_reg * ((1 - sum_t alpha_t) ** 2).mean()``, gradient
clipping at 5.

Reported on the test lines (held-out handwriting), decoded greedily:

* exact-caption accuracy and corpus BLEU-4 (0-100, NLTK's definition);
* attention faithfulness: for each correctly generated word, the grid column where
  the word's attention (summed over rows) peaks is mapped to pixel x (the column's
  centre); the rate at which that x lies inside the pixel span of the digit the word
  names.

``--data shapes``: 64x64 RGB scenes of 2-3 coloured shapes (circle, square, triangle;
red, green, blue, yellow) on black, no overlap, captioned left to right ("a red circle
left of a blue square left of ..."). Faithfulness there: for each correctly generated
colour or shape word, the centre of the grid cell where its attention peaks lies
inside that object's bounding box.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET_BLEU4 = 90.0
TARGET_PEAK = 0.90


def compose_spans(
    n_train: int, n_test: int, seed: int = 0
) -> dict[str, list[tuple[np.ndarray, list[tuple[int, int]]]]]:
    """Replays :func:`tests.datasets.export_digit_strings`' random stream and records,
    per line, the image and each digit's pixel span [x0, x1) (the trimmed glyph)."""
    from tests.datasets import _digit_pool

    pools = _digit_pool(seed, 0.25)
    rng = np.random.default_rng(seed)
    out: dict[str, list[tuple[np.ndarray, list[tuple[int, int]]]]] = {}
    for part, count in (("train", n_train), ("test", n_test)):
        glyphs, _ = pools[part]
        lines = []
        for _ in range(count):
            n = int(rng.integers(3, 6))
            # as tests.datasets._compose, keeping the spans
            picks = rng.integers(0, len(glyphs), n)
            parts = [np.zeros((32, int(rng.integers(2, 8))), np.uint8)]
            spans = []
            x = parts[0].shape[1]
            for k in picks:
                g = glyphs[k]
                cols = np.nonzero(g.max(axis=0) > 40)[0]
                g = g[:, max(cols[0] - 1, 0) : cols[-1] + 2] if len(cols) else g
                gap = np.zeros((32, int(rng.integers(0, 7))), np.uint8)
                spans.append((x, x + g.shape[1]))
                x += g.shape[1] + gap.shape[1]
                parts += [g, gap]
            parts.append(np.zeros((32, int(rng.integers(2, 8))), np.uint8))
            lines.append((np.concatenate(parts, axis=1), spans))
        out[part] = lines
    return out


def read_split(folder: Path) -> tuple[list[np.ndarray], list[str]]:
    import cv2

    images, captions = [], []
    with open(folder / "captions.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            img = cv2.imread(str(folder / row["path"]), cv2.IMREAD_GRAYSCALE)
            assert img is not None, row["path"]
            images.append(img)
            captions.append(row["caption"])
    return images, captions


def pad_batch(images: list[np.ndarray]):
    """uint8 (H, W[, 3]) images -> float (B, C, H, Wmax) in [0, 1], right-padded with the last column."""
    import torch

    w = max(im.shape[1] for im in images)
    out = np.stack(
        [np.pad(im, ((0, 0), (0, w - im.shape[1])) + ((0, 0),) * (im.ndim - 2), mode="edge") for im in images]
    )
    return torch.from_numpy(out.reshape(*out.shape[:3], -1)).float().div_(255.0).permute(0, 3, 1, 2)


COLOURS = {"red": (230, 40, 40), "green": (40, 200, 60), "blue": (50, 80, 240), "yellow": (230, 220, 40)}
SHAPES = ("circle", "square", "triangle")


def make_scenes(n: int, rng: np.random.Generator, size: int = 64):
    """n RGB scenes; per scene its caption and, per caption word, the box (x0, y0, x1, y1)
    of the object it describes (None for "a", "left", "of")."""
    import cv2

    scenes = []
    while len(scenes) < n:
        k = int(rng.integers(2, 4))
        boxes: list[tuple[int, int, int, int]] = []
        for _ in range(50 * k):
            if len(boxes) == k:
                break
            s = int(rng.integers(12, 21))
            x0, y0 = int(rng.integers(1, size - s)), int(rng.integers(1, size - s))
            b = (x0, y0, x0 + s, y0 + s)
            # no overlap (2 px apart) and distinct left-to-right order of centres
            if all(b[2] + 2 <= o[0] or o[2] + 2 <= b[0] or b[3] + 2 <= o[1] or o[3] + 2 <= b[1] for o in boxes) and all(
                abs((b[0] + b[2]) - (o[0] + o[2])) >= 8 for o in boxes
            ):
                boxes.append(b)
        if len(boxes) < k:
            continue
        boxes.sort(key=lambda b: b[0] + b[2])
        img = np.zeros((size, size, 3), np.uint8)
        words: list[str] = []
        regions: list[tuple[int, int, int, int] | None] = []
        for j, (x0, y0, x1, y1) in enumerate(boxes):
            colour = list(COLOURS)[int(rng.integers(len(COLOURS)))]
            shape = SHAPES[int(rng.integers(len(SHAPES)))]
            c = COLOURS[colour]
            if shape == "circle":
                cv2.circle(img, ((x0 + x1 - 1) // 2, (y0 + y1 - 1) // 2), (x1 - x0) // 2, c, -1, cv2.LINE_AA)
            elif shape == "square":
                cv2.rectangle(img, (x0, y0), (x1 - 1, y1 - 1), c, -1)
            else:
                pts = np.array([[(x0 + x1 - 1) // 2, y0], [x0, y1 - 1], [x1 - 1, y1 - 1]], np.int32)
                cv2.fillPoly(img, [pts], c, cv2.LINE_AA)
            if j:
                words += ["left", "of"]
                regions += [None, None]
            words += ["a", colour, shape]
            regions += [None, (x0, y0, x1, y1), (x0, y0, x1, y1)]
        scenes.append((img, " ".join(words), regions))
    return scenes


def load_data(data: str, n_train: int, n_test: int, seed: int):
    """(train images, train captions, test images, test captions, test regions, mode):
    images uint8 (H, W) or (H, W, 3); per test word a region or None; mode 'column'
    (regions are x spans, peak column checked) or 'cell' (boxes, peak cell checked)."""
    if data == "shapes":
        rng = np.random.default_rng(seed)
        tr, te = make_scenes(n_train, rng), make_scenes(n_test, rng)
        return (
            [s[0] for s in tr],
            [s[1] for s in tr],
            [s[0] for s in te],
            [s[1] for s in te],
            [s[2] for s in te],
            "cell",
        )
    from tests.datasets import export_digit_strings

    with tempfile.TemporaryDirectory() as tmp:
        tr_dir, te_dir = export_digit_strings(Path(tmp), n_train=n_train, n_test=n_test, seed=seed, captions=True)
        tr_img, tr_cap = read_split(tr_dir)
        te_img, te_cap = read_split(te_dir)
    replay = compose_spans(n_train, n_test, seed)
    for imgs, part in ((tr_img, "train"), (te_img, "test")):
        assert all(np.array_equal(a, b[0]) for a, b in zip(imgs, replay[part])), f"span replay differs ({part})"
    te_regions = [[(x0, 0, x1, 32) for x0, x1 in spans] for _, spans in replay["test"]]
    return tr_img, tr_cap, te_img, te_cap, te_regions, "column"


def run(
    params: dict[str, str],
    *,
    epochs: int = 30,
    n_train: int = 3000,
    n_test: int = 600,
    batch_size: int = 32,
    lr: float = 1e-3,
    clip: float = 5.0,
    data: str = "digits",
    seed: int = 0,
    threads: int = 1,
    eval_every: int = 0,
    verbose: bool = False,
    device: str = "cpu",
) -> dict[str, float]:
    import torch
    from torch.nn import functional as F

    import models.captioner  # noqa: F401  TEMP until models/__init__ imports it
    from explorer.engine.bleu import corpus_bleu
    from models import build_model

    if threads > 0:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    tr_img, tr_cap, te_img, te_cap, te_regions, mode = load_data(data, n_train, n_test, seed)
    channels = 3 if tr_img[0].ndim == 3 else 1
    height = tr_img[0].shape[0]
    fixed_width = len({im.shape[1] for im in tr_img + te_img}) == 1

    words = sorted({w for c in tr_cap for w in c.split()})
    itos = ["<pad>", "<start>", "<end>", "<unk>", *words]
    stoi = {w: i for i, w in enumerate(itos)}
    max_words = max(len(c.split()) for c in tr_cap)

    def encode(c: str) -> list[int]:
        return [1, *(stoi.get(w, 3) for w in c.split()), 2]

    tr_tok = [encode(c) for c in tr_cap]
    pix = np.concatenate([im.reshape(-1, channels) for im in tr_img]).astype(np.float64) / 255.0
    mean = torch.tensor(pix.mean(0), dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(pix.std(0), dtype=torch.float32).view(1, -1, 1, 1)

    def to_input(images: list[np.ndarray]) -> torch.Tensor:
        return ((pad_batch(images) - mean) / std).to(device)

    size = (height, tr_img[0].shape[1] if fixed_width else None)
    model = build_model("captioner", in_channels=channels, num_outputs=len(itos), image_size=size, **params)
    model = model.to(device)
    reg = float(model.params.attention_reg)
    opt = torch.optim.Adam(model.param_groups(lr), lr=lr)
    steps_per_epoch = (len(tr_img) + batch_size - 1) // batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=[g["lr"] for g in opt.param_groups], total_steps=epochs * steps_per_epoch
    )
    gen = torch.Generator().manual_seed(seed)
    print(
        f"captioner {params} data={data} grid={model.grid_size(*tr_img[0].shape[:2])} epochs={epochs} train={len(tr_img)} test={len(te_img)} vocab={len(itos)} "
        f"params={model.num_parameters():,}",
        flush=True,
    )

    def evaluate() -> dict[str, float]:
        model.eval()
        hyps: list[list[str]] = []
        hits = total = 0
        per_word: dict[str, list[int]] = {}
        for i in range(0, len(te_img), 64):
            imgs = te_img[i : i + 64]
            x = to_input(imgs)
            gh, gw = model.grid_size(x.shape[-2], x.shape[-1])
            sy, sx = x.shape[-2] / gh, x.shape[-1] / gw  # pixels per grid cell
            for j, cands in enumerate(model.generate(x, max_len=max_words + 1)):
                best = cands[0]
                hyp = [itos[t] for t in best["tokens"]]
                hyps.append(hyp)
                ref = te_cap[i + j].split()
                regions = te_regions[i + j]
                maps = best["alphas"].reshape(-1, gh, gw)  # (n_words, gh, gw)
                for k, word in enumerate(hyp):
                    if k >= len(ref) or word != ref[k] or regions[k] is None:
                        continue
                    x0, y0, x1, y1 = regions[k]
                    total += 1
                    if mode == "column":
                        x_peak = (int(maps[k].sum(0).argmax()) + 0.5) * sx
                        hit = x0 <= x_peak < x1
                    else:
                        r, c = divmod(int(maps[k].argmax()), gw)
                        hit = x0 <= (c + 0.5) * sx < x1 and y0 <= (r + 0.5) * sy < y1
                    hits += hit
                    per_word.setdefault(word, [0, 0])[0] += hit
                    per_word[word][1] += 1
        if verbose:
            print(
                "    attention peak on the object, per word: "
                + ", ".join(f"{w} {h / n:.2f}" for w, (h, n) in sorted(per_word.items()))
            )
        refs = [[c.split()] for c in te_cap]
        return {
            "bleu4": corpus_bleu(refs, hyps, 4),
            "exact": float(np.mean([h == r[0] for h, r in zip(hyps, refs)])),
            "peak": hits / max(total, 1),
            "words": float(total),
        }

    epoch_s = []
    res: dict[str, float] = {}
    for ep in range(epochs):
        model.train()
        t0 = time.perf_counter()
        order = torch.randperm(len(tr_img), generator=gen).tolist()
        tot_ce = tot_reg = 0.0
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            x = to_input([tr_img[k] for k in idx])
            longest = max(len(tr_tok[k]) for k in idx)
            tokens = torch.zeros(len(idx), longest, dtype=torch.long)
            for r, k in enumerate(idx):
                tokens[r, : len(tr_tok[k])] = torch.tensor(tr_tok[k])
            tokens = tokens.to(device)
            logits, alphas = model(x, tokens)  # (B, L-1, V), (B, L-1, P)
            target = tokens[:, 1:]
            mask = target != 0
            ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=0)
            pen = ((1.0 - (alphas * mask.unsqueeze(-1)).sum(1)) ** 2).mean()
            loss = ce + reg * pen
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            sched.step()
            tot_ce += ce.item() * len(idx)
            tot_reg += pen.item() * len(idx)
        epoch_s.append(time.perf_counter() - t0)
        line = f"  epoch {ep + 1:2d}  ce {tot_ce / len(order):.4f}  reg {tot_reg / len(order):.4f}  {epoch_s[-1]:.1f} s"
        if ep == epochs - 1 or (eval_every > 0 and (ep + 1) % eval_every == 0):
            res = evaluate()
            line += f"  BLEU-4 {res['bleu4']:.2f}  exact {res['exact']:.3f}  attention-peak-on-object {res['peak']:.3f}"
        print(line, flush=True)
    res["seconds_per_epoch"] = float(np.mean(epoch_s))
    res["epochs"] = float(epochs)
    return res


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from anywhere: the repo root holds models/
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", choices=("digits", "shapes"), default="digits")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="captioner parameter")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--n-train", type=int, default=3000)
    ap.add_argument("--n-test", type=int, default=600)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--clip", type=float, default=5.0, help="max gradient norm (0 = off)")
    ap.add_argument("--eval-every", type=int, default=0, help="also evaluate every N epochs")
    ap.add_argument("--per-word", action="store_true", help="attention faithfulness per word")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0 = torch's default)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    params = dict(kv.split("=", 1) for kv in args.set)
    r = run(
        params,
        epochs=args.epochs,
        n_train=args.n_train,
        n_test=args.n_test,
        lr=args.lr,
        clip=args.clip,
        data=args.data,
        seed=args.seed,
        threads=args.threads,
        eval_every=args.eval_every,
        verbose=args.per_word,
        device=args.device,
    )
    ok = r["bleu4"] >= TARGET_BLEU4 and r["peak"] >= TARGET_PEAK
    print(
        f"captioner ({args.data}): BLEU-4 {r['bleu4']:.2f}, exact {r['exact']:.3f}, attention peak on the named "
        f"object {r['peak']:.3f} ({int(r['words'])} correct words checked), {r['seconds_per_epoch']:.1f} s/epoch, "
        f"{int(r['epochs'])} epochs{'  PASS' if ok else '  BELOW target'}"
    )
