"""The digits of bench/realsets.py: handwriting fonts, stroke reshaping, MNIST and font glyphs laid out in a row."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", str(Path.home() / ".fonts"))
# handwriting-like faces, by file name; outlined or decorative faces (e.g. femkeklaver) are left out
FONT_NAMES = ("ComicNeue-Regular", "ComicNeue-Bold", "ComicNeue-Italic", "ComicNeue-Light", "Breip",
              "breipfont", "dkg", "dkgBd", "dkgIt", "Rufscript010", "Delphine", "SteveHand")
HERSHEY = {"hershey-script": cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, "hershey-script-complex": cv2.FONT_HERSHEY_SCRIPT_COMPLEX,
           "hershey-simplex": cv2.FONT_HERSHEY_SIMPLEX, "hershey-duplex": cv2.FONT_HERSHEY_DUPLEX,
           "hershey-plain": cv2.FONT_HERSHEY_PLAIN}
FONTS_ONLY = False  # --font-dir (realsets.main sets it): the font styles use its fonts and no Hershey face


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
    """The digits of `text` as one row's float mask in the style's hand (MNIST t10k, one pen, or a font),
    and what was drawn."""
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

