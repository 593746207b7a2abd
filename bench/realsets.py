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
from pathlib import Path

import cv2
import numpy as np

import _realsets_glyphs
from _common import DATA  # also puts the repo on sys.path
from _realsets_draw import photo, sketch  # bench/_common.py draws its photos and sketches with these too
from _realsets_glyphs import HERSHEY, find_fonts, folder_fonts

STYLES = ("sketch-mnist", "sketch-font", "photo", "photo-mnist", "sketch-pens", "photo-pens")


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
    ap.add_argument("--data", default=str(DATA), help="MNIST root (t10k is used)")
    ap.add_argument("--quick", action="store_true", help="3 images per style; the committed digit sample, not MNIST")
    ap.add_argument("--font-dir", default=None, help="draw the font styles in these fonts only (e.g. fonts/held-out: "
                    "many hands never trained on, with flagged 1s, crossed 7s, closed and open 4s)")
    ap.add_argument("--json", action="store_true", help="print one line of JSON last")
    args = ap.parse_args(argv)
    if args.quick:
        args.n = 3

    _realsets_glyphs.FONTS_ONLY = args.font_dir is not None  # the font styles draw no Hershey face
    fonts = folder_fonts(args.font_dir) if args.font_dir is not None else find_fonts()
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
