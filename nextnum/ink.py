"""The ink map of a grey work copy: polarity, the paper's light divided out, the ink's strength, noise and
first threshold; its marks as components, and the digits' strength on it.

preprocess.py calls polarity -> normalise, then digits.find_digits; the canvas is cut from what they find.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .levels import cum_hist, odd, pct
from .sheet import off_sheet

FIRST_FRAC = 0.5  # ink threshold: this share of the strongest ink (digits.find_digits then looks lower)


@dataclass
class Ink:
    """The work copy's ink map and what is needed to compute the same map elsewhere."""
    ink: np.ndarray  # uint8: 255 * (paper - pixel) / paper, dark-ink polarity
    light: bool  # the ink was lighter than its background (the image was inverted first)
    bg: np.ndarray | None  # paper level per pixel (None: uniform, see paper)
    paper: int  # the uniform paper level, or the floor under which bg is not trusted
    strength: float  # 0-1: how much darker than the paper the strongest ink is
    thresh: int  # ink threshold on the 0-255 map
    contrast: float  # grey levels between typical paper and the strongest ink
    noise: int  # ink values below this are paper texture and sensor noise


def polarity(gray: np.ndarray) -> bool:
    """True if the ink is lighter than its background (chalk, white on black, an inverted scan).

    Within any small window the background is the majority, so the window's mean sits nearer its
    background end: for dark ink, max - mean < mean - min. Summed over all windows this is decided by
    the ink; slow light changes (mean halfway) and the edges of a desk or a shadow (either way about as
    often) cancel out. On bench/realsets.py's seed-0 sets (1,200 images, each also inverted) a 13 px
    window on the work copy called none of the 1,200 dark-ink images light and missed 8 of the 600
    inverted photos (0 of the sketches); wider windows let the sheet's corners in (3 photos wrong at 17)."""
    k = odd(max(3, min(13, min(gray.shape) // 3)))
    kern = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    mx, mn, mean = cv2.dilate(gray, kern), cv2.erode(gray, kern), cv2.blur(gray, (k, k))
    # sum(max + min - 2 mean) without int overflow: (max - mean) - (mean - min), both saturating >= 0
    up, down = cv2.subtract(mx, mean), cv2.subtract(mean, mn)
    return float(cv2.sumElems(up)[0] - cv2.sumElems(down)[0]) > 0.2 * gray.size


def normalise(g: np.ndarray, light: bool = False) -> Ink:
    """Ink map of a work copy with dark ink (inverted already if `light`): 0 on the paper, 255 where
    the ink is black, whatever the lighting."""
    # paper level: a grey closing removes every dark mark narrower than k and keeps large regions
    # (a desk around the sheet, a shadow) as they are, so those are not taken for ink
    k = odd(max(15, max(g.shape) // 10))
    bg = cv2.morphologyEx(g, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    cum = cum_hist(bg)
    p5, p50, p95 = pct(cum, 5), pct(cum, 50), pct(cum, 95)
    desk = None
    if p95 - p5 <= 12:  # even light (a sketch, a scan): one paper level, so big blobs of ink stay ink
        paper, bgmap = max(p50, 1), None
    else:
        # where the local paper level is darker than this (a desk, deep shadow) nothing is read:
        # divided by so little light, noise and texture would look like ink
        paper, bgmap = max(1, int(0.3 * p95)), bg
        desk = off_sheet(g, k)
        if desk is not None:  # nor on the desk around the sheet, however bright it is lit
            bgmap = bg.copy()
            bgmap[desk] = 0
    ink = ink_of(g, bgmap, paper)
    icum = cum_hist(ink)
    n_top = max(10.0, 5e-4 * ink.size)
    strength = int(np.searchsorted(icum, icum[-1] - n_top)) / 255  # the n_top-th strongest ink pixel
    # paper texture and sensor noise: the paper's ink values sit below the paper level's local maximum
    # by about the noise (a desk or shadow may fill half the frame, so the median is the safe statistic;
    # a desk found is not counted: nothing is read there)
    if desk is not None:
        icum = cum_hist(ink, np.uint8(~desk) * 255)
    noise = 2 * pct(icum, 50) + 10
    thresh = int(max(FIRST_FRAC * strength * 255, min(noise, 0.7 * strength * 255)))
    return Ink(ink, light, bgmap, paper, strength, thresh, strength * p95, noise)


def ink_of(g: np.ndarray, bg: np.ndarray | None, paper: int) -> np.ndarray:
    """255 * (paper - g) / paper, with bg the paper level per pixel (None: `paper` everywhere) and
    nothing where bg is darker than `paper`."""
    if bg is None:
        return cv2.subtract(np.full_like(g, 255), cv2.divide(g, np.full_like(g, paper), scale=255))
    out = cv2.subtract(np.full_like(g, 255), cv2.divide(g, cv2.max(bg, np.full_like(bg, paper)), scale=255))
    out[bg < paper] = 0
    return out


Comp = tuple[int, int, int, int, int]  # x, y, w, h, area on the work copy


def components(mask: np.ndarray) -> tuple[np.ndarray, list[Comp]]:
    """Labels and (x, y, w, h, area) of the 8-connected components of a binary mask (label i+1 = comps[i])."""
    # 16-bit labels (a work copy has far fewer than 65,536 components) take OpenCV's fast single-pass path
    n, lab, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8, ltype=cv2.CV_16U)
    return lab, [tuple(r) for r in stats[1:n, :5].tolist()]


def digit_strength(ink: np.ndarray, lab: np.ndarray, used: list[int], box: tuple[int, int, int, int]) -> float:
    """The digits' ink strength on the 0-255 ink map: the 90th percentile over their pixels."""
    x0, y0, x1, y1 = box
    sub = lab[y0:y1, x0:x1]
    sel = np.zeros(max(int(sub.max(initial=0)), max(used, default=0) + 1) + 1, bool)
    sel[[i + 1 for i in used]] = True
    vals = ink[y0:y1, x0:x1][sel[sub]]
    return percentile90(vals) if vals.size else 255.0


def percentile90(vals: np.ndarray) -> float:
    """np.percentile(vals, 90), the same float (linear between the two order statistics around 0.9 (n - 1)),
    from one partial sort: numpy's general path costs more than the sort on the few hundred pixels of a digit."""
    pos = (vals.size - 1) * 0.9
    lo = int(pos)
    hi = min(lo + 1, vals.size - 1)
    part = np.partition(vals, (lo, hi)) if hi > lo else np.partition(vals, lo)
    a, b, t = float(part[lo]), float(part[hi]), pos - lo
    return b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t
