"""Probe reports made the way the trainer makes them: a real small model's ``forward_intermediates``
on one image, its declaration, the first image's arrays as numpy (shared by the probe view's tests
and ``probe_screenshots.py``)."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import torch

from explorer.engine import ProbeReport, gradcam
from explorer.engine.tasks import get_task
from models import build_model

__all__ = ["VOCAB", "CHARSET", "probe_report", "noise", "picture", "digits", "REPORTS"]

VOCAB = ["<pad>", "<start>", "<end>", "<unk>", "a", "red", "blue", "circle", "square", "on", "the", "left"]
CHARSET = list("0123456789")
CLASSES = ["circle", "square", "triangle"]


def probe_report(model, image: np.ndarray, *, text: str | None = None, labels=None) -> ProbeReport:  # noqa: ANN001
    """What the trainer sends: the first image's intermediates as numpy, with the declaration, and
    (given ``labels``) the Grad-CAM maps the trainer's probe adds."""
    h, w = image.shape[:2]
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0
    model.eval()
    with torch.no_grad():
        out, inter = model.forward_intermediates(x)
    info = {k: v.to_dict() for k, v in model.intermediate_info((h, w)).items()}
    output_info = model.output_info((h, w)).to_dict()
    arrays = {k: v[0].float().numpy().copy() for k, v in inter.items()}
    cam = gradcam.probe_gradcam(model, x, out, inter, labels) if labels is not None else None
    if cam is not None:
        arrays[gradcam.GRADCAM_KEY], info[gradcam.GRADCAM_KEY] = cam
    return ProbeReport(
        epoch=1,
        global_step=3,
        path="probe.png",
        image=image,
        probabilities=torch.softmax(out.float(), dim=-1)[0].numpy(),
        intermediates=arrays,
        text=text,
        info=info,
        output_info=output_info,
    )


def noise(h: int, w: int, c: int = 1, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)


def picture(h: int, w: int) -> np.ndarray:
    """A gray image with a bright disc and a square (something for the maps to show)."""
    img = np.full((h, w), 30, np.uint8)
    cv2.circle(img, (w // 3, h // 3), max(2, h // 5), 220, -1)
    cv2.rectangle(img, (w // 2, h // 2), (w - 3, h - 3), 150, -1)
    return img[..., None]


def digits(text: str, h: int, w: int) -> np.ndarray:
    img = np.zeros((h, w), np.uint8)
    cv2.putText(img, text, (2, h - 8), cv2.FONT_HERSHEY_SIMPLEX, h / 32, 255, 2)
    return img[..., None]


def cnn() -> tuple[ProbeReport, list[str]]:
    torch.manual_seed(0)
    net = build_model("cnn", in_channels=1, num_outputs=3, image_size=(32, 32), channels="8,16")
    return probe_report(net, picture(32, 32), labels=CLASSES), CLASSES


def rnn() -> tuple[ProbeReport, list[str]]:
    torch.manual_seed(0)
    net = build_model(
        "rnn", in_channels=1, num_outputs=3, image_size=(16, 16), cell="lstm", hidden_size=12, num_layers=2,
        bidirectional=True,
    )  # fmt: skip
    return probe_report(net, picture(16, 16), labels=CLASSES), CLASSES


def crnn() -> tuple[ProbeReport, list[str]]:
    torch.manual_seed(0)
    net = build_model("crnn", in_channels=1, num_outputs=len(CHARSET) + 1, image_size=(32, 96), head="ctc")
    r = probe_report(net, digits("3141", 32, 96), labels=CHARSET)
    return dataclasses.replace(r, text="3141"), CHARSET


def conv_rnn() -> tuple[ProbeReport, list[str]]:
    torch.manual_seed(0)
    net = build_model(
        "conv_rnn", in_channels=1, num_outputs=3, image_size=(16, 16), cell="lstm", hidden_channels="6", stem=0,
        step=4,
    )  # fmt: skip
    return probe_report(net, picture(16, 16), labels=CLASSES), CLASSES


def captioner() -> tuple[ProbeReport, list[str]]:
    """Words as the trainer decodes them: the declared ``tokens`` entry's ids in the vocabulary."""
    torch.manual_seed(0)
    net = build_model(
        "captioner", in_channels=1, num_outputs=len(VOCAB), image_size=(32, 32), channels="8,16,16", embed_dim=16,
        hidden_size=32, attention_dim=16,
    )  # fmt: skip
    r = probe_report(net, picture(32, 32), labels=VOCAB)
    tok = next(k for k, d in r.info.items() if d["kind"] == "tokens")
    words = [VOCAB[int(i)] for i in r.intermediates[tok]]
    x = torch.from_numpy(picture(32, 32)).permute(2, 0, 1)[None].float() / 255.0
    cands = get_task("caption", {"max_len": 8}).probe_candidates(net.eval(), x, VOCAB)  # as the trainer's probe
    return dataclasses.replace(r, tokens=words, text=" ".join(words), candidates=cands), VOCAB


def patch_rnn() -> tuple[ProbeReport, list[str]]:
    torch.manual_seed(0)
    net = build_model("patch_rnn", in_channels=1, num_outputs=3, image_size=(32, 32), tile=8, hidden_size=16)
    return probe_report(net, picture(32, 32), labels=CLASSES), CLASSES


def backbone() -> tuple[ProbeReport, list[str]]:
    torch.manual_seed(0)
    net = build_model("backbone", in_channels=3, num_outputs=3, image_size=(32, 32), arch="resnet18")
    return probe_report(net, np.repeat(picture(32, 32), 3, axis=2), labels=CLASSES), CLASSES


REPORTS = {
    "cnn": cnn,
    "rnn": rnn,
    "crnn": crnn,
    "conv_rnn": conv_rnn,
    "captioner": captioner,
    "patch_rnn": patch_rnn,
    "backbone": backbone,
}
