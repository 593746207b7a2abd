"""The desk around a photographed sheet of paper: where nothing is read, however brightly it is lit, and which
marks at the image's border lie along it as a desk does."""
from __future__ import annotations

import cv2
import numpy as np

from .levels import cum_hist, odd, pct

DESK_AREA = 0.03  # a desk around the sheet covers at least this share of the work copy...
DESK_LEVEL = 0.6  # ... and its median is at most this share of the sheet's...
DESK_STEP = 0.4  # ... and across its rim (3 px at half size) the grey level changes by this share of their difference


def off_sheet(g: np.ndarray, k: int) -> np.ndarray | None:
    """Where the desk around a sheet of paper is (bool mask), or None when there is no such desk.

    The sheet is the bright side of the work copy (Otsu), its ink closed over; the desk is what of the dark side
    reaches the image border, grown over the sheet's blurred edge. Only a desk clearly darker than the paper
    counts (its median at most DESK_LEVEL of the sheet's) and with a sharp rim, so the dim half of a sheet lit
    from one side or a shadow is not one. The local paper level (a grey closing) cannot tell these apart: the
    desk's own texture divided by its own level, and its strip along the sheet where the closing bleeds the
    paper's light, read as ink (bench/realsets.py photos, seed 0: 1 in 8 of them). A broad shadow over the sheet's
    corner or edge joins the desk on the dark side, but lies within the hull of the sheet's bright part: it is
    given back to the sheet. Looked for at half the work copy's size: a desk is large, and this costs a quarter
    as much."""
    h, w = g.shape
    g = cv2.resize(g, (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA)
    _, bright = cv2.threshold(g, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    if min(bright[0].min(), bright[-1].min(), bright[:, 0].min(), bright[:, -1].min()) == 255:
        return None  # bright all round: the closing below keeps it so, and nothing dark reaches the border
    kf = odd(k / 4)  # marks this narrow: the ink on the sheet, not a desk (a wider closing fills the desk's corners)
    sheet = cv2.morphologyEx(bright, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (kf, kf)),
                             borderType=cv2.BORDER_REPLICATE)
    n, lab = cv2.connectedComponents(cv2.bitwise_not(sheet), connectivity=4)
    if n < 2:
        return None
    sel = np.zeros(n, np.uint8)
    sel[np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]])] = 1
    sel[0] = 0  # the sheet
    desk = sel[lab]
    if desk.mean() < DESK_AREA:
        return None
    paper, below = pct(cum_hist(g, bright), 50), pct(cum_hist(g, desk), 50)
    if below > DESK_LEVEL * paper:  # the dim side of uneven light (most pages that are not photos)
        return None
    # the sheet's edge is a step: across a few pixels of its rim the grey level spans most of the paper-desk
    # difference, where the edge of a shadow or of the light's fall-off spans a little of it
    k3 = np.ones((3, 3), np.uint8)
    rim = cv2.subtract(cv2.dilate(desk, k3), desk)
    rim[[0, -1]], rim[:, [0, -1]] = 0, 0
    step = cv2.morphologyEx(g, cv2.MORPH_GRADIENT, k3)[rim > 0]
    if step.size == 0 or np.median(step) < DESK_STEP * (paper - below):
        return None
    # a sheet is convex: a shadow over its corner or edge joins the desk on the dark side, but lies within the
    # hull of the sheet's bright part, and is broad (the slivers of blurred edge there are the desk's rim)
    pts = cv2.findNonZero(cv2.bitwise_and(sheet, np.uint8(1 - desk) * 255))
    if pts is not None:
        hull = np.zeros_like(desk)
        cv2.fillConvexPoly(hull, _cornered(cv2.convexHull(pts), g.shape), 1)
        shade = cv2.morphologyEx(cv2.bitwise_and(desk, hull), cv2.MORPH_OPEN,
                                 cv2.getStructuringElement(cv2.MORPH_RECT, (kf, kf)))
        desk = cv2.bitwise_and(desk, 1 - shade)
    return cv2.resize(cv2.dilate(desk, k3), (w, h), interpolation=cv2.INTER_NEAREST) > 0


