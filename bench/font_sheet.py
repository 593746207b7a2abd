"""A contact sheet of digits in the training fonts: which ways of writing 1, 4, 7 and 9 the training data holds.

    python bench/font_sheet.py --config configs/reading.json --text 1479 --out docs/training_fonts.png

One row per font that the config's data.fonts globs find (in the order found), the text drawn in it,
black on white, the font's name beside it. Prints how many fonts it drew.
"""
from __future__ import annotations

import argparse
import glob
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from _common import ROOT


def sheet(fonts: list[Path], text: str, size: int = 44, columns: int = 3) -> Image.Image:
    """The text in each font, `columns` fonts to a row, each cell captioned with its font's name."""
    cell_w, cell_h = size * (len(text) + 1) + 200, size + 24
    rows = -(-len(fonts) // columns)
    page = Image.new("L", (cell_w * columns, cell_h * rows), 255)
    draw = ImageDraw.Draw(page)
    label = ImageFont.load_default()
    for i, path in enumerate(fonts):
        x, y = (i % columns) * cell_w, (i // columns) * cell_h
        font = ImageFont.truetype(str(path), size)
        draw.text((x + 8, y + 4), " ".join(text), font=font, fill=0)
        draw.text((x + size * (len(text) + 1) + 16, y + cell_h // 2 - 6), path.stem.split("-latin")[0], font=label, fill=90)
    return page


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "reading.json"))
    ap.add_argument("--text", default="1479")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    from nextnum.config import Config
    globs = Config.load(args.config).data.fonts
    fonts = sorted({Path(p) for g in globs for p in glob.glob(g if Path(g).is_absolute() else str(ROOT / g))})
    if not fonts:
        raise SystemExit(f"error: no fonts found by {globs} (bash configs/fonts.sh fetches the handwriting ones)")
    img = sheet(fonts, args.text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    img.save(args.out, optimize=True)
    print(f"{len(fonts)} fonts, {np.asarray(img).shape[1]}x{np.asarray(img).shape[0]} px -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
