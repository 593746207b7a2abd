"""Product checks on mouse-drawn sketches: the 1/7 grid and numbers drawn from strokes, read with their maps.

Shared by tests/test_reading_quality.py and bench/product_checks.py (which scores candidate checkpoints).
"""
from __future__ import annotations

import itertools
from typing import Any

import cv2
import numpy as np

from drawings import HANDS, SKETCH_HW, one_seven, stroke_number

ORDERS = ("17", "71")
WIDTHS = (10, 12, 14, 16, 18)  # brush px
GAPS = (0.2, 0.3, 0.4, 0.5, 0.6)  # digit heights
HEIGHTS = (150, 180, 210)  # px on the 300 px tall sketchpad
MAP_SHARE = 0.8  # of each digit's map on its own side of the gap


def side_shares(heat: list[np.ndarray], split_x: int) -> list[float]:
    """For a two-digit reading, the share of the first digit's map left of split_x and of the second's
    right of it. heat: per-digit (H, W) maps over the drawing."""
    first, second = heat
    return [float(first[:, :split_x].sum() / max(first.sum(), 1e-12)),
            float(second[:, split_x:].sum() / max(second.sum(), 1e-12))]


def on_ink(heat: list[np.ndarray], layer: np.ndarray, reach: int = 4) -> list[np.ndarray]:
    """Each map weighted by the drawing's ink, grown by `reach` px: the map drawn on the strokes alone
    (a way of showing the maps, measured beside the maps themselves)."""
    ink = cv2.dilate((layer[..., 3] > 0).astype(np.uint8), np.ones((2 * reach + 1,) * 2, np.uint8))
    return [h * ink for h in heat]


def centre_x(heat: np.ndarray) -> float:
    """x of a map's centre of mass, px."""
    cols = heat.sum(0)
    return float((np.arange(cols.size) * cols).sum() / max(cols.sum(), 1e-12))


def one_seven_grid(predictor, quick: bool = False) -> list[dict[str, Any]]:
    """Read every case of the grid (both orders x widths x gaps x heights). A case passes when it reads
    right and each digit has at least MAP_SHARE of its map on its own side of the gap."""
    axes = (ORDERS, WIDTHS[::2], GAPS[::2], HEIGHTS[::2]) if quick else (ORDERS, WIDTHS, GAPS, HEIGHTS)
    rows = []
    for order, width, gap, height in itertools.product(*axes):
        img, _, mid = one_seven(order, width, gap, height)
        p = predictor.predict(img)
        right = p.text == order
        shares = side_shares(p.attention.heat, mid) if right else [None, None]
        inked = side_shares(on_ink(p.attention.heat, img), mid) if right else [None, None]
        rows.append({"order": order, "width": width, "gap": gap, "height": height, "read": p.text,
                     "confidence": round(p.confidence, 3), "share_first": shares[0], "share_second": shares[1],
                     "passed": right and min(shares) >= MAP_SHARE, "passed_on_ink": right and min(inked) >= MAP_SHARE})
    return rows


def drawn_numbers(predictor, n: int = 200, seed: int = 0) -> list[dict[str, Any]]:
    """Read n numbers of 1-5 digits drawn from strokes (lengths cycle 1..5, digits uniform). For each reading,
    whether each digit map's centre of mass lies inside that digit's ink span."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        text = "".join(str(d) for d in rng.integers(0, 10, i % 5 + 1))
        img, spans = stroke_number(text, rng)
        p = predictor.predict(img)
        inside = None
        if p.text == text:
            inside = [x0 <= centre_x(h) <= x1 for h, (x0, x1) in zip(p.attention.heat, spans)]
        rows.append({"text": text, "read": p.text, "confidence": round(p.confidence, 3), "centres_inside": inside})
    return rows


def drawn_small(predictor, n: int = 100, seed: int = 0) -> list[dict[str, Any]]:
    """Read n numbers of 1-3 digits drawn small: 30% of the pad's height (90 px), the page's 14 px brush."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        text = "".join(str(d) for d in rng.integers(0, 10, i % 3 + 1))
        img, _ = stroke_number(text, rng, height=0.3 * SKETCH_HW[0], width=14)
        p = predictor.predict(img, explain=False)
        rows.append({"text": text, "read": p.text})
    return rows


def drawn_large(predictor, n: int = 100, seed: int = 0) -> list[dict[str, Any]]:
    """Read n numbers of 1-5 digits drawn as tall as the pad (85-93% of its height, so that digits touch its
    top or bottom edge), with a brush from the page's 14 px to a 40 px marker."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        text = "".join(str(d) for d in rng.integers(0, 10, i % 5 + 1))
        img, _ = stroke_number(text, rng, height=float(rng.uniform(0.85, 0.93)) * SKETCH_HW[0],
                               width=int(rng.integers(14, 41)))
        rows.append({"text": text, "read": predictor.predict(img, explain=False).text})
    return rows


def hands(predictor, n: int = 40, seed: int = 0) -> list[dict[str, Any]]:
    """Read n numbers of 1-4 digits per variant in drawings.HANDS (the flag "1", the crossed "7", the closed
    "4", ...), each number holding that variant's digit at least once, drawn from strokes."""
    rows = []
    for k, (hand, (digit, _)) in enumerate(HANDS.items()):
        rng = np.random.default_rng([seed, k])
        for i in range(n):
            chars = [str(d) for d in rng.integers(0, 10, i % 4 + 1)]
            chars[int(rng.integers(len(chars)))] = digit
            text = "".join(chars)
            img, _ = stroke_number(text, rng, hand=hand)
            rows.append({"hand": hand, "text": text, "read": predictor.predict(img, explain=False).text})
    return rows


def by_hand(rows: list[dict[str, Any]]) -> dict[str, float]:
    """hands() rows -> each variant's share read right, in HANDS order."""
    return {h: float(np.mean([r["read"] == r["text"] for r in rows if r["hand"] == h]))
            for h in HANDS if any(r["hand"] == h for r in rows)}


def summary(grid: list[dict[str, Any]], drawn: list[dict[str, Any]],
            small: list[dict[str, Any]] | None = None, hand_rows: list[dict[str, Any]] | None = None,
            large: list[dict[str, Any]] | None = None) -> dict[str, float]:
    """The figures the checks are judged on."""
    inside = [c for r in drawn if r["centres_inside"] for c in r["centres_inside"]]
    out = {"grid_pass": float(np.mean([r["passed"] for r in grid])),
           "grid_pass_on_ink": float(np.mean([r.get("passed_on_ink", False) for r in grid])),
           "grid_read": float(np.mean([r["read"] == r["order"] for r in grid])),
           "drawn_read": float(np.mean([r["read"] == r["text"] for r in drawn])),
           "drawn_centres_inside": float(np.mean(inside)) if inside else 0.0}
    if small:
        out["small_read"] = float(np.mean([r["read"] == r["text"] for r in small]))
        out["small_nothing"] = float(np.mean([r["read"] == "" for r in small]))
    if large:
        out["large_read"] = float(np.mean([r["read"] == r["text"] for r in large]))
    if hand_rows:
        out["hands_worst"] = min(by_hand(hand_rows).values())
    return out
