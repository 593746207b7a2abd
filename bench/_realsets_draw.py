"""The scenes of bench/realsets.py: a row of digits on a sketchpad canvas, or on paper as a webcam sees it."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from _realsets_glyphs import digits

INKS = {"black": (28, 28, 34), "blue": (30, 50, 150), "dark-blue": (22, 30, 95), "red": (175, 30, 35)}


def sketch(text: str, style: str, bank, fonts: dict[str, Path], rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """A sketchpad composite: white canvas 800-1200 x 300-400, black anti-aliased strokes."""
    W, H = int(rng.integers(800, 1201)), int(rng.integers(300, 401))
    S = 2  # drawn at 2x, then averaged down: anti-aliased edges like a browser canvas
    h = H * rng.uniform(0.35, 0.72)
    width = float(np.clip(rng.uniform(10, 28), 0.06 * h, 0.2 * h))  # brush px on the canvas
    m, meta = digits(text, style, bank, fonts, S * h, S * width, rng)
    fit = min(1.0, 0.92 * S * W / m.shape[1], 0.9 * S * H / m.shape[0])
    if fit < 1:
        m = cv2.resize(m, None, fx=fit, fy=fit, interpolation=cv2.INTER_AREA)
    big = np.zeros((S * H, S * W), np.float32)
    y0 = int(rng.uniform(0.04, 0.96) * (S * H - m.shape[0]))
    x0 = int(rng.uniform(0.03, 0.97) * (S * W - m.shape[1]))
    big[y0:y0 + m.shape[0], x0:x0 + m.shape[1]] = m
    ink = cv2.resize(big, (W, H), interpolation=cv2.INTER_AREA)
    grey = np.clip(255 * (1 - ink), 0, 255).astype(np.uint8)
    kind = ["L", "RGBA", "RGBA-transparent"][int(rng.choice(3, p=[0.5, 0.3, 0.2]))]
    if kind == "L":
        img = grey
    elif kind == "RGBA":
        img = np.dstack([grey, grey, grey, np.full_like(grey, 255)])
    else:  # a stroke layer: black ink whose alpha is the coverage, transparent elsewhere
        z = np.zeros_like(grey)
        img = np.dstack([z, z, z, np.clip(255 * ink, 0, 255).astype(np.uint8)])
    meta.update(size=[W, H], digit_h=round(h * fit, 1), stroke_px=round(width * fit, 1), mode=kind)
    return img, meta


def _noise(rng: np.random.Generator, hw: tuple[int, int], cells: tuple[int, int]) -> np.ndarray:
    """Smooth noise in about [-1, 1]: random values on a coarse grid, bicubic up to hw."""
    c = rng.standard_normal(cells).astype(np.float32)
    return cv2.resize(c, (hw[1], hw[0]), interpolation=cv2.INTER_CUBIC)


def _paper(rng: np.random.Generator, PH: int, PW: int, h: float, S: int) -> tuple[np.ndarray, bool]:
    """A sheet filling the frame (x S): white to grey, a little warm, textured, sometimes ruled."""
    g = rng.uniform(215, 250)  # white to grey paper, a little warm
    paper_rgb = g * np.array([1 + rng.uniform(0, 0.02), 1, 1 - rng.uniform(0, 0.08)], np.float32)
    tex = 1 + 0.035 * _noise(rng, (PH, PW), (6, 8)) + cv2.GaussianBlur(
        rng.standard_normal((PH, PW)).astype(np.float32), (0, 0), 1.2) * 0.03
    paper = paper_rgb[None, None] * tex[..., None]
    ruled = rng.random() < 0.15
    if ruled:  # faint notebook lines, under the writing
        step = int(rng.uniform(0.9, 1.4) * S * max(h, 40))
        for y in range(int(rng.uniform(0, step)), PH, step):
            cv2.line(paper, (0, y), (PW, y), (150, 185, 225), S)
    return paper, ruled


def _pose(rng: np.random.Generator, PW: int, PH: int) -> tuple[float, np.ndarray]:
    """Where the sheet lies in the frame: (scale, the homography for its rotation, scale and perspective)."""
    scale = rng.uniform(0.65, 0.9) if rng.random() < 0.3 else rng.uniform(1.05, 1.3)  # < 1: the desk shows
    th = np.deg2rad(rng.uniform(-8, 8))
    c, s = np.cos(th), np.sin(th)
    corners = np.array([[-PW / 2, -PH / 2], [PW / 2, -PH / 2], [PW / 2, PH / 2], [-PW / 2, PH / 2]], np.float32)
    dst = (corners * scale) @ np.array([[c, s], [-s, c]], np.float32) + np.array([PW / 2, PH / 2], np.float32)
    dst += rng.uniform(-0.06, 0.06, (4, 2)).astype(np.float32) * np.array([PW, PH], np.float32)
    Hm = cv2.getPerspectiveTransform(corners + np.array([PW / 2, PH / 2], np.float32), dst)
    return scale, Hm


def _place(m: np.ndarray, scale: float, Hm: np.ndarray, small: bool, rng: np.random.Generator,
           PW: int, PH: int) -> np.ndarray:
    """The writing's ink on the paper (PH x PW), somewhere that, once warped, all of it is in the frame."""
    mp = cv2.resize(m, None, fx=1 / scale, fy=1 / scale, interpolation=cv2.INTER_AREA)  # same size once warped
    mh, mw = mp.shape
    a = 0.1 if small else 0.25  # small writing may sit anywhere; large writing near the middle
    px, py = PW / 2, PH / 2
    for _ in range(50):
        cx = rng.uniform(mw / 2 + 10, max(mw / 2 + 11, PW - mw / 2 - 10))
        cy = rng.uniform(mh / 2 + 10, max(mh / 2 + 11, PH - mh / 2 - 10))
        box = np.array([[[cx - mw / 2, cy - mh / 2], [cx + mw / 2, cy - mh / 2],
                         [cx + mw / 2, cy + mh / 2], [cx - mw / 2, cy + mh / 2]]], np.float32)
        f = cv2.perspectiveTransform(box, Hm)[0]
        ctr = f.mean(0)
        if (f.min() >= 8 and (f[:, 0] <= PW - 8).all() and (f[:, 1] <= PH - 8).all()
                and a * PW <= ctr[0] <= (1 - a) * PW and a * PH <= ctr[1] <= (1 - a) * PH):
            px, py = cx, cy
            break
    ink = np.zeros((PH, PW), np.float32)
    y0, x0 = int(py - mp.shape[0] / 2), int(px - mp.shape[1] / 2)
    ys, xs = slice(max(0, y0), min(PH, y0 + mp.shape[0])), slice(max(0, x0), min(PW, x0 + mp.shape[1]))
    ink[ys, xs] = mp[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0]
    return ink


