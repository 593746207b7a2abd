"""The second look on validation pages: what each threshold (model.views_below) reads and how often it rereads.

    python bench/views.py --data ../shared/data --seeds 8 9 10 11 --json     # 2,000 pages a seed
    python bench/views.py --quick --json                                     # the committed sample (tests)

Validation pages only: the checkpoint's held-out training-split digits (data.val_holdout) on its own page
settings, never t10k. Each page is read as the app reads it (preprocess, the Predictor's runtime); then the
canvas and every view of nextnum/tta.py are read, so that any threshold's readings follow: below the threshold
the views vote (tta.vote), above it the canvas's reading stands. Also each of the views left out in turn at the
checkpoint's own threshold (or 0.9), to show that each one earns its place.
"""
from __future__ import annotations

import argparse

import numpy as np

from _common import checkpoint_path, emit_json, machine, table

THRESHOLDS = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0)


def read_pages(pred, bank, data_cfg, seeds: list[int], samples: int) -> list[dict]:
    """Per page: the truth, and (text, whole-string probability) for the canvas and for each view."""
    from nextnum import tta
    from nextnum.predictor import _readings
    from nextnum.scenes import fixed_pages
    rows = []
    for seed in seeds:
        for sc in fixed_pages(bank, samples, data_cfg, seed, 1.0):
            for page, true in zip(sc.images, sc.texts):
                pre = pred.preprocess(page)
                if pre.empty:
                    rows.append({"true": true, "reads": [("", 0.0)] * (1 + len(tta.VIEWS))})
                    continue
                canvases = np.stack([pre.canvas] + [tta.warp(pre.canvas, v) for v in tta.VIEWS])[:, None]
                g = pred.read(canvases)
                rows.append({"true": true, "reads": [(t, c) for t, _, c in (_readings(g.row(i)) for i in range(len(canvases)))]})
    return rows


def accuracy(rows: list[dict], threshold: float, keep: list[int] | None = None) -> tuple[float, float]:
    """(share read right, share reread) with views `keep` (indices into tta.VIEWS; all by default)."""
    from nextnum import tta
    keep = range(len(tta.VIEWS)) if keep is None else keep
    right = reread = 0
    for r in rows:
        text, p = r["reads"][0]
        if p < threshold:
            reread += 1
            votes = [r["reads"][0]] + [r["reads"][1 + k] for k in keep]
            text = votes[tta.vote(votes)[0]][0]
        right += text == r["true"]
    return right / len(rows), reread / len(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", help="checkpoint folder (default: the shipped model)")
    ap.add_argument("--data", default="../shared/data", help="MNIST root (torchvision layout); its training split")
    ap.add_argument("--seeds", type=int, nargs="+", default=[8, 9, 10, 11])
    ap.add_argument("--samples", type=int, default=2000, help="pages a seed")
    ap.add_argument("--quick", action="store_true", help="20 pages of the committed sample (tests)")
    ap.add_argument("--json", action="store_true", help="print one line of JSON last")
    args = ap.parse_args()
    from nextnum import Predictor, tta
    from nextnum.data import load_fixture, load_mnist
    ckpt = checkpoint_path(args.checkpoint)
    pred = Predictor.load(ckpt)
    cfg = pred.config
    if args.quick:
        bank, seeds, samples, where = load_fixture(), [8], 20, "tests/fixtures sample (training digits)"
    else:
        _, bank = load_mnist(args.data, train=True).split(cfg.data.val_holdout)
        seeds, samples, where = args.seeds, args.samples, f"the {cfg.data.val_holdout} held-out training-split digits"
    rows = read_pages(pred, bank, cfg.data, seeds, samples)
    sweep = [dict(zip(("threshold", "accuracy", "reread"), (t, *accuracy(rows, t)))) for t in THRESHOLDS]
    at = cfg.model.views_below or 0.9
    left_out = [{"view": list(v), "accuracy": accuracy(rows, at, [k for k in range(len(tta.VIEWS)) if k != i])[0]}
                for i, v in enumerate(tta.VIEWS)]
    print(f"{len(rows)} validation pages ({where}), seeds {seeds}")
    print(table(["threshold", "read right", "reread"], [[s["threshold"], f"{s['accuracy']:.2%}", f"{s['reread']:.1%}"] for s in sweep]))
    print(table([f"left out at {at}", "read right"], [[tuple(r["view"]), f"{r['accuracy']:.2%}"] for r in left_out]))
    if args.json:
        emit_json({"bench": "views", "checkpoint": str(ckpt), "machine": machine(), "pages": len(rows), "seeds": seeds,
                   "digits": where, "views": [list(v) for v in tta.VIEWS], "threshold_shipped": cfg.model.views_below,
                   "sweep": sweep, "left_out_at": at, "left_out": left_out})


if __name__ == "__main__":
    main()
