"""The marks on an ink map grouped into the digits: specks, stray marks and the desk or the sheet's edge left
out, lighter digits looked for again at lower thresholds, and a lone dot told from a digit."""
from __future__ import annotations

import cv2
import numpy as np

from .ink import Comp, Ink, components, digit_strength
from .sheet import border_contact, lies_along

DOT_SOLIDITY = 0.9  # one mark at least this convex, 0.75-1.33 times as wide as tall and without a hole is a dot
# (a tap on the sketchpad), not a digit: the solid single marks among bench/realsets.py's seed-0 1,200 images
# are all '1's at most 0.3 times as wide as tall, and brush dots of radius 7-40 px measure 0.93-0.98
CORE_FRACS = (0.6, 0.7, 0.8)  # ... looked at again where the ink is these shares of its darkest or darker (a
HOLE_FRAC = 0.01  # soft loop's paler middle opens at one of them), a hole of this share of its pixels is a digit's
MIN_SPECK = 4  # work-copy components smaller than this many pixels are specks...
SPECK_FRAC = 0.04  # ... and so are those smaller than this share of the digits' largest component
MIN_SEED_H = 5  # digits are looked for from a component at least this tall (work pixels)
SECOND_FRAC = 0.15  # around the digits found at the first threshold (Ink.thresh), this share of their own
# strength (a pencil digit beside inked ones is a third as dark or more)
LOW_FRAC = 0.25  # where nothing or one short mark is found: this share of the strongest ink, and the digits
TALLER = 1.5  # found there taken when this many times as tall as that mark


def group(comps: list[Comp], hw: tuple[int, int], strict: bool = False,
          contact: np.ndarray | None = None) -> tuple[list[int], int]:
    """Pick the digits among the components: start from the largest and grow, in reading direction,
    over components close to the box so far. Returns (indices used, stray marks ignored).

    Marks that reach the image border (a desk around the sheet, its edge, a shadow's rim) and flat
    streaks are not used to start from unless nothing else is there (strict: then nothing is found);
    big marks at the border are never taken in, nor are specks. contact (from border_contact) tells a
    digit that touches the border (a stroke's width of contact) from a wedge of desk lying along it."""
    H, W = hw

    def edge(c: Comp) -> bool:
        x, y, w, h, _ = c
        return x == 0 or y == 0 or x + w == W or y + h == H

    def big_edge(i: int) -> bool:  # lies along the border and spans half the image: a desk, not a digit
        x, y, w, h, _ = comps[i]
        along = contact is None or lies_along(comps[i], int(contact[i + 1]), hw)
        return edge(comps[i]) and (w > 0.5 * W or h > 0.5 * H) and along

    live = [i for i, c in enumerate(comps) if c[4] >= MIN_SPECK]
    if not live:
        return [], 0
    # a seed is not at the border, not a flat streak (a shadow's rim, a ruled line, the sheet's edge), not a dot
    seeds = [i for i in live if not edge(comps[i]) and comps[i][2] <= 3 * comps[i][3] and comps[i][3] >= MIN_SEED_H]
    seeds = seeds or ([] if strict else live)
    if not seeds:
        return [], 0
    seed = max(seeds, key=lambda i: comps[i][4])
    x, y, w, h, area = comps[seed]
    live = [i for i in live if comps[i][4] >= SPECK_FRAC * area]
    box = [x, y, x + w, y + h]
    used = {seed}
    grew = True
    while grew:
        grew = False
        bh = box[3] - box[1]
        for i in live:
            if i in used:
                continue
            x, y, w, h, _ = comps[i]
            if (h > 2.5 * bh and w > 2.5 * bh) or big_edge(i):  # not a digit next to these
                continue
            if max(w, h) > 1.5 * bh and (min(w, h) < 0.25 * bh or comps[i][4] < 0.08 * bh * max(w, h)):
                continue  # a long thin streak (a ruled line, the sheet's edge, a shadow's rim), no piece of a digit
            if edge(comps[i]) and (comps[i][4] > 3 * area or h > 1.5 * bh or w > 1.5 * bh or (
                    comps[i][4] > 0.45 * w * h if contact is None else lies_along(comps[i], int(contact[i + 1]), hw))):
                continue  # a desk corner or sheet edge beside the digits, not a digit cut by the border
            gx = max(0, x - box[2], box[0] - (x + w))
            gy = max(0, y - box[3], box[1] - (y + h))
            overlap = min(box[3], y + h) - max(box[1], y)  # vertical overlap, px
            if gx <= 1.2 * bh and gy <= 0.35 * bh and (overlap > 0.3 * min(h, bh) or gx == 0):
                box = [min(box[0], x), min(box[1], y), max(box[2], x + w), max(box[3], y + h)]
                used.add(i)
                grew = True
    return sorted(used), sum(1 for i in live if i not in used and not big_edge(i))


