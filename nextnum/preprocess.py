"""One preprocessing pipeline from any image (sketch, webcam frame, photo, file) to the model's canvas.

    original -> grayscale -> normalised (polarity, illumination) -> binary (threshold, specks dropped)
    -> ink box (stray marks far from the digits ignored) -> canvas (aspect kept, grey levels and stroke
    widths as drawn) -> the model's input tensor

Ink is looked for (ink.py) on a work copy reduced by a power of two (fast, and enough to find digits): the
ink map is the paper's brightness (a grey closing) divided out, so light and shadow do not matter;
it is thresholded twice, once against the strongest ink anywhere and once, around the digits found,
against their own strength. The canvas is cut from the full-resolution image whenever the work copy
would have to be enlarged. Every input kind goes through `inputs.read_image` and then the same `preprocess`;
each stage can be returned as an image, and the Geometry maps canvas points back onto the original.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from .config import fit_scale
from .digits import find_digits, ink_box, is_dot
from .ink import digit_strength, ink_of, normalise, polarity
from .geometry import Geometry
from .inputs import read_image, roi_box
from .rules import Rules, find_rules, lift
from .strokes import match_stroke

WORK_SIDE = 400  # the work copy is halved until its longer side is at most this
MIN_STRENGTH = 0.2  # ink darker than the paper by less than this fraction counts as blank...
MIN_CONTRAST = 24  # ... and so does ink less than this many grey levels darker (a dark or flat image)
MIN_INK_PX = 6  # an ink box less tall than this many original pixels is not a digit


@dataclass
class Preprocessed:
    canvas: np.ndarray  # (H, W) float32 in [0, 1], ink = 1
    geometry: Geometry | None  # None when no ink was found
    message: str = ""  # why nothing was found, or what was done (e.g. marks ignored)
    stages: dict[str, np.ndarray] = field(default_factory=dict)  # name -> uint8 image, in order
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self.geometry is None

    @property
    def tensor(self):
        """(1, 1, H, W) torch tensor of the canvas, for PyTorch callers (reading itself needs no torch)."""
        import torch
        return torch.from_numpy(self.canvas)[None, None]


def grayscale(arr: np.ndarray) -> np.ndarray:
    """uint8 (H, W) from (H, W), RGB or RGBA.

    Each pixel takes its darkest channel, so blue or red ink is as dark as black ink is. Transparent
    pixels become background: the image is laid over white, or over black when what is visible is light
    (light strokes on a transparent layer).
    """
    if arr.ndim == 2:
        return arr
    g = cv2.min(cv2.min(arr[..., 0], arr[..., 1]), arr[..., 2])
    if arr.shape[2] == 4:
        a = np.ascontiguousarray(arr[..., 3])
        if int(a.min()) < 255:
            vis = g[a > 127]
            under = 0 if vis.size and float(np.median(vis)) > 127 else 255
            g = cv2.add(cv2.multiply(g, a, scale=1 / 255),
                        cv2.subtract(255, a) if under else np.zeros_like(a))
    return g


# ---------------------------------------------------------------- steps


def _halve(img: np.ndarray, times: int) -> np.ndarray:
    """Average 2x2 blocks `times` times (trailing odd rows/columns dropped: the fast path of INTER_AREA)."""
    for _ in range(times):
        h, w = img.shape[0] // 2 * 2, img.shape[1] // 2 * 2
        img = cv2.resize(img[:h, :w], (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    return img


def _keep_mask(lab: np.ndarray, comps: list, used: list[int], box_h: int) -> np.ndarray | None:
    """uint8 mask over the ink box, 0 on the marks that are no digit (taller and wider than the digits'
    box, or reaching the work copy's border from outside the digits), 255 elsewhere; None: nothing to cut."""
    used_set = set(used)
    big = [i for i, (x, y, w, h, _) in enumerate(comps) if i not in used_set and h > box_h and w > box_h]
    if not big:
        return None
    cut = np.zeros(len(comps) + 1, np.uint8)
    cut[[i + 1 for i in big]] = 255
    return cv2.bitwise_not(cut[lab])


def _soft_ink(ink, src: np.ndarray, lab: np.ndarray, comps: list, used: list[int], thresh: int,
              box: tuple[int, int, int, int], n: int, origin: tuple[int, int], ch: int,
              rules: Rules | None = None) -> np.ndarray:
    """The ink inside the box (work pixels), uint8 0-255: from the work copy when it has enough pixels for a
    canvas box ch px tall, else from the original's pixels (n per work pixel; origin: the region's offset)."""
    bx0, by0, bx1, by1 = box
    rx0, ry0 = origin
    # everything inside the box reaches the canvas, light digits and marks between them included, except
    # what cannot be a digit here (a desk, the sheet's edge, a shadow reaching in from the border)
    keep = _keep_mask(lab[by0:by1, bx0:bx1], comps, used, by1 - by0)
    if ch <= by1 - by0 or n == 1:  # the work copy has enough pixels: shrink from it
        cut = ink.ink[by0:by1, bx0:bx1] if keep is None else cv2.min(ink.ink[by0:by1, bx0:bx1], keep)
    else:  # enlarge from the original's pixels, with the same ink map (on lined paper across the rows' width)
        x0, x1 = (0, ink.ink.shape[1]) if rules is not None else (bx0, bx1)
        sl = (slice(ry0 + by0 * n, ry0 + by1 * n), slice(rx0 + x0 * n, rx0 + x1 * n))
        g = grayscale(src[sl])
        bg = None if ink.bg is None else cv2.resize(ink.bg[by0:by1, x0:x1], g.shape[::-1], interpolation=cv2.INTER_LINEAR)
        cut = ink_of(g, bg, ink.paper)
        if rules is not None:
            cut = lift(cut, Rules(rules.mask[by0:by1], rules.thickness), scale=n)[:, bx0 * n:bx1 * n]
        if keep is not None:
            cut = cv2.min(cut, cv2.resize(keep, cut.shape[::-1], interpolation=cv2.INTER_NEAREST))
    # grey levels kept: paper texture (below the noise floor) is 0, the digits' own strength is 1, a
    # lighter digit keeps its lightness; stroke widths are left as they are (training covers them)
    lo = min(ink.noise, thresh // 2)
    hi = max(lo + 16, int(digit_strength(ink.ink, lab, used, (bx0, by0, bx1, by1))))
    soft = cv2.convertScaleAbs(cv2.subtract(cut, np.full_like(cut, lo)), alpha=255 / (hi - lo))
    return soft


def preprocess(image: Any, canvas_hw: tuple[int, int], roi: tuple[float, float, float, float] | None = None,
               stages: bool = False, shrink: float = 1.0, match_strokes: bool = False) -> Preprocessed:
    """Image -> canvas (H, W) with ink = 1, the model's tensor, and the geometry back to the original.

    roi: (x0, y0, x1, y1) fractions of the image to look for ink in (e.g. the webcam's guide box).
    stages: also return each step as a uint8 image (for the app); costs about a millisecond.
    shrink: the ink box is fitted to the canvas (config.fit_scale) times this; training draws its
        boxes at fit_scale times DataConfig.fit_shrink, so the Predictor passes that range's middle.
    match_strokes: bring stroke widths to the canvases of models trained before canvases came from here
        (strokes.match_stroke; ModelConfig.match_strokes says which models those are).
    """
    t = {"start": time.perf_counter()}
    H, W = canvas_hw
    arr, zoom = read_image(image)  # at most READ_SIDE: every reader reads the same array
    rx0, ry0, rx1, ry1 = roi_box(arr.shape[:2], roi)
    src, work, n, light = _work_copy(arr, (rx0, ry0, rx1, ry1))
    t["grayscale"] = time.perf_counter()
    ink = normalise(work, light)
    t["normalise"] = time.perf_counter()
    blank = ink.strength < MIN_STRENGTH or ink.contrast < MIN_CONTRAST
    rules = None if blank else find_rules(ink)
    if rules is not None:  # lined paper: the lines are lifted before the digits are looked for
        ink.ink = lift(ink.ink, rules)
    lab, comps, used, stray, thresh = (np.zeros(work.shape, np.uint16), [], [], 0, 0) if blank else find_digits(ink)
    t["binarise"] = time.perf_counter()

    st: dict[str, np.ndarray] = {}
    if stages:
        st["original"] = _display(arr)
        st["grayscale"] = work
        st["normalised"] = cv2.bitwise_not(ink.ink)
        st["binary"] = _binary_stage(lab, len(comps), used)
    canvas = np.zeros((H, W), np.float32)
    if used:
        bx0, by0, bx1, by1 = ink_box(comps, used)
    if not used or (by1 - by0) * n < MIN_INK_PX or is_dot(lab, comps, used, ink.ink):
        msg = ("no digits found: the image looks blank" if blank else
               "no digits found: only specks, no strokes" if not used else
               "no digits found: the marks are too small to read" if (by1 - by0) * n < MIN_INK_PX else
               "no digits found: only a dot or blob, no strokes")
        if stages:
            st["ink box"] = st["original"]
            st["canvas"] = np.full((H, W), 255, np.uint8)
        t["canvas"] = time.perf_counter()
        return Preprocessed(canvas, None, msg, st, _ms(t))

    # ink box in original pixels (region offset added); the canvas box keeps its aspect
    ow, oh = (bx1 - bx0) * n, (by1 - by0) * n
    s = fit_scale(oh, ow, H, W) * shrink  # canvas px per original px
    cw, ch = min(W, max(1, int(round(ow * s)))), min(H, max(1, int(round(oh * s))))
    soft = _soft_ink(ink, src, lab, comps, used, thresh, (bx0, by0, bx1, by1), n, (rx0, ry0), ch, rules)
    small = cv2.resize(soft, (cw, ch), interpolation=cv2.INTER_AREA if cw < soft.shape[1] else cv2.INTER_LINEAR)
    px, py = (W - cw) // 2, (H - ch) // 2
    canvas[py:py + ch, px:px + cw] = small.astype(np.float32) * (1 / 255)
    if match_strokes:
        canvas = match_stroke(canvas, ch)
    t["canvas"] = time.perf_counter()

    ox0, oy0 = rx0 + bx0 * n, ry0 + by0 * n
    geo = Geometry(src_hw=arr.shape[:2], canvas_hw=(H, W), crop=(float(ox0), float(oy0), float(ox0 + ow), float(oy0 + oh)),
                   scale=cw / ow, offset=(float(px), float(py)),
                   roi=None if roi is None else (float(rx0), float(ry0), float(rx1), float(ry1)), zoom=zoom)
    msg = f"ignored {stray} stray mark{'s' * (stray != 1)} away from the digits" if stray else ""
    if stages:
        st["ink box"] = _boxed_stage(st["original"], None if roi is None else (rx0, ry0, rx1, ry1), (ox0, oy0, ow, oh))
        st["canvas"] = (255 - canvas * 255).astype(np.uint8)
    return Preprocessed(canvas, geo, msg, st, _ms(t))


def _work_copy(arr: np.ndarray, roi_px: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """The grey image to read (dark ink on light, transparency laid over white, once over the whole image
    before any averaging), and its region's work copy halved to about WORK_SIDE.
    Returns (grey source, work copy, original px per work px, whether the image was light ink on dark)."""
    src = grayscale(arr) if arr.ndim == 3 and arr.shape[2] == 4 and int(arr[..., 3].min()) < 255 else arr
    rx0, ry0, rx1, ry1 = roi_px
    region = src[ry0:ry1, rx0:rx1]
    halvings = 0
    while max(region.shape[:2]) > WORK_SIDE * 2 ** halvings and min(region.shape[:2]) >= 2 ** (halvings + 2):
        halvings += 1
    work = grayscale(_halve(region, halvings))
    light = polarity(work)
    if light:  # invert the full-resolution image, not the work copy, so both polarities agree exactly
        src = cv2.bitwise_not(src)
        work = grayscale(_halve(src[ry0:ry1, rx0:rx1], halvings))
    return src, work, 2 ** halvings, light


def _binary_stage(lab: np.ndarray, n_comps: int, used: list[int]) -> np.ndarray:
    """The binarised marks as a picture: read ones black, found but not read light grey, paper white."""
    keep = np.zeros(n_comps + 1, np.uint8)
    keep[1:] = 200
    keep[[i + 1 for i in used]] = 0
    binary = keep[lab]
    binary[lab == 0] = 255
    return binary


def _boxed_stage(original: np.ndarray, roi_px: tuple[int, int, int, int] | None,
                 box: tuple[int, int, int, int]) -> np.ndarray:
    """The original with the ink box (x0, y0, width, height; red) and the region looked in (blue) drawn on."""
    boxed = original.copy()
    lw = max(1, round(max(boxed.shape[:2]) / 300))
    if roi_px is not None:
        rx0, ry0, rx1, ry1 = roi_px
        cv2.rectangle(boxed, (rx0, ry0), (rx1 - 1, ry1 - 1), (80, 80, 255), lw)
    x0, y0, w, h = box
    cv2.rectangle(boxed, (x0, y0), (x0 + w - 1, y0 + h - 1), (255, 60, 60), lw)
    return boxed


def _display(arr: np.ndarray) -> np.ndarray:
    """The original as RGB for showing and drawing on: transparent parts laid over white."""
    if arr.ndim == 2:
        return cv2.cvtColor(arr, cv2.COLOR_GRAY2RGB)
    if arr.shape[2] == 3:
        return arr
    a = cv2.cvtColor(arr[..., 3], cv2.COLOR_GRAY2RGB)
    if int(a.min()) == 255:
        return cv2.cvtColor(arr, cv2.COLOR_RGBA2RGB)
    return cv2.add(cv2.multiply(np.ascontiguousarray(arr[..., :3]), a, scale=1 / 255), cv2.subtract(np.full_like(a, 255), a))


def _ms(t: dict[str, float]) -> dict[str, float]:
    keys = list(t)
    return {k: (t[k] - t[keys[i - 1]]) * 1000 for i, k in enumerate(keys) if i > 0}
