"""Does the attention matter? Blank the most-attended tokens of each digit read, against as many random ones.

    python bench/faithfulness.py [--checkpoint DIR] [--frac 0.1] [--json]
    python bench/faithfulness.py --quick --json        # the six example images only

For every digit read in every image, nextnum.faithful.faithfulness blanks the canvas under the `frac` of
tokens that digit's cross-attention weighs most, reads again, and notes the digit's probability; then
does the same with as many tokens over ink picked at random. Reported: the mean probability of the
digits read, the mean drop with the top tokens blanked and with random ones blanked, and the share of
digits whose top tokens hurt more. Images: examples/*.png, mouse-drawn numbers (tests/drawings.py,
seeded), and sketchpad drawings of handwriting (bench/realsets.py; MNIST t10k when ../shared/data has
it, else the committed sample). Prints a table; --json adds one JSON line last.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402  (also puts the repository and tests/ on sys.path)

DRAWN = ("17", "305", "4096", "28", "71")  # mouse-drawn numbers, one generator seed each


def image_sets(quick: bool, sketches: int) -> dict[str, list[np.ndarray]]:
    """Name -> images: the examples; with quick=False also mouse-drawn numbers and handwriting sketches."""
    sets = {"examples": [cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted((C.ROOT / "examples").glob("*.png"))]}
    if not quick:
        from drawings import stroke_number
        sets["mouse-drawn"] = [stroke_number(t, np.random.default_rng(i))[0] for i, t in enumerate(DRAWN)]
        sets["handwriting sketches"] = [img for img, _ in C.sketches(sketches, seed=3)]
    return sets


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", help="checkpoint folder (default: the shipped model)")
    ap.add_argument("--frac", type=float, default=0.1, help="share of the tokens blanked for each digit")
    ap.add_argument("--sketches", type=int, default=40, help="handwriting sketches")
    ap.add_argument("--quick", action="store_true", help="the example images only")
    ap.add_argument("--json", action="store_true", help="print one line of JSON last")
    args = ap.parse_args(argv)
    from nextnum import Predictor
    from nextnum.analyze import faithfulness_summary
    from nextnum.faithful import faithfulness
    ckpt = C.checkpoint_path(args.checkpoint)
    pred = Predictor.load(ckpt)
    res = {"bench": "faithfulness", "checkpoint": str(ckpt), "machine": C.machine(), "frac": args.frac, "sets": {}}
    every = []
    for name, images in image_sets(args.quick, args.sketches).items():
        rows = [r for img in images for r in faithfulness(pred, img, frac=args.frac)]
        every += rows
        res["sets"][name] = {"images": len(images), **faithfulness_summary(rows)}
    res["all"] = faithfulness_summary(every)

    def cells(s: dict) -> list:
        if not s["digits"]:
            return [0, "-", "-", "-", "-"]
        return [s["digits"], f"{s['mean_prob']:.3f}", f"{s['mean_drop_top']:.3f}", f"{s['mean_drop_random']:.3f}",
                f"{s['top_hurts_more']:.0%}"]
    print(f"Blanking {args.frac:.0%} of the tokens for each digit read (checkpoint {ckpt})\n")
    print(C.table(["images", "digits read", "mean probability", "mean drop: top tokens blanked",
                   "mean drop: random inked tokens", "digits where top hurts more"],
                  [[f"{n} ({s['images']})", *cells(s)] for n, s in res["sets"].items()]
                  + [["all", *cells(res["all"])]]))
    if args.json:
        C.emit_json(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
