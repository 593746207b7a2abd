"""Test-time views: a doubtful reading is read again on shifted and scaled copies of its canvas, and they vote."""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from .geometry import Geometry

View = tuple[float, float, float]  # scale about the canvas's centre, then a shift (dx, dy) in canvas px
SELF: View = (1.0, 0.0, 0.0)  # the canvas as preprocess made it
# the canvas itself is the first view; these are the others. Training fits the ink box at 0.8-1.0 of the
# canvas and jitters it, so each is a canvas the model has seen the like of (chosen on validation pages)
VIEWS: tuple[View, ...] = ((0.9, 0, 0), (1.1, 0, 0), (1, 2, 0), (1, -2, 0), (1, 0, 2), (1, 0, -2),
                           (0.9, 2, 1), (0.95, -1, -1))


def matrix(view: View, hw: tuple[int, int]) -> np.ndarray:
    """2x3 affine matrix canvas -> view's canvas (x, y)."""
    s, dx, dy = view
    H, W = hw
    return np.array([[s, 0, (1 - s) * W / 2 + dx], [0, s, (1 - s) * H / 2 + dy]], np.float64)


def warp(canvas: np.ndarray, view: View) -> np.ndarray:
    """(H, W) canvas, ink = 1 -> the view of it: the same size, empty canvas where the view reaches past it."""
    H, W = canvas.shape
    return cv2.warpAffine(canvas.astype(np.float32, copy=False), matrix(view, (H, W)), (W, H),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def geometry(geom: Geometry, view: View) -> Geometry:
    """The original -> canvas map of a view: the canvas's map followed by the view's scale and shift, so a
    map over the view's canvas lands on the same pixels of the original as the canvas's own would."""
    m = matrix(view, geom.canvas_hw)
    ox, oy = m[:, :2] @ geom.offset + m[:, 2]
    return dataclasses.replace(geom, scale=geom.scale * view[0], offset=(float(ox), float(oy)))


def vote(readings: list[tuple[str, float]]) -> tuple[int, float]:
    """readings: (text, whole-string probability) per view -> (the view whose reading to show, confidence).

    Each view gives its text its probability; the text with the most wins (ties: the one read first, so the
    canvas's own reading on a tie) and is shown as read by its surest view. The confidence is the mean over
    every view of the probability that view gave the winning text (0 where it read another)."""
    totals: dict[str, float] = {}
    for text, p in readings:
        totals[text] = totals.get(text, 0.0) + p
    win = max(totals, key=totals.__getitem__)  # dicts keep the order of first reading: ties go to the first
    best = max((i for i, (t, _) in enumerate(readings) if t == win), key=lambda i: readings[i][1])
    return best, totals[win] / len(readings)
