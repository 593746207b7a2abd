"""Realistic labelled validation sets: sketchpad drawings and webcam photos of 1-5 digit numbers.

    python bench/realsets.py --out /tmp/realsets --n 100 --seed 0
    python -m nextnum.evaluate --images /tmp/realsets/photo --json
    python bench/realsets.py --out /tmp/realsets --quick --json   # 3 images per style, the committed digit sample

Each style is a folder with labels.json ({"0000.png": "4072", ...}) and meta.json (how each image was
made, for error analysis). Styles:

    sketch-mnist  real MNIST t10k handwriting drawn large, black on white, at sketchpad sizes, with
                  thick brush-like (anti-aliased) strokes
    sketch-font   the digits in handwriting-like fonts (OpenCV Hershey, plus any handwriting TTF/OTF
                  fonts installed, e.g. Debian's fonts-comic-neue, fonts-breip, fonts-dkg-handwriting,
                  fonts-rufscript, fonts-sjfonts), random stroke width and slight rotation
    photo         font digits written on paper as a 640x480 webcam sees them: uneven light, paper
                  texture, blue/black/red ink, perspective, blur, sensor noise, JPEG; sometimes small
    photo-mnist   the same photos with MNIST t10k handwriting
    sketch-pens,  MNIST t10k handwriting as sketches and photos in one pen per number, from a pixel thinner to
    photo-pens    two bolder than MNIST's own stroke at 28 px, a third of the numbers with one digit lighter
                  (a pencil: 30-60% of the others' darkness)

Every image is drawn from its own generator seeded by (seed, style, index): the same seed and the same
installed fonts give the same files. Lengths are uniform over 1-5. Use one seed to develop and
another to report.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STYLES = ("sketch-mnist", "sketch-font", "photo", "photo-mnist", "sketch-pens", "photo-pens")
FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", str(Path.home() / ".fonts"))
# handwriting-like faces, by file name; outlined or decorative faces (e.g. femkeklaver) are left out
FONT_NAMES = ("ComicNeue-Regular", "ComicNeue-Bold", "ComicNeue-Italic", "ComicNeue-Light", "Breip",
              "breipfont", "dkg", "dkgBd", "dkgIt", "Rufscript010", "Delphine", "SteveHand")
HERSHEY = {"hershey-script": cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, "hershey-script-complex": cv2.FONT_HERSHEY_SCRIPT_COMPLEX,
           "hershey-simplex": cv2.FONT_HERSHEY_SIMPLEX, "hershey-duplex": cv2.FONT_HERSHEY_DUPLEX,
           "hershey-plain": cv2.FONT_HERSHEY_PLAIN}
FONTS_ONLY = False  # --font-dir: the font styles use its fonts and no Hershey face
INKS = {"black": (28, 28, 34), "blue": (30, 50, 150), "dark-blue": (22, 30, 95), "red": (175, 30, 35)}


def folder_fonts(folder: str | Path) -> dict[str, Path]:
    """Every font in a folder of @fontsource packages (configs/fonts.sh; the Latin .woff of each weight) or of
    .ttf/.otf files: name -> file."""
    files = sorted(Path(folder).glob("*/*-latin-[0-9]*-normal.woff")) + sorted(
        p for p in Path(folder).rglob("*") if p.suffix.lower() in (".ttf", ".otf"))
    if not files:
        raise SystemExit(f"error: no fonts in {folder} (bash configs/fonts.sh fetches fonts/held-out)")
    return {p.stem: p for p in files}


def find_fonts() -> dict[str, Path]:
    """Installed handwriting fonts: name -> file (the first file of each name found)."""
    found: dict[str, Path] = {}
    for d in FONT_DIRS:
        for p in sorted(Path(d).rglob("*")) if Path(d).is_dir() else []:
            if p.suffix.lower() in (".ttf", ".otf") and p.stem in FONT_NAMES and p.stem not in found:
                found[p.stem] = p
    return dict(sorted(found.items()))


@dataclass
class Glyph:
    mask: np.ndarray  # (h, w) float32 in [0, 1], ink = 1
    top: float  # y of the mask's top edge relative to the baseline (negative = above it)


# ---------------------------------------------------------------- strokes


def thin(mask: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning of a 0/1 uint8 mask to one-pixel-wide, connected centre lines."""
    img = pad(mask, 1).astype(bool)
    while True:
        changed = False
        for step in (0, 1):
            P = img
            p2, p3, p4, p5 = P[:-2, 1:-1], P[:-2, 2:], P[1:-1, 2:], P[2:, 2:]
            p6, p7, p8, p9 = P[2:, 1:-1], P[2:, :-2], P[1:-1, :-2], P[:-2, :-2]
            ring = [p2, p3, p4, p5, p6, p7, p8, p9, p2]
            B = sum(r.astype(np.uint8) for r in ring[:8])
            A = sum((~ring[i] & ring[i + 1]).astype(np.uint8) for i in range(8))
            c = (p2 & p4 & p6) if step == 0 else (p2 & p4 & p8)
            d = (p4 & p6 & p8) if step == 0 else (p2 & p6 & p8)
            rm = P[1:-1, 1:-1] & (B >= 2) & (B <= 6) & (A == 1) & ~c & ~d
            if rm.any():
                img = img.copy()
                img[1:-1, 1:-1] &= ~rm
                changed = True
        if not changed:
            return img[1:-1, 1:-1].astype(np.uint8)


