"""A thin "1" and a "7" at gaps of 0.2-0.7 digit heights: what the model reads, and where the "7"'s map lies.

    python bench/thin_one.py [--checkpoint DIR] [--json]

For each gap: the reading, its confidence, and the share of the second digit's cross-attention
(mapped onto the drawing) that lies right of the middle of the gap. The drawing is the one
tests/test_predictor.py uses (tests/drawings.py), at 0.5 heights.
"""
from __future__ import annotations

import argparse
import json

from _common import checkpoint_path, machine, table  # also puts the repo and tests/ on sys.path
from drawings import gap_middle, thin_one_far_seven

GAPS = (0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", help="checkpoint folder (default: the shipped model)")
    ap.add_argument("--quick", action="store_true", help="three gaps only (tests)")
    ap.add_argument("--json", action="store_true", help="print one line of JSON last")
    args = ap.parse_args()
    from nextnum import Predictor
    ckpt = checkpoint_path(args.checkpoint)
    pred = Predictor.load(ckpt)
    rows = []
    for gap in GAPS[::4] if args.quick else GAPS:
        p = pred.predict(thin_one_far_seven(gap))
        right = None
        if len(p.text) >= 2:
            heat = p.attention.heat[1]
            right = float(heat[:, gap_middle(gap):].sum() / heat.sum())
        rows.append({"gap": gap, "read": p.text, "confidence": round(p.confidence, 3),
                     "second_map_right_of_gap": None if right is None else round(right, 3)})
    print(table(["gap (digit heights)", "read", "confidence", "2nd digit's map right of the gap"],
                [[r["gap"], r["read"], f"{r['confidence']:.2f}",
                  "-" if r["second_map_right_of_gap"] is None else f"{r['second_map_right_of_gap']:.0%}"] for r in rows]))
    if args.json:
        print(json.dumps({"bench": "thin_one", "checkpoint": str(ckpt), "machine": machine(), "rows": rows}))


if __name__ == "__main__":
    main()