def _write(paper: np.ndarray, ink: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """The ink laid on the paper in one pen colour, its darkness a little uneven; returns (paper, ink name)."""
    PH, PW = ink.shape
    ink_name = list(INKS)[int(rng.choice(len(INKS), p=[0.4, 0.3, 0.15, 0.15]))]
    ink_rgb = np.array(INKS[ink_name], np.float32) * rng.uniform(0.8, 1.2)
    alpha = np.clip(ink * rng.uniform(0.75, 0.97) * (1 + 0.08 * _noise(rng, (PH, PW), (24, 32))), 0, 1)[..., None]
    return paper * (1 - alpha) + ink_rgb[None, None] * alpha, ink_name


def _on_desk(paper: np.ndarray, Hm: np.ndarray, rng: np.random.Generator, W: int, H: int) -> np.ndarray:
    """The sheet warped into the frame over a desk, averaged down to W x H (float RGB)."""
    PH, PW = paper.shape[:2]
    desk = np.array([rng.uniform(40, 140)] * 3, np.float32) * np.array([1.0, rng.uniform(0.8, 1.0), rng.uniform(0.6, 0.9)])
    frame = cv2.warpPerspective(paper, Hm, (PW, PH), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                borderValue=tuple(float(v) for v in desk))
    cover = cv2.warpPerspective(np.ones((PH, PW), np.float32), Hm, (PW, PH))
    desk_img = desk[None, None] * (1 + 0.08 * _noise(rng, (PH, PW), (5, 7)))[..., None]
    frame = frame * cover[..., None] + desk_img * (1 - cover[..., None])
    return cv2.resize(frame, (W, H), interpolation=cv2.INTER_AREA)


def _light(frame: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float, bool]:
    """A gradient across the frame, vignetting, sometimes a soft shadow, a colour cast; returns
    (frame, the gradient's darkest factor, whether there is a shadow)."""
    H, W = frame.shape[:2]
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    d = rng.uniform(0, 2 * np.pi)
    t = (np.cos(d) * (xx - W / 2) + np.sin(d) * (yy - H / 2)) / (0.5 * np.hypot(W, H))  # [-1, 1]
    lo_light = rng.uniform(0.35, 0.85)
    light = lo_light + (1 - lo_light) * (t + 1) / 2
    light *= 1 - rng.uniform(0, 0.3) * ((xx - W / 2) ** 2 + (yy - H / 2) ** 2) / ((W / 2) ** 2 + (H / 2) ** 2)
    shadow = rng.random() < 0.25
    if shadow:
        sm = np.zeros((H, W), np.float32)
        cx, cy, r = rng.uniform(0, W), rng.uniform(0, H), rng.uniform(0.2, 0.5) * W
        cv2.ellipse(sm, (int(cx), int(cy)), (int(r), int(r * rng.uniform(0.4, 1))), rng.uniform(0, 180), 0, 360, 1.0, -1)
        sm = cv2.GaussianBlur(sm, (0, 0), rng.uniform(15, 40))
        light *= 1 - rng.uniform(0.15, 0.45) * sm
    frame = frame * (light * rng.uniform(0.85, 1.15))[..., None] * rng.uniform(0.94, 1.06, 3)[None, None]
    return frame, lo_light, shadow


def _camera(frame: np.ndarray, rng: np.random.Generator) -> tuple[bytes, float, int]:
    """The sensor's blur and noise, then JPEG: returns (the file's bytes, blur sigma, JPEG quality)."""
    sigma = rng.uniform(0.3, 1.4)
    frame = cv2.GaussianBlur(frame, (0, 0), sigma)
    frame += rng.standard_normal(frame.shape).astype(np.float32) * rng.uniform(1.5, 6)
    frame = np.clip(frame, 0, 255).astype(np.uint8)
    q = int(rng.integers(35, 86))
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, q])
    assert ok, "JPEG encoding failed"
    return buf.tobytes(), sigma, q