def _cornered(hull: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """A sheet's hull with a corner the shadow cut off put back: where the hull is a quadrilateral less one
    corner (five sides, one short), the two sides beside the short one meet at the corner."""
    poly = cv2.approxPolyDP(hull, 0.02 * cv2.arcLength(hull, True), True).reshape(-1, 2).astype(np.float64)
    if len(poly) != 5:
        return hull
    side = np.linalg.norm(np.roll(poly, -1, 0) - poly, axis=1)  # side i runs from corner i to corner i + 1
    i = int(np.argmin(side))
    if side[i] > 0.75 * np.median(side):
        return hull
    a0, a1 = poly[i - 1], poly[i]  # the side before the short one...
    b0, b1 = poly[(i + 1) % 5], poly[(i + 2) % 5]  # ... and the one after it
    d, e = a1 - a0, b1 - b0
    den = d[0] * e[1] - d[1] * e[0]
    if abs(den) < 1e-9:
        return hull
    t = ((b0[0] - a0[0]) * e[1] - (b0[1] - a0[1]) * e[0]) / den
    corner = a0 + t * d
    h, w = hw
    u, v = a1 - corner, b0 - corner
    cut = abs(u[0] * v[1] - u[1] * v[0]) / 2  # the corner put back: a triangle
    if t < 1 or cut > 0.2 * cv2.contourArea(hull) or not (-0.1 * w <= corner[0] <= 1.1 * w and
                                                         -0.1 * h <= corner[1] <= 1.1 * h):
        return hull
    quad = [poly[j] for j in range(5) if j not in (i, (i + 1) % 5)] + [corner]  # the hull puts them in order
    return cv2.convexHull(np.round(np.array(quad)).astype(np.int32))


def border_contact(lab: np.ndarray, n: int, top: bool = True, bottom: bool = True) -> np.ndarray:
    """(n + 1,) how many pixels of each label lie on the image border (top/bottom: whether the label
    image's first/last row is the image's border, not the edge of a band cut from it)."""
    rows = [lab[:, 0], lab[:, -1]] + ([lab[0]] if top else []) + ([lab[-1]] if bottom else [])
    return np.bincount(np.concatenate(rows), minlength=n + 1)


def lies_along(c: tuple[int, int, int, int, int], contact: int, hw: tuple[int, int]) -> bool:
    """True if a mark at the border lies along it as a desk does, not as a digit the border cuts: its contact
    (pixels on the border) is a quarter of its length along the border or more for a sliver along it, half for
    a flat piece, four fifths for a solid wedge (a marker-bold digit is solid too, but round where it meets the
    border); a small piece lies along it if most of its length is on it. A digit drawn to the pad's edge
    touches it with a stroke's end or a curve (a "6"'s bottom), or lies along it with a bar (a "5"'s top) that
    is thin beside the digit's height and not solid."""
    x, y, w, h, area = c
    H, W = hw
    side, end = x == 0 or x + w == W, y == 0 or y + h == H  # on the left or right border; the top or bottom
    # its length along the border (in a corner, along the longer side) and its depth away from it
    length, depth = (max(w, h), min(w, h)) if side and end else (h, w) if side else (w, h)
    if depth <= 0.15 * length:  # a sliver (the desk between a sheet's edge and the frame's, often slanted)
        return contact >= 0.25 * length
    if max(w, h) < 0.1 * min(H, W):  # a small piece: along the border if most of it is on it
        return contact > 0.6 * max(w, h)
    if contact < 0.5 * length or depth > length:  # a digit reaches away from the border further than along it
        return False
    return depth <= 0.5 * length or (contact >= 0.8 * length and area >= 0.45 * w * h and
                                     min(w, h) >= 0.15 * max(W, H))  # flat along the border, or a solid wedge
