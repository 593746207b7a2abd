"""Ruled lines: the long, thin lines of lined paper, found on the ink map and lifted off it, so that digits
written on or across them are boxed and read without them (the model never saw lined paper)."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .ink import Ink, components
from .levels import odd

MIN_RULES = 2  # lined paper has several lines: one long straight mark may be a digit's (a big 7's bar)
SPAN = 0.4  # a ruled line spans at least this share of the work copy's width...
THIN = 0.2  # ... and its box is at most this tall for its length (a line tilted up to about 10 degrees)
MAX_THICK = 3.0  # ... and at most this many work pixels thick (a sheet's print, not a pen's stroke)
UPRIGHT = 9  # work pixels: a mark at least this tall from top to bottom is no line (a digit's upright stroke)
LOW_FRAC = 0.15  # lines are looked for at this share of the strongest ink (as low as find_digits looks)


@dataclass
class Rules:
    """Where the ruled lines lie on the work copy and how thick they are."""
    mask: np.ndarray  # uint8 (H, W) of the work copy: 255 on the lines and a pixel or two around them
    thickness: int  # work pixels, the lines' median height per column


def _flat_marks(src: np.ndarray, binary: np.ndarray, low: int) -> tuple[np.ndarray, list]:
    """The marks found on src (an ink map) with lines' steps and dashes joined: (their labels, components)."""
    W = src.shape[1]
    # a tilted thin line breaks into short steps and a faint one into dashes: thickened by a pixel up and
    # down, a line's steps join into long runs, and averaged along the rows its dashes make one band (where
    # a digit's upright strokes fade)
    L = odd(max(15, W // 16))
    thick = cv2.dilate(binary, cv2.getStructuringElement(cv2.MORPH_RECT, (1, 3)))
    runs = cv2.morphologyEx(thick, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (L, 1)))
    along = cv2.blur(cv2.dilate(src, cv2.getStructuringElement(cv2.MORPH_RECT, (1, 3))), (L, 1))
    seg = cv2.max(runs, cv2.threshold(along, low, 255, cv2.THRESH_BINARY)[1])
    return components(cv2.dilate(seg, cv2.getStructuringElement(cv2.MORPH_RECT, (L, 1))))


def _thin(lab: np.ndarray, comps: list, binary: np.ndarray) -> dict[int, float]:
    """The thickness of each thin flat mark: the median over its columns of its ink pixels (the columns where
    digits cross a line are few; a pen's bold strokes lined up are thicker than a line)."""
    ink_on = binary > 0
    thin = {}
    for i, (x, y, w, h, _) in enumerate(comps):
        if h > THIN * w:
            continue
        cols = ((lab[y:y + h, x:x + w] == i + 1) & ink_on[y:y + h, x:x + w]).sum(axis=0)
        t = float(np.median(cols[cols > 0])) if cols.any() else 0.0
        if t <= MAX_THICK:
            thin[i] = t
    return thin


def find_rules(ink: Ink) -> Rules | None:
    """The ruled lines on an ink map, or None when fewer than MIN_RULES of them span the page."""
    H, W = ink.ink.shape
    if W < 60:
        return None
    low = max(ink.noise, int(LOW_FRAC * 255 * ink.strength))
    binary = cv2.threshold(ink.ink, low, 255, cv2.THRESH_BINARY)[1]
    lab, comps = _flat_marks(ink.ink, binary, low)
    if sum(1 for x, y, w, h, _ in comps if h <= THIN * w and w >= SPAN * W) < MIN_RULES:
        return None  # no lined paper (most images), known before any mark's thickness is measured
    thin = _thin(lab, comps, binary)
    spanning = [t for i, t in thin.items() if comps[i][2] >= SPAN * W]
    if len(spanning) < MIN_RULES:  # the long flat marks are too thick for ruled lines (a pen's strokes in a row)
        return None
    # lined paper: then every stretch of line is lifted, also those that break off where the light fades
    sel = np.zeros(len(comps) + 1, np.uint8)
    sel[[i + 1 for i in thin]] = 255
    mask = sel[lab]
    # and the line the digits sit on, which merges with their band: found again with what is thicker than a
    # line from top to bottom (the digits' upright strokes) taken off; only lines that span the page
    upright = cv2.morphologyEx(ink.ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, UPRIGHT)))
    flat = cv2.subtract(ink.ink, upright)
    flat_bin = cv2.threshold(flat, low, 255, cv2.THRESH_BINARY)[1]
    lab2, comps2 = _flat_marks(flat, flat_bin, low)
    thin2 = _thin(lab2, comps2, flat_bin)
    for i in thin2:
        if comps2[i][2] >= SPAN * W:  # drawn across the whole width: under bold digits it may break off
            ys, xs = np.nonzero(lab2 == i + 1)
            slope, y0 = np.polyfit(xs, ys, 1)
            tall = int(np.median(np.bincount(xs)[xs.min():xs.max() + 1]))
            cv2.line(mask, (0, round(y0)), (W - 1, round(y0 + slope * (W - 1))), 255, max(3, tall))
    return Rules(mask, max(1, round(float(np.median(spanning)))))


def lift(ink_map: np.ndarray, rules: Rules, scale: int = 1) -> np.ndarray:
    """The ink map with the ruled lines taken off. On the lines' bands each pixel keeps the more of two
    things: its ink less the lines' own darkness (a stroke along a line stays, a little lighter), and what a
    vertical opening leaves (a stroke crossing a line keeps all its ink).
    ink_map spans the work copy's width (or a band of its rows, rules.mask then cut alike), so that the
    digits are a minority of each line. scale: original pixels per work pixel when ink_map is cut from the
    original (the mask is enlarged to it)."""
    mask = rules.mask
    if scale != 1:
        mask = cv2.resize(mask, ink_map.shape[::-1], interpolation=cv2.INTER_NEAREST)
    on = mask > 0
    cols = on.any(axis=0)
    if not cols.any():
        return ink_map
    # the lines' darkness: each column's darkest ink on the bands, its median over the columns (digits
    # cross the lines in a minority of them)
    level = int(np.median(np.where(on, ink_map, 0).max(axis=0)[cols]))
    k = odd(rules.thickness * scale + 2)
    opened = cv2.morphologyEx(ink_map, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, k)))
    # less the lines' darkness, what is left of a darker stretch of line is a streak a pixel tall: opened away
    less = cv2.subtract(ink_map, np.full_like(ink_map, min(255, level + level // 4)))
    less = cv2.morphologyEx(less, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, 2 * scale)))
    lifted = cv2.max(opened, less)
    out = ink_map.copy()
    np.copyto(out, lifted, where=on)
    return out