def photo(text: str, style: str, bank, fonts: dict[str, Path], rng: np.random.Generator) -> tuple[bytes, dict]:
    """Digits written on paper, as a 640x480 webcam frame: the JPEG file's bytes."""
    W, H, S = 640, 480, 2
    small = rng.random() < 0.25
    h = rng.uniform(22, 50) if small else rng.uniform(50, 150)  # digit height in the frame, px
    width = max(1.6, h * rng.uniform(0.05, 0.13))  # pen stroke in the frame, px
    m, meta = digits(text, style.replace("photo", "sketch"), bank, fonts, S * h, S * width, rng)
    fit = min(1.0, 0.85 * S * W / m.shape[1])
    if fit < 1:
        m = cv2.resize(m, None, fx=fit, fy=fit, interpolation=cv2.INTER_AREA)

    # paper in frame coordinates (x S), then one homography places it: rotation, scale, perspective
    PW, PH = S * W, S * H
    paper, ruled = _paper(rng, PH, PW, h, S)
    scale, Hm = _pose(rng, PW, PH)
    f2 = min(1.0, 0.8 * scale * PW / m.shape[1])  # a sheet smaller than the frame holds less
    if f2 < 1:
        m = cv2.resize(m, None, fx=f2, fy=f2, interpolation=cv2.INTER_AREA)
        fit *= f2
    paper, ink_name = _write(paper, _place(m, scale, Hm, small, rng, PW, PH), rng)
    frame, lo_light, shadow = _light(_on_desk(paper, Hm, rng, W, H), rng)
    jpeg, sigma, q = _camera(frame, rng)
    meta.update(digit_h=round(h * fit, 1), stroke_px=round(width * fit, 2), ink=ink_name, paper_scale=round(scale, 2),
                ruled=ruled, shadow=shadow, light_min=round(lo_light, 2), blur=round(sigma, 2), jpeg=q, small=small)
    return jpeg, meta
