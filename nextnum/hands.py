"""Other hands made from MNIST's own digits: ones with a flag (and sometimes a foot), crossed sevens.

MNIST was written by one handwriting culture: its ones are mostly bare strokes and its sevens uncrossed,
so a flagged "1" reads "7". Drawing the flag, foot or bar onto the training split's own 1s and 7s, with
the digit's own stroke width and ink, teaches the other forms without another source of digits.
"""
from __future__ import annotations

import cv2
import numpy as np

from .config import LONG_FLAG

INK = 80  # a pixel of a 0-255 MNIST digit at least this bright is ink


def _stroke(img: np.ndarray) -> tuple[int, int]:
    """(stroke width in px, the ink's 90th-percentile level) of a 0-255 digit."""
    ink = img > INK
    dist = cv2.distanceTransform(ink.astype(np.uint8), cv2.DIST_L2, 3)
    # the distance to the paper peaks at half the stroke's width on its centre line; cv2.line draws about a
    # pixel wider than its thickness
    width = max(1, int(round(2 * float(np.percentile(dist[ink], 75)))) - 1)
    return width, int(np.percentile(img[ink], 90))


def flag_one(img: np.ndarray, rng: np.random.Generator, foot_p: float = 0.3, short_p: float = 0.5,
             long: tuple[float, float] = LONG_FLAG) -> np.ndarray:
    """A 28x28 0-255 "1" with a flag from its top down to the left (short_p: a short flat one; else a long
    one reaching `long` of the height), and with foot_p a foot under it."""
    out = np.zeros_like(img)  # the new strokes, laid over the digit at the end
    ys, xs = np.nonzero(img > INK)
    width, level = _stroke(img)
    top, bottom = int(ys.min()), int(ys.max())
    height = bottom - top + 1
    xt = float(np.median(xs[ys <= top + 1]))
    # a long flag 35-60 degrees below the horizontal, steeper than a seven's top bar (long flags at 10-35
    # degrees taught MNIST's own sevens to read "1"); or, with short_p, a short flat one (15-35 degrees,
    # reaching a fifth to three tenths of the height left: a seven's bar reaches half or more; shorter, it is
    # lost in the stroke's own width, and drawn flat flags then read "7"), as many fonts and hands write it;
    # either at least 20 degrees flatter than a stem leaning the same way
    third = top + height // 3  # the stem's upper third, where the flag leaves it
    xm = float(np.median(xs[np.abs(ys - third) <= 1]))
    lean = np.degrees(np.arctan2(third - top, max(xt - xm, 1e-6)))  # the stem's angle below the horizontal, leftward
    short = short_p > 0 and rng.random() < short_p
    want = rng.uniform(15, 35) if short else rng.uniform(35, 60)
    angle = np.deg2rad(max(10.0 if short else 20.0, min(want, lean - 20)))
    length = (rng.uniform(0.2, 0.3) / np.cos(angle) if short else rng.uniform(*long)) * height
    end = (xt - length * np.cos(angle), top + length * np.sin(angle))
    cv2.line(out, (round(xt), top), (round(end[0]), round(end[1])), level, width, cv2.LINE_AA)
    if rng.random() < foot_p:
        xb, half = float(np.median(xs[ys >= bottom - 1])), rng.uniform(0.15, 0.25) * height
        cv2.line(out, (round(xb - half), bottom), (round(xb + half), bottom), level, width, cv2.LINE_AA)
    return np.maximum(img, out)


def cross_seven(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 28x28 0-255 "7" with a short bar across its stem, about the middle of its height."""
    out = np.zeros_like(img)
    ys, xs = np.nonzero(img > INK)
    width, level = _stroke(img)
    top, bottom = int(ys.min()), int(ys.max())
    y = int(round(top + rng.uniform(0.45, 0.6) * (bottom - top)))
    row = xs[np.abs(ys - y) <= 1]
    if row.size == 0:
        return img.copy()
    xc, half = float(np.median(row)), rng.uniform(0.12, 0.2) * (bottom - top)
    cv2.line(out, (round(xc - half), y), (round(xc + half), y), level, width, cv2.LINE_AA)
    return np.maximum(img, out)


def variants(images: np.ndarray, labels: np.ndarray, share: float, seed: int = 0,
             flag_long: tuple[float, float] = LONG_FLAG) -> tuple[np.ndarray, np.ndarray]:
    """New digits from a share of the 1s (flagged, some footed; long flags reaching flag_long of the height)
    and of the 7s (crossed): (N', 28, 28) uint8 images and their labels. Seeded: the same digits give the
    same variants."""
    rng = np.random.default_rng(seed)
    out, out_labels = [], []
    for digit, make in ((1, lambda img, r: flag_one(img, r, long=flag_long)), (7, cross_seven)):
        idx = np.flatnonzero(labels == digit)
        for i in rng.choice(idx, size=int(round(share * len(idx))), replace=False) if len(idx) else []:
            out.append(make(images[i], rng))
            out_labels.append(digit)
    if not out:
        return np.zeros((0,) + images.shape[1:], np.uint8), np.zeros(0, np.int64)
    return np.stack(out).astype(np.uint8), np.array(out_labels, np.int64)
