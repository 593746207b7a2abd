"""Grey-level helpers shared by the ink and sheet finders: cumulative histograms, their percentiles, odd sizes."""
from __future__ import annotations

import cv2
import numpy as np


def cum_hist(img: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Cumulative histogram of a uint8 image (where a uint8 mask is set), (256,) float64."""
    return np.cumsum(cv2.calcHist([img], [0], mask, [256], [0, 256])[:, 0].astype(np.float64))


def pct(cum: np.ndarray, q: float) -> int:
    """q-th percentile (0-100) from a cumulative histogram."""
    return int(np.searchsorted(cum, q / 100 * cum[-1]))


def odd(x: float) -> int:
    return int(x) // 2 * 2 + 1
