"""Pure functions that turn attention weights into pictures over the canvas or the original image.

Shapes: N = gh * gw encoder tokens on the canvas's non-square (gh, gw) grid (ModelConfig.grid).
Maps are float32 in [0, 1]; pictures are uint8 RGB. Everything that draws over the original image
takes an optional `rect` (x0, y0, x1, y1): the only part of it the canvas covers (Geometry.canvas_rect),
outside which every attention map is zero, so the work there is skipped.
"""
from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from .config import ModelConfig
from .geometry import Geometry, Rect, Window

# a colour per output digit for the combined view (matplotlib's tab10, RGB 0-255)
DIGIT_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
                 (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def as_array(x) -> np.ndarray:
    """float32 numpy of an array or of a torch tensor (detached, on the CPU), without importing torch."""
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, np.float32)


def to_grid(weights, grid: tuple[int, int]) -> np.ndarray:
    """(..., N) attention over tokens (numpy or torch) -> (..., gh, gw) float32 numpy."""
    w = as_array(weights)
    gh, gw = grid
    if w.shape[-1] != gh * gw:
        raise ValueError(f"{w.shape[-1]} tokens do not fill a {gh}x{gw} grid")
    return w.reshape(*w.shape[:-1], gh, gw)  # (..., gh, gw)


def grid_to_canvas(m: np.ndarray, cfg: ModelConfig) -> np.ndarray:
    """(gh, gw) token map -> (H, W) canvas map: each value sits at its token's centre, bilinear between."""
    gh, gw = cfg.grid
    cell = cfg.cell
    up = cv2.resize(np.asarray(m, np.float32), (gw * cell, gh * cell), interpolation=cv2.INTER_LINEAR)
    out = np.zeros((cfg.img_h, cfg.img_w), np.float32)
    o = (cfg.field - cell) // 2  # overlapping patches: token centres sit this far in
    h, w = min(up.shape[0], cfg.img_h - o), min(up.shape[1], cfg.img_w - o)
    out[o:o + h, o:o + w] = up[:h, :w]
    return out


INK_LEVEL = 0.1  # canvas values above this are ink (the canvas is 0 on paper, 1 at the digits' strength)
INK_REACH = 1  # canvas px a map reaches beyond the ink, with ModelConfig.maps_on_ink


def ink_near(canvas: np.ndarray, reach: int = INK_REACH) -> np.ndarray:
    """(H, W) canvas -> (H, W) float32: 1 within `reach` px of its ink, else 0."""
    ink = (np.asarray(canvas) > INK_LEVEL).astype(np.uint8)
    return cv2.dilate(ink, np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)).astype(np.float32)


def normalise_map(m: np.ndarray) -> np.ndarray:
    """Scale a non-negative map to [0, 1] by its maximum (all-zero stays zero)."""
    mx = float(m.max()) if m.size else 0.0
    return m * (1.0 / mx) if mx > 0 else m


def on_original(grid_map: np.ndarray, geometry: Geometry, cfg: ModelConfig, window: Window | None = None) -> np.ndarray:
    """(gh, gw) token map -> (H0, W0) map over the original image, normalised to max 1 (zero outside
    the part of the image the canvas covers); or over `window`, a part of the original at the size shown."""
    if window is None:
        m = geometry.warp_to_original(grid_to_canvas(grid_map, cfg))
    else:
        m = geometry.warp_to_original(grid_to_canvas(grid_map, cfg), window.rect, window.size)
    mx = float(m.max()) if m.size else 0.0
    if mx > 0:
        m *= 1.0 / mx
    return m


