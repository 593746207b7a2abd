"""Write the app's example drawings: MNIST t10k digits drawn large on a white 900x300 sketch.

    python examples/make_examples.py [--data ../shared/data]

Writes examples/<digits>.png and examples/labels.json (so `python -m nextnum.evaluate --images examples`
scores them too). The t10k split is never used for training.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

NUMBERS = ["4072", "17", "385", "2026", "9", "61854"]
CANVAS_HW = (300, 900)  # the Draw tab's sketchpad


def draw(number: str, images: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = CANVAS_HW
    side = 190 if len(number) < 5 else 160  # digit height on the sketch
    gap = 12  # natural handwriting: digits close, not overlapping
    digits = []
    for ch in number:
        i = rng.choice(np.flatnonzero(labels == int(ch)))
        d = cv2.resize(images[i], (side, side), interpolation=cv2.INTER_CUBIC)
        cols = np.flatnonzero(d.max(0) > 60)  # trim side margins so digits sit like handwriting
        digits.append(d[:, cols[0]:cols[-1] + 1])
    total = sum(d.shape[1] for d in digits) + gap * (len(digits) - 1)
    ink = np.zeros((h, w), np.uint8)
    x, y = (w - total) // 2, (h - side) // 2
    for d in digits:
        dy = int(rng.integers(-12, 13))
        region = ink[y + dy:y + dy + side, x:x + d.shape[1]]
        np.maximum(region, d, out=region)
        x += d.shape[1] + gap
    return 255 - np.where(ink > 90, 255, 0).astype(np.uint8)  # crisp black strokes like the sketchpad's brush


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data", help="MNIST root (torchvision layout)")
    args = ap.parse_args()
    from torchvision.datasets import MNIST
    ds = MNIST(args.data, train=False)
    images, labels = ds.data.numpy(), ds.targets.numpy()
    out = Path(__file__).resolve().parent
    rng = np.random.default_rng(0)
    names = {}
    for number in NUMBERS:
        name = f"{number}.png"
        cv2.imwrite(str(out / name), draw(number, images, labels, rng), [cv2.IMWRITE_PNG_COMPRESSION, 9])
        names[name] = number
    (out / "labels.json").write_text(json.dumps(names, indent=1) + "\n")


if __name__ == "__main__":
    main()