def disk(d: float) -> np.ndarray:
    d = max(1, int(round(d)))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (d, d))


def brush(shape: np.ndarray, width: float) -> np.ndarray:
    """Redraw a 0/1 shape as its centre line traced with a round brush `width` px wide.

    The centre line is found on a copy about 120 px tall (thinning is slow on big masks), scaled back up
    and traced; the brush is far wider than the upscaling's steps, so they do not show."""
    f = min(1.0, 120 / max(shape.shape[0], 1))
    small = cv2.resize(shape.astype(np.float32), None, fx=f, fy=f, interpolation=cv2.INTER_AREA) > 0.5
    line = thin(small.astype(np.uint8)).astype(np.float32)
    up = cv2.resize(line, (shape.shape[1], shape.shape[0]), interpolation=cv2.INTER_LINEAR) > 0.2
    return cv2.dilate(up.astype(np.uint8), disk(width))


def set_width(shape: np.ndarray, width: float) -> np.ndarray:
    """Thicken or thin a 0/1 shape towards a mean stroke width (keeps the width's variation)."""
    if shape.sum() < 4:
        return shape
    now = 4.0 * float(cv2.distanceTransform(shape, cv2.DIST_L2, 3)[shape > 0].mean())
    d = width - now
    if d >= 1:
        return cv2.dilate(shape, disk(d))
    if d <= -2:
        return cv2.erode(shape, disk(min(-d, now - 2)))
    return shape


def pad(m: np.ndarray, p: int) -> np.ndarray:
    return cv2.copyMakeBorder(m, p, p, p, p, cv2.BORDER_CONSTANT, value=0)


def crop(m: np.ndarray) -> tuple[np.ndarray, int]:
    """Crop a mask to its ink; returns (crop, top row)."""
    ys, xs = np.nonzero(m > 0.05)
    if len(ys) == 0:
        return m[:1, :1] * 0, 0
    return m[ys.min():ys.max() + 1, xs.min():xs.max() + 1], int(ys.min())


def rotate(m: np.ndarray, deg: float, shear: float = 0.0) -> np.ndarray:
    """Rotate (and shear) a float mask about its centre, growing the canvas so nothing is cut."""
    h, w = m.shape
    p = int(0.5 * max(h, w)) + 2
    m = pad(m, p)
    c = (m.shape[1] / 2, m.shape[0] / 2)
    A = cv2.getRotationMatrix2D(c, deg, 1.0)
    A[0, 1] -= shear  # x' = x - shear * y: a forward lean for shear > 0
    A[0, 2] += shear * c[1]
    return cv2.warpAffine(m, A, (m.shape[1], m.shape[0]), flags=cv2.INTER_LINEAR)


# ---------------------------------------------------------------- glyphs


