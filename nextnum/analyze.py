"""Quantify what the attention learned, on canvases of t10k digits whose boxes are known.

    python -m nextnum.analyze --data ../shared/data --samples 500 --out runs/analysis [--json]

For each decoding step k that reads a digit, per decoder layer and head (and their average):
- mass: share of the cross-attention that falls inside the true k-th digit's box;
- hit: the most-attended token lies in that box;
- order: the attention centre moves left to right from one digit to the next.
faithfulness_summary aggregates faithful.faithfulness (bench/faithfulness.py reports it).
And where the readings fail: accuracy by how close the digits sit (the smallest gap between
neighbours, in digit heights; below 0 they overlap) and by digit height in canvas pixels.
Writes analysis.json and figures (mass per layer x head, attention centre vs digit centre,
accuracy by layout, a sheet of misread canvases).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .data import Batch, fixed_batches, load_mnist, token_masks
from .evaluate import score
from .model import NextNum


@torch.inference_mode()
def attention_stats(model: NextNum, batches: list[Batch]) -> dict[str, Any]:
    """Pure measurement over given canvases; returns per-(layer, head) and averaged figures."""
    mcfg = model.cfg
    xs = torch.tensor(mcfg.token_centres()[1]).repeat(mcfg.grid[0])  # (N,) token centre x, row-major
    L, H = mcfg.dec_layers, mcfg.heads
    mass_sum = torch.zeros(L + 1, H + 1)
    hit_sum = torch.zeros(L + 1, H + 1)
    n_steps = ordered = n_seq = 0
    centres, truths, preds = [], [], []
    for b in batches:
        gen = model.generate(b.images, return_attn=True)
        pred = gen.texts()
        preds += pred
        masks = token_masks(b, mcfg)  # (B, K, N)
        cross = gen.cross_attn  # (B, S, L, H, N)
        S = cross.shape[1]
        # add the head-mean and layer-mean as an extra row / column
        c = torch.cat([cross, cross.mean(2, keepdim=True)], 2)
        c = torch.cat([c, c.mean(3, keepdim=True)], 3)  # (B, S, L+1, H+1, N)
        for i in range(len(pred)):
            n = int(b.lengths[i])
            k = min(n, S, len(pred[i]))  # steps that read a digit of the true string
            if k == 0:
                continue
            m = masks[i, :k]  # (k, N)
            w = c[i, :k]  # (k, L+1, H+1, N)
            mass_sum += (w * m[:, None, None]).sum(-1).sum(0)
            top = w.argmax(-1)  # (k, L+1, H+1)
            hit_sum += m.gather(1, top.flatten(1)).view_as(top).sum(0)
            n_steps += k
            cx = (w[:, -1, -1] * xs).sum(-1)  # (k,) centre of the averaged map
            centres += cx.tolist()
            truths += ((b.boxes[i, :k, 2] + b.boxes[i, :k, 3]) / 2).tolist()
            if k >= 2:
                n_seq += 1
                ordered += bool((cx[1:] > cx[:-1]).all())
    mass, hit = (mass_sum / max(n_steps, 1)).numpy(), (hit_sum / max(n_steps, 1)).numpy()
    read = score(zip(preds, (t for b in batches for t in b.texts)))
    return {"samples": read["samples"], "sequence_accuracy": read["sequence_accuracy"],
            "steps": n_steps, "mass_in_box": mass.tolist(), "top_token_in_box": hit.tolist(),
            "mass_in_box_mean": float(mass[-1, -1]), "top_token_in_box_mean": float(hit[-1, -1]),
            "left_to_right": ordered / max(n_seq, 1), "centre_error_px": float(np.mean(np.abs(np.array(centres) - np.array(truths)))) if centres else None,
            "layers": L, "heads": H, "_centres": centres, "_truths": truths, "_preds": preds}


def faithfulness_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Aggregate faithful.faithfulness rows (one per digit read, over any number of images): the mean
    drop in each digit's probability when its most-attended tokens are blanked, against when as many
    random inked tokens are; and the share of digits for which the top tokens hurt more."""
    if not rows:
        return {"digits": 0, "mean_prob": None, "mean_drop_top": None, "mean_drop_random": None,
                "top_hurts_more": None}
    p = np.array([r["prob"] for r in rows])
    top = p - np.array([r["top_masked_prob"] for r in rows])
    rand = p - np.array([r["random_masked_prob"] for r in rows])
    return {"digits": len(rows), "mean_prob": float(p.mean()), "mean_drop_top": float(top.mean()),
            "mean_drop_random": float(rand.mean()), "top_hurts_more": float((top > rand).mean())}