@lru_cache(maxsize=8)
def _lut(cmap: str) -> np.ndarray:
    """(256, 1, 3) RGB table of an OpenCV colormap by name ("inferno", "viridis", "turbo", ...).

    OpenCV's inferno and viridis are matplotlib's, entry for entry; taking them from OpenCV keeps
    matplotlib (about 30 MB) out of the reading path."""
    code = getattr(cv2, f"COLORMAP_{cmap.upper()}", None)
    if code is None:
        raise ValueError(f"unknown colormap {cmap!r}")
    bgr = cv2.applyColorMap(np.arange(256, dtype=np.uint8).reshape(256, 1), code)  # (256, 1, 3)
    return np.ascontiguousarray(bgr[..., ::-1])


def colorize(m: np.ndarray, cmap: str = "inferno") -> np.ndarray:
    """[0, 1] map (H, W) -> RGB uint8 through a colormap (see _lut)."""
    idx = cv2.convertScaleAbs(np.asarray(m, np.float32), alpha=255)  # rounds and saturates to 0..255
    return cv2.applyColorMap(idx, _lut(cmap))  # with a user table this is a plain lookup: RGB stays RGB


def as_rgb(img: np.ndarray) -> np.ndarray:
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    return np.ascontiguousarray(img[..., :3]) if img.shape[2] == 4 else img


def _rect(img: np.ndarray, rect: Rect | None) -> Rect:
    h, w = img.shape[:2]
    if rect is None:
        return 0, 0, w, h
    x0, y0, x1, y1 = rect
    return max(0, x0), max(0, y0), min(w, x1), min(h, y1)


def _active(m: np.ndarray, rect: Rect, floor: float) -> Rect:
    """The bounding box, inside rect, of where m reaches floor: blending weaker than that changes no
    pixel by a grey level, so it is skipped (per-digit maps are concentrated, so this is most of the work)."""
    x0, y0, x1, y1 = rect
    sub = np.ascontiguousarray(m[y0:y1, x0:x1], np.float32)
    bx, by, bw, bh = cv2.boundingRect(cv2.compare(sub, floor, cv2.CMP_GE))
    return x0 + bx, y0 + by, x0 + bx + bw, y0 + by + bh


def overlay(img: np.ndarray, m: np.ndarray, cmap: str = "inferno", alpha: float = 0.6,
            rect: Rect | None = None) -> np.ndarray:
    """Blend a [0, 1] heatmap (same H, W as img) over the image; opaquer where attention is higher."""
    out = as_rgb(img).copy()
    x0, y0, x1, y1 = _rect(out, rect)
    if x1 <= x0 or y1 <= y0:
        return out
    x0, y0, x1, y1 = _active(m, (x0, y0, x1, y1), 0.5 / 255 / alpha)
    if x1 <= x0 or y1 <= y0:
        return out
    sub = np.ascontiguousarray(m[y0:y1, x0:x1], np.float32)
    a = cv2.min(sub, 1.0) * alpha
    out[y0:y1, x0:x1] = cv2.blendLinear(out[y0:y1, x0:x1], colorize(sub, cmap), 1.0 - a, a)
    return out


@lru_cache(maxsize=1)
def _palette() -> np.ndarray:
    """(256, 1, 3) uint8 table: digit index -> its DIGIT_COLOURS entry, for cv2.LUT."""
    return np.array([DIGIT_COLOURS[i % len(DIGIT_COLOURS)] for i in range(256)], np.uint8).reshape(256, 1, 3)