def mnist_glyphs(bank, text: str, h: float, width: float, rng: np.random.Generator,
                 mode: str | None = None) -> tuple[list[Glyph], dict]:
    """t10k digits of `text` scaled to about h px tall, strokes `width` px (as a brush or as the digit's own
    varying width, drawn at random unless mode says). Returns the glyphs and what was drawn."""
    labels = bank.labels.numpy()
    mode = mode or ("brush" if rng.random() < 0.5 else "shape")
    glyphs, ids = [], []
    for ch in text:
        i = int(rng.choice(np.flatnonzero(labels == int(ch))))
        ids.append(i)
        y0, y1, x0, x1 = (int(v) for v in bank.boxes[i].tolist())
        img = bank.images[i].numpy()[max(0, y0 - 1):y1 + 1, max(0, x0 - 1):x1 + 1]
        hh = h * rng.uniform(0.9, 1.1)
        f = hh / max(y1 - y0, 1)
        up = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC)
        shape = pad((up > 0.4).astype(np.uint8), int(width) + 2)
        shape = brush(shape, width) if mode == "brush" else set_width(shape, width)
        g = rotate(shape.astype(np.float32), rng.uniform(-5, 5))
        g, _ = crop(g)
        glyphs.append(Glyph(g, -g.shape[0] + rng.uniform(-0.06, 0.06) * h))  # sits on the baseline
    return glyphs, {"mnist_ids": ids, "stroke": mode}


def font_glyphs(text: str, font: str, fonts: dict[str, Path], h: float, width: float,
                rng: np.random.Generator) -> tuple[list[Glyph], dict]:
    """The digits of `text` in one font, about h px tall (the font's own digit heights and baseline kept),
    each slightly rotated, strokes about `width` px wide."""
    mode = "brush" if rng.random() < 0.5 else "fill"
    lean = rng.uniform(-0.15, 0.25)
    glyphs = []
    for ch in text:
        if font in HERSHEY:
            ff = HERSHEY[font]
            (_, th), _ = cv2.getTextSize("0", ff, 1.0, 1)
            scale = h / th
            thick = max(1, int(round(width)))
            size = int(3 * h + 4 * thick)
            img = np.zeros((size, size), np.uint8)
            base = int(2 * h)
            cv2.putText(img, ch, (thick + 2, base), ff, scale, 255, thick, cv2.LINE_AA)
        else:
            from PIL import Image, ImageDraw, ImageFont
            ref = ImageFont.truetype(str(fonts[font]), 100)
            x0, y0, x1, y1 = ref.getbbox("0", anchor="ls")
            pt = max(8, int(round(100 * h / max(y1 - y0, 1))))
            ft = ImageFont.truetype(str(fonts[font]), pt)
            size = int(3 * h + 4 * width)
            im = Image.new("L", (size, size), 0)
            base = int(2 * h)
            sw = 0 if mode == "brush" else max(0, int(round(width / 4)))
            ImageDraw.Draw(im).text((int(width) + 2, base), ch, font=ft, fill=255, anchor="ls",
                                    stroke_width=sw, stroke_fill=255)
            img = np.asarray(im).copy()
        shape = (img > 127).astype(np.uint8)
        if mode == "brush":
            shape = brush(shape, width)
        m = rotate(shape.astype(np.float32), rng.uniform(-6, 6), lean)
        # where the baseline ended up: rotate() pads by p about the centre; track it with a marker row
        p = (m.shape[0] - shape.shape[0]) // 2
        g, top = crop(m)
        glyphs.append(Glyph(g, top - (base + p) + rng.uniform(-0.04, 0.04) * h))
    return glyphs, {"font": font, "stroke": mode, "lean": round(float(lean), 3)}