GAP_BINS = (("overlapping (< -0.1)", -0.1), ("overlapping (-0.1..0)", 0.0), ("touching (0..0.1)", 0.1),
            ("close (0.1..0.3)", 0.3), ("apart (>= 0.3)", float("inf")))
HEIGHT_BINS = (("< 25 px", 25.0), ("25-30 px", 30.0), ("30-40 px", 40.0), ("40-50 px", 50.0), (">= 50 px", float("inf")))
LAYOUT_TITLES = (("by_gap", "smallest gap between neighbours (digit heights)"),
                 ("by_height", "digit height on the canvas (px)"))


def layout(b: Batch) -> tuple[list[float | None], list[float]]:
    """Per canvas: the smallest horizontal gap between neighbouring digits in units of their mean
    height (None for one digit; < 0 when boxes overlap), and the mean digit height in pixels."""
    gaps, heights = [], []
    for box, n in zip(b.boxes, b.lengths.tolist()):
        bx = box[:n]
        h = float((bx[:, 1] - bx[:, 0]).mean())
        heights.append(h)
        gaps.append(float(((bx[1:, 2] - bx[:-1, 3]) / h).min()) if n > 1 else None)
    return gaps, heights


def accuracy_by_layout(batches: list[Batch], preds: list[str]) -> dict[str, dict[str, list[float]]]:
    """Pure: {"by_gap": {bin: [accuracy, count]}, "by_height": {...}} for predictions in batch order.
    by_gap counts multi-digit canvases only."""
    rows = []
    for b in batches:
        gaps, heights = layout(b)
        rows += zip(gaps, heights, b.texts)
    if len(rows) != len(preds):
        raise ValueError(f"{len(preds)} predictions for {len(rows)} canvases")

    def binned(bins, values):
        tally = {name: [0, 0] for name, _ in bins}
        for v, ok in values:
            name = next(name for name, hi in bins if v < hi)
            tally[name][0] += ok
            tally[name][1] += 1
        return {k: [a / n if n else None, n] for k, (a, n) in tally.items()}
    right = [p == t for p, (_, _, t) in zip(preds, rows)]
    return {"by_gap": binned(GAP_BINS, [(g, ok) for (g, _, _), ok in zip(rows, right) if g is not None]),
            "by_height": binned(HEIGHT_BINS, [(h, ok) for (_, h, _), ok in zip(rows, right)])}