def combined(img: np.ndarray, maps: list[np.ndarray], alpha: float = 0.75, rect: Rect | None = None) -> np.ndarray:
    """One picture, each digit's [0, 1] map in its own colour (DIGIT_COLOURS) over the greyed image;
    each pixel takes the colour of the digit that looked at it hardest."""
    g = cv2.cvtColor(as_rgb(img), cv2.COLOR_RGB2GRAY)
    out = cv2.cvtColor(cv2.convertScaleAbs(g, alpha=0.6, beta=100), cv2.COLOR_GRAY2RGB)
    x0, y0, x1, y1 = _rect(out, rect)
    if not maps or x1 <= x0 or y1 <= y0:
        return out
    boxes = [b for b in (_active(m, (x0, y0, x1, y1), 0.5 / 255 / alpha) for m in maps) if b[2] > b[0]]
    if not boxes:
        return out
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    strength = np.ascontiguousarray(maps[0][y0:y1, x0:x1], np.float32)
    # the winning digit's index per pixel, with OpenCV's uint8 ops, then one colour lookup: a boolean
    # mask assignment of an RGB triple per digit was 3x slower on a sketchpad-sized image
    who = np.zeros(strength.shape, np.uint8)
    for i, m in enumerate(maps[1:], 1):
        sub = np.ascontiguousarray(m[y0:y1, x0:x1], np.float32)
        won = cv2.compare(sub, strength, cv2.CMP_GT)  # 255 where digit i looked harder than all before it
        who = cv2.max(cv2.bitwise_and(who, cv2.bitwise_not(won)), cv2.bitwise_and(won, i))
        strength = cv2.max(strength, sub)
    colours = cv2.LUT(cv2.merge([who, who, who]), _palette())
    a = cv2.min(strength, 1.0) * alpha
    out[y0:y1, x0:x1] = cv2.blendLinear(out[y0:y1, x0:x1], colours, 1.0 - a, a)
    return out


def rollout(attn, discard_ratio: float = 0.0) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema 2020) over encoder layers.

    attn: (L, H, N, N) one image's encoder self-attention. Heads are averaged, the residual is added
    as 0.5 * I, every row is renormalised to sum to 1, and the layers are multiplied in order.
    discard_ratio drops that share of the weakest links per layer (never a token's link to itself).
    Returns (N, N): row i = how much each input token flows into output token i (rows sum to 1).
    """
    a = as_array(attn)
    L, _, N, _ = a.shape
    eye = np.eye(N)
    result = eye.copy()
    for layer in a.mean(1).astype(np.float64):  # (N, N)
        if discard_ratio > 0:
            k = int(N * N * discard_ratio)
            if k > 0:
                flat = layer.reshape(-1)  # a view: writes go to layer
                drop = np.argpartition(flat, k)[:k]
                flat[drop[drop // N != drop % N]] = 0  # keep the diagonal
        layer = 0.5 * layer + 0.5 * eye
        layer = layer / layer.sum(-1, keepdims=True)
        result = layer @ result
    return result


def token_importance(attn_rows: np.ndarray) -> np.ndarray:
    """(N, N) row-stochastic flow -> (N,) how much each token is attended on average over queries."""
    return attn_rows.mean(0)


def rollout_importance(attn) -> np.ndarray:
    """token_importance(rollout(attn)) without the (N, N) products: the mean row is carried back through
    the layers as one vector, N^2 work per layer instead of N^3 (the rollout was most of a reading's
    picture time on the 200-token grid)."""
    a = as_array(attn)
    N = a.shape[-1]
    v = np.full(N, 1.0 / N)
    diag = np.arange(N)
    for layer in a.mean(1).astype(np.float64)[::-1]:  # (N, N), last layer first
        layer *= 0.5
        layer[diag, diag] += 0.5
        v = (v / layer.sum(-1)) @ layer  # rows renormalised to sum to 1, as rollout does
    return v


def top_tokens(m: np.ndarray, frac: float) -> np.ndarray:
    """Indices of the largest `frac` share of a flat (N,) map's entries (at least one)."""
    k = max(1, int(round(frac * m.size)))
    return np.argsort(m.reshape(-1))[::-1][:k]


def mask_tokens(canvas: np.ndarray, tokens: np.ndarray, cfg: ModelConfig) -> np.ndarray:
    """Blank the canvas area under the given token indices (for the faithfulness check)."""
    out = canvas.copy()
    _, gw = cfg.grid
    for t in np.asarray(tokens).reshape(-1):
        r, c = divmod(int(t), gw)
        y, x = r * cfg.cell, c * cfg.cell
        out[y:y + cfg.field, x:x + cfg.field] = 0
    return out