def row(glyphs: list[Glyph], h: float, rng: np.random.Generator) -> np.ndarray:
    """Lay the glyphs out left to right with natural gaps; returns the row's float mask, cropped."""
    gaps = rng.uniform(0.08, 0.5, len(glyphs)) * h
    xs, x = [], 0.0
    for g, gap in zip(glyphs, gaps):
        xs.append(int(round(x)))
        x += g.mask.shape[1] + gap
    top = min(g.top for g in glyphs)
    bottom = max(g.top + g.mask.shape[0] for g in glyphs)
    out = np.zeros((int(bottom - top) + 2, xs[-1] + glyphs[-1].mask.shape[1] + 1), np.float32)
    for g, x0 in zip(glyphs, xs):
        y0 = int(round(g.top - top))
        gh, gw = g.mask.shape
        np.maximum(out[y0:y0 + gh, x0:x0 + gw], g.mask, out=out[y0:y0 + gh, x0:x0 + gw])
    return crop(out)[0]


def digits(text: str, style: str, bank, fonts: dict[str, Path], h: float, width: float,
           rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    if style.endswith("pens"):  # one pen per number: MNIST's stroke (2.5 px at 20 px of ink) less 1 to plus 2 px
        glyphs, meta = mnist_glyphs(bank, text, h, h * (2.5 + rng.uniform(-1, 2)) / 20, rng, mode="shape")
        if rng.random() < 1 / 3:  # one digit in pencil
            k, f = int(rng.integers(len(glyphs))), float(rng.uniform(0.3, 0.6))
            glyphs[k].mask = glyphs[k].mask * f
            meta["light"] = {"digit": k, "darkness": round(f, 2)}
    elif style.endswith("mnist"):
        glyphs, meta = mnist_glyphs(bank, text, h, width, rng)
    else:
        names = list(HERSHEY) + list(fonts)
        # Hershey faces are always there; installed handwriting fonts get most of the draws when present, all
        # of them with --font-dir
        p = np.array([0.0 if FONTS_ONLY else 1.0] * len(HERSHEY) + [2.0] * len(fonts))
        font = names[int(rng.choice(len(names), p=p / p.sum()))]
        glyphs, meta = font_glyphs(text, font, fonts, h, width, rng)
    return row(glyphs, h, rng), meta


# ---------------------------------------------------------------- scenes


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
    scale = rng.uniform(0.65, 0.9) if rng.random() < 0.3 else rng.uniform(1.05, 1.3)  # < 1: the desk shows
    th = np.deg2rad(rng.uniform(-8, 8))
    c, s = np.cos(th), np.sin(th)
    corners = np.array([[-PW / 2, -PH / 2], [PW / 2, -PH / 2], [PW / 2, PH / 2], [-PW / 2, PH / 2]], np.float32)
    dst = (corners * scale) @ np.array([[c, s], [-s, c]], np.float32) + np.array([PW / 2, PH / 2], np.float32)
    dst += rng.uniform(-0.06, 0.06, (4, 2)).astype(np.float32) * np.array([PW, PH], np.float32)
    Hm = cv2.getPerspectiveTransform(corners + np.array([PW / 2, PH / 2], np.float32), dst)

    # the writing goes somewhere on the paper where, once warped, all of it is in the frame
    f2 = min(1.0, 0.8 * scale * PW / m.shape[1])  # a sheet smaller than the frame holds less
    if f2 < 1:
        m = cv2.resize(m, None, fx=f2, fy=f2, interpolation=cv2.INTER_AREA)
        fit *= f2
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
    ink_name = list(INKS)[int(rng.choice(len(INKS), p=[0.4, 0.3, 0.15, 0.15]))]
    ink_rgb = np.array(INKS[ink_name], np.float32) * rng.uniform(0.8, 1.2)
    alpha = np.clip(ink * rng.uniform(0.75, 0.97) * (1 + 0.08 * _noise(rng, (PH, PW), (24, 32))), 0, 1)[..., None]
    paper = paper * (1 - alpha) + ink_rgb[None, None] * alpha

    desk = np.array([rng.uniform(40, 140)] * 3, np.float32) * np.array([1.0, rng.uniform(0.8, 1.0), rng.uniform(0.6, 0.9)])
    frame = cv2.warpPerspective(paper, Hm, (PW, PH), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                borderValue=tuple(float(v) for v in desk))
    cover = cv2.warpPerspective(np.ones((PH, PW), np.float32), Hm, (PW, PH))
    desk_img = desk[None, None] * (1 + 0.08 * _noise(rng, (PH, PW), (5, 7)))[..., None]
    frame = frame * cover[..., None] + desk_img * (1 - cover[..., None])
    frame = cv2.resize(frame, (W, H), interpolation=cv2.INTER_AREA)

    # light: a gradient across the frame, vignetting, sometimes a soft shadow, a colour cast
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
    sigma = rng.uniform(0.3, 1.4)
    frame = cv2.GaussianBlur(frame, (0, 0), sigma)
    frame += rng.standard_normal(frame.shape).astype(np.float32) * rng.uniform(1.5, 6)
    frame = np.clip(frame, 0, 255).astype(np.uint8)
    q = int(rng.integers(35, 86))
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, q])
    assert ok, "JPEG encoding failed"
    meta.update(digit_h=round(h * fit, 1), stroke_px=round(width * fit, 2), ink=ink_name, paper_scale=round(scale, 2),
                ruled=ruled, shadow=shadow, light_min=round(lo_light, 2), blur=round(sigma, 2), jpeg=q, small=small)
    return buf.tobytes(), meta


