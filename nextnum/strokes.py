"""Stroke-width matching, for models trained on canvases whose strokes were normalised (ModelConfig.match_strokes):
faint strokes made full strength, then thickened or thinned towards the width those canvases had.

Models trained on what preprocess makes of rendered images see every width and need none of this.
"""
from __future__ import annotations

import cv2
import numpy as np

from .levels import odd

# Stroke width / ink-box height on the canvases data.render drew before it drew images (default DataConfig),
# measured with stroke_width() on 400 of them: p10 0.095, median 0.139, p90 0.216.
STROKE_FRAC = 0.14
STROKE_RANGE = (0.10, 0.22)  # widths inside this range are left alone


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width in pixels of a binary mask: a bar w px wide has mean distance-to-edge (w + 2) / 4."""
    dist = cv2.distanceTransform(mask, cv2.DIST_L2, 3)
    vals = dist[mask > 0]
    return max(1.0, 4.0 * float(vals.mean()) - 2.0) if vals.size else 0.0


def match_stroke(canvas: np.ndarray, ink_h: float) -> np.ndarray:
    """Make faint strokes full strength, then thicken or thin them towards STROKE_FRAC of the ink height."""
    vals = canvas[canvas > 0.1]
    if vals.size < 4:
        return canvas
    top = float(np.percentile(vals, 90))
    if top < 0.9:  # thin strokes lose strength when shrunk: bring their cores back to 1
        canvas = np.minimum(canvas * (1.0 / max(top, 0.2)), 1.0)
    mask = (canvas > 0.5).astype(np.uint8)
    width = stroke_width(mask)
    if width == 0:
        return canvas
    lo, hi = STROKE_RANGE[0] * ink_h, STROKE_RANGE[1] * ink_h
    target = STROKE_FRAC * ink_h
    if width < lo:
        k = odd(target - width + 1)
        return cv2.dilate(canvas, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    if width > hi:
        k = odd(min(width - target, width - 3) + 1)
        if k >= 3:
            return cv2.erode(canvas, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    return canvas