def _holed(mark: np.ndarray, min_px: float = 0) -> bool:
    """True if the 0/1 uint8 mask has a hole of more than min_px pixels."""
    contours, hier = cv2.findContours(mark, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    return hier is not None and any(hier[0][i, 3] >= 0 and cv2.contourArea(c) >= min_px
                                    for i, c in enumerate(contours))


def is_dot(lab: np.ndarray, comps: list[Comp], used: list[int], ink: np.ndarray | None = None) -> bool:
    """True if the digits found are one round, solid mark without a hole (area over convex-hull area >=
    DOT_SOLIDITY), also where the ink map (if given) is darkest: a light, soft "9" or "0" whose loop is
    only paler than its stroke shows its hole there, a dot does not."""
    if len(used) != 1:
        return False
    x, y, w, h, area = comps[used[0]]
    if not 0.75 <= w / h <= 1.33:  # round: a marker-bold "1" or "9" is narrower
        return False
    mark = (lab[y:y + h, x:x + w] == used[0] + 1).astype(np.uint8)
    if _holed(mark):  # a bold "0" or "8", not a dot
        return False
    if ink is not None:
        level = ink[y:y + h, x:x + w]
        dark = np.percentile(level[mark > 0], 95)
        if any(_holed(mark & (level >= f * dark).astype(np.uint8), HOLE_FRAC * area) for f in CORE_FRACS):
            return False
    hull = cv2.convexHull(cv2.findNonZero(mark))
    # the hull runs through pixel centres: half its perimeter (+1) more makes it comparable with a pixel count
    return area >= DOT_SOLIDITY * (cv2.contourArea(hull) + cv2.arcLength(hull, True) / 2 + 1)


def ink_box(comps: list[Comp], used: list[int]) -> tuple[int, int, int, int]:
    return (min(comps[i][0] for i in used), min(comps[i][1] for i in used),
            max(comps[i][0] + comps[i][2] for i in used), max(comps[i][1] + comps[i][3] for i in used))


def _holds(outer: tuple[int, int, int, int], inner: tuple[int, int, int, int]) -> bool:
    """True if box outer (x0, y0, x1, y1) covers most of box inner: its width and height at least 90%."""
    w = min(outer[2], inner[2]) - max(outer[0], inner[0])
    h = min(outer[3], inner[3]) - max(outer[1], inner[1])
    return w >= 0.9 * (inner[2] - inner[0]) and h >= 0.9 * (inner[3] - inner[1])


def _keeps(outer: tuple[int, int, int, int], comps: list[Comp], used: list[int]) -> bool:
    """True if box outer holds at least 90% of the ink of components `used` (a component counts when outer
    holds its box): a second look may leave out a speck the first took in, not a digit."""
    held = sum(c[4] for c in (comps[i] for i in used) if _holds(outer, (c[0], c[1], c[0] + c[2], c[1] + c[3])))
    return held >= 0.9 * sum(comps[i][4] for i in used)


def find_digits(ink: Ink) -> tuple[np.ndarray, list[Comp], list[int], int, int]:
    """Threshold the ink map and group its components into the digits: (labels, components, indices of
    the digits' components, stray marks ignored, threshold used).

    The first threshold follows the strongest ink anywhere, which may be a desk's edge or a heavy
    mark rather than the digits: thin, faint or blurred digits then break into pieces. So the digits
    found are looked at again, in their own band of rows, with a threshold from their own strength."""
    lab, comps = components(cv2.threshold(ink.ink, ink.thresh, 255, cv2.THRESH_BINARY)[1])
    contact = border_contact(lab, len(comps))
    used, stray = group(comps, ink.ink.shape, strict=True, contact=contact)
    if not used:  # only marks at the border or streaks: the digits may be far fainter, look lower
        lower = _lower(ink)
        if lower[2]:
            return lower
        used, stray = group(comps, ink.ink.shape, contact=contact)
    if not used:
        return lab, comps, used, stray, ink.thresh
    thresh = ink.thresh
    if len(used) == 1:  # one mark alone: the strongest ink may be a slip of the pen beside a lighter digit
        lab, comps, used, stray, thresh = _taller_lower(ink, lab, comps, used, stray)
    return _second_look(ink, lab, comps, used, stray, thresh)


def _taller_lower(ink: Ink, lab: np.ndarray, comps: list[Comp], used: list[int],
                  stray: int) -> tuple[np.ndarray, list[Comp], list[int], int, int]:
    """The digits found at the threshold for lighter ink (LOW_FRAC of the strongest) when they stand
    TALLER times as tall as the one mark found first (a dash darker than a pencil digit) and their ink is
    twice the paper's noise level or more, else what was found."""
    lab2, comps2, used2, stray2, low = _lower(ink)
    if used2:
        box = ink_box(comps2, used2)
        # ink, not the paper's grain: a shadow's speckled rim in a photo rises above `low` too, but no further
        if box[3] - box[1] >= TALLER * comps[used[0]][3] and digit_strength(ink.ink, lab2, used2, box) >= 2 * ink.noise:
            return lab2, comps2, used2, stray2, low
    return lab, comps, used, stray, ink.thresh


def _lower(ink: Ink) -> tuple[np.ndarray, list[Comp], list[int], int, int]:
    """The digits found at the threshold for lighter ink, LOW_FRAC of the strongest (strict grouping: none
    started from the border): (labels, components, digits' indices, stray marks, threshold)."""
    low = max(ink.noise, int(LOW_FRAC * 255 * ink.strength))
    lab, comps = components(cv2.threshold(ink.ink, low, 255, cv2.THRESH_BINARY)[1])
    used, stray = group(comps, ink.ink.shape, strict=True, contact=border_contact(lab, len(comps)))
    return lab, comps, used, stray, low


def _second_look(ink: Ink, lab: np.ndarray, comps: list[Comp], used: list[int], stray: int,
                 thresh: int) -> tuple[np.ndarray, list[Comp], list[int], int, int]:
    """The digits found, looked at again in their own band of rows at a threshold from their own strength."""
    x0, y0, x1, y1 = ink_box(comps, used)
    own = digit_strength(ink.ink, lab, used, (x0, y0, x1, y1))
    t2 = max(ink.noise, int(SECOND_FRAC * own))
    if t2 >= thresh:
        return lab, comps, used, stray, thresh
    H = ink.ink.shape[0]
    pad = max(y1 - y0, H // 10)  # the digits' rows and more: what was found may be a piece of a digit
    b0, b1 = max(0, y0 - pad), min(H, y1 + pad)
    lab2, comps2 = components(cv2.threshold(ink.ink[b0:b1], t2, 255, cv2.THRESH_BINARY)[1])
    contact2 = border_contact(lab2, len(comps2), top=b0 == 0, bottom=b1 == H)
    comps2 = [(x, y + b0, w, h, a) for x, y, w, h, a in comps2]
    used2, stray2 = group(comps2, ink.ink.shape, contact=contact2)
    if not used2 or not _keeps(ink_box(comps2, used2), comps, used):  # a second look that loses what the first
        return lab, comps, used, stray, thresh  # found (a digit now joined to the border) is not taken
    full = np.zeros_like(lab)
    full[b0:b1] = lab2
    return full, comps2, used2, stray2, t2
