"""Acceptance check: does a family's default reach its target on sklearn's digits?

Not a test: a script that runs the engine's bare training recipe so the figures in
the model families' brief can be reproduced::

    python tests/bench/digits_check.py cnn
    python tests/bench/digits_check.py rnn --set cell=gru
    python tests/bench/digits_check.py backbone --set arch=resnet18 --epochs 5
    python tests/bench/digits_check.py patch_rnn
    python tests/bench/digits_check.py conv_rnn --set cell=lstm

Recipe: ``load_digits`` (8x8, values 0..16) scaled to 0..255 uint8, upscaled to 32x32
with ``cv2.INTER_LINEAR``; stratified 75/25 split, seed 0; one channel standardised
with the training set's mean/std; Adam lr=1e-3 with a one-cycle schedule (max_lr=lr)
over all steps; batch size 32; 20 epochs; test accuracy after the last epoch.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

TARGETS = {"cnn": 0.98, "rnn": 0.95, "crnn": 0.97, "patch_rnn": 0.95, "conv_rnn": 0.95}


def load_digits_32(size: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test); x as uint8 (N, size, size)."""
    import cv2
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    imgs = np.round(d.images * 255.0 / 16.0).clip(0, 255).astype(np.uint8)  # (N, 8, 8)
    imgs = np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_LINEAR) for im in imgs])
    x_tr, x_te, y_tr, y_te = train_test_split(imgs, d.target, test_size=0.25, stratify=d.target, random_state=0)
    return x_tr, y_tr, x_te, y_te


def run(
    family: str,
    params: dict[str, str],
    *,
    epochs: int = 20,
    batch_size: int = 32,
    lr: float = 1e-3,
    seed: int = 0,
    threads: int = 1,
    device: str = "cpu",
) -> dict[str, float]:
    import torch
    from torch.nn import functional as F

    from models import build_model

    if threads > 0:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    x_tr, y_tr, x_te, y_te = load_digits_32()
    tr = torch.from_numpy(x_tr).float().div(255).unsqueeze(1)  # (N, 1, 32, 32)
    te = torch.from_numpy(x_te).float().div(255).unsqueeze(1)
    mean, std = tr.mean(dim=(0, 2, 3), keepdim=True), tr.std(dim=(0, 2, 3), keepdim=True)
    tr, te = (tr - mean) / std, (te - mean) / std
    ytr, yte = torch.from_numpy(y_tr).long(), torch.from_numpy(y_te).long()
    tr, te, ytr, yte = tr.to(device), te.to(device), ytr.to(device), yte.to(device)

    model = build_model(family, in_channels=1, num_outputs=10, image_size=(32, 32), **params).to(device)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    steps_per_epoch = (len(tr) + batch_size - 1) // batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(seed)

    def accuracy() -> float:
        model.eval()
        with torch.no_grad():
            pred = torch.cat([model(te[i : i + 256]).argmax(1) for i in range(0, len(te), 256)])
        return (pred == yte).float().mean().item()

    epoch_s = []
    for ep in range(epochs):
        model.train()
        t0 = time.perf_counter()
        order = torch.randperm(len(tr), generator=gen).to(device)
        total = 0.0
        for i in range(0, len(tr), batch_size):
            idx = order[i : i + batch_size]
            loss = F.cross_entropy(model(tr[idx]), ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        epoch_s.append(time.perf_counter() - t0)
        print(
            f"  epoch {ep + 1:2d}  loss {total / len(tr):.4f}  test acc {accuracy():.4f}  {epoch_s[-1]:.1f} s",
            flush=True,
        )
    return {"accuracy": accuracy(), "seconds_per_epoch": float(np.mean(epoch_s))}


if __name__ == "__main__":
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from anywhere: the repo root holds models/
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("family", help="cnn, rnn, crnn, backbone ...")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="family parameter")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0 = torch's default)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    params = dict(kv.split("=", 1) for kv in args.set)
    print(f"{args.family} {params} epochs={args.epochs} seed={args.seed}", flush=True)
    res = run(args.family, params, epochs=args.epochs, seed=args.seed, threads=args.threads, device=args.device)
    target = TARGETS.get(args.family)
    verdict = "" if target is None else ("  PASS" if res["accuracy"] >= target else f"  BELOW target {target:.2f}")
    print(f"{args.family}: test accuracy {res['accuracy']:.4f}, {res['seconds_per_epoch']:.2f} s/epoch{verdict}")