def build(style: str, out: Path, n: int, seed: int, bank, fonts: dict[str, Path]) -> dict[str, str]:
    """Write n images of one style into out/style; returns the labels."""
    folder = out / style
    folder.mkdir(parents=True, exist_ok=True)
    labels, metas = {}, {}
    for i in range(n):
        rng = np.random.default_rng([seed, STYLES.index(style), i])
        text = "".join(str(d) for d in rng.integers(0, 10, int(rng.integers(1, 6))))
        if style.startswith("sketch"):
            img, meta = sketch(text, style, bank, fonts, rng)
            name = f"{i:04d}.png"
            bgr = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGBA2BGRA)
            cv2.imwrite(str(folder / name), bgr)
        else:
            jpeg, meta = photo(text, style, bank, fonts, rng)
            name = f"{i:04d}.jpg"
            (folder / name).write_bytes(jpeg)
        labels[name], metas[name] = text, meta
    (folder / "labels.json").write_text(json.dumps(labels, indent=1) + "\n")
    (folder / "meta.json").write_text(json.dumps(metas, indent=1) + "\n")
    return labels


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="folder to write one sub-folder per style into")
    ap.add_argument("--n", type=int, default=100, help="images per style")
    ap.add_argument("--seed", type=int, default=0, help="develop on one seed, report on another")
    ap.add_argument("--styles", nargs="+", default=list(STYLES), choices=STYLES)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"), help="MNIST root (t10k is used)")
    ap.add_argument("--quick", action="store_true", help="3 images per style; the committed digit sample, not MNIST")
    ap.add_argument("--font-dir", default=None, help="draw the font styles in these fonts only (e.g. fonts/held-out: "
                    "many hands never trained on, with flagged 1s, crossed 7s, closed and open 4s)")
    ap.add_argument("--json", action="store_true", help="print one line of JSON last")
    args = ap.parse_args(argv)
    if args.quick:
        args.n = 3

    global FONTS_ONLY
    FONTS_ONLY = args.font_dir is not None
    fonts = folder_fonts(args.font_dir) if FONTS_ONLY else find_fonts()
    bank = None
    if any(s.endswith(("mnist", "pens")) for s in args.styles):
        from nextnum.data import load_fixture, load_mnist
        bank = load_fixture() if args.quick else load_mnist(args.data, train=False)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    used = {"hershey": list(HERSHEY), "ttf": {k: str(v) for k, v in fonts.items()}}
    (out / "fonts.json").write_text(json.dumps(used, indent=1) + "\n")
    made = {}
    for style in args.styles:
        made[style] = len(build(style, out, args.n, args.seed, bank, fonts))
        print(f"{out / style}: {made[style]} images")
    if not fonts:
        print("note: no handwriting TTF fonts found; font styles use OpenCV's Hershey faces only", file=sys.stderr)
    if args.json:
        print(json.dumps({"bench": "realsets", "out": str(out), "seed": args.seed, "images": made, "fonts": used}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