def figures(stats: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    out.mkdir(parents=True, exist_ok=True)
    L, H = stats["layers"], stats["heads"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for ax, key, title in ((axes[0], "mass_in_box", "attention mass inside the digit read"),
                           (axes[1], "top_token_in_box", "most-attended token inside it")):
        m = np.array(stats[key])
        im = ax.imshow(m, vmin=0, vmax=1, cmap="viridis")
        ax.set_xticks(range(H + 1), [f"h{h}" for h in range(H)] + ["mean"])
        ax.set_yticks(range(L + 1), [f"layer {l}" for l in range(L)] + ["mean"])
        for (r, cc), v in np.ndenumerate(m):
            ax.text(cc, r, f"{v:.2f}", ha="center", va="center", color="w" if v < 0.6 else "k", fontsize=8)
        ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=axes, shrink=0.8)
    p1 = out / "attention_in_box.png"
    fig.savefig(p1, dpi=110, bbox_inches="tight")
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(stats["_truths"], stats["_centres"], s=4, alpha=0.4)
    ax.plot([0, 168], [0, 168], "k--", lw=0.8)
    ax.set_xlabel("true digit centre x (canvas px)")
    ax.set_ylabel("cross-attention centre x (px)")
    ax.set_title("each step looks at its digit", fontsize=10)
    p2 = out / "attention_centre.png"
    fig.savefig(p2, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return [p1, p2]


def error_figures(layout_acc: dict[str, Any], batches: list[Batch], preds: list[str], out: Path,
                  most: int = 24) -> list[Path]:
    """Accuracy by layout as bars, and a sheet of up to `most` misread canvases ("read X, is Y")."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    out.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.2))
    for ax, (key, title) in zip(axes, LAYOUT_TITLES):
        names = list(layout_acc[key])
        acc = [layout_acc[key][k][0] or 0.0 for k in names]
        bars = ax.bar(range(len(names)), acc, color="tab:blue")
        for bar, k in zip(bars, names):
            a, n = layout_acc[key][k]
            ax.text(bar.get_x() + bar.get_width() / 2, 0.02, f"{a:.1%}\nn={n}" if n else "n=0",
                    ha="center", va="bottom", color="w", fontsize=8)
        ax.set_xticks(range(len(names)), [k.replace(" (", "\n(") for k in names], fontsize=7)
        ax.set_ylim(0, 1)
        ax.set_ylabel("sequence accuracy")
        ax.set_title(title, fontsize=10)
    p1 = out / "accuracy_by_layout.png"
    fig.savefig(p1, dpi=110, bbox_inches="tight")
    plt.close(fig)
    canvases = [(img, t) for b in batches for img, t in zip(b.images, b.texts)]
    wrong = [(img, p, t) for (img, t), p in zip(canvases, preds) if p != t][:most]
    cols = 4
    rows = max(1, -(-len(wrong) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 2.6, rows * 1.55), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (img, p, t) in zip(axes.flat, wrong):
        ax.imshow(img[0].numpy(), cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(f"read {p or '-'}, is {t}", fontsize=8, color="tab:red")
    p2 = out / "misread.png"
    fig.savefig(p2, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return [p1, p2]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nextnum.analyze", description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the shipped model)")
    ap.add_argument("--data", default="../shared/data", help="MNIST root; canvases use t10k only")
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/analysis", help="folder for analysis.json and figures")
    ap.add_argument("--json", action="store_true", help="print one line of JSON last")
    args = ap.parse_args(argv)
    from .checkpoint import CheckpointError, load
    try:
        model, cfg, _ = load(args.checkpoint)
        bank = load_mnist(args.data, train=False)
    except (CheckpointError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    batches = fixed_batches(bank, args.samples, cfg.data, (cfg.model.img_h, cfg.model.img_w), args.seed,
                            match_strokes=cfg.model.match_strokes)
    stats = attention_stats(model, batches)
    out = Path(args.out)
    layout_acc = accuracy_by_layout(batches, stats["_preds"])
    paths = figures(stats, out) + error_figures(layout_acc, batches, stats["_preds"], out)
    public = {k: v for k, v in stats.items() if not k.startswith("_")} | layout_acc
    public["figures"] = [str(p) for p in paths]
    (out / "analysis.json").write_text(json.dumps(public, indent=2) + "\n")
    if args.json:
        print(json.dumps(public))
    else:
        print(f"{public['samples']} canvases, sequence accuracy {public['sequence_accuracy']:.3f}")
        print(f"attention mass inside the digit being read (layer/head mean): {public['mass_in_box_mean']:.3f}")
        print(f"most-attended token inside that digit: {public['top_token_in_box_mean']:.3f}")
        print(f"attention centre moves left to right: {public['left_to_right']:.3f} of multi-digit readings")
        print(f"mean |centre - digit centre|: {public['centre_error_px']:.1f} px")
        for key, title in LAYOUT_TITLES:
            print(f"sequence accuracy by {title}:")
            for name, (acc, n) in public[key].items():
                print(f"  {name:<22} {'-' if acc is None else f'{acc:.3f}':>6}  ({n} canvases)")
        print(f"figures in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
