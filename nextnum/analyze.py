"""Quantify what the attention learned, on canvases of t10k digits whose boxes are known.

    python -m nextnum.analyze --data ../shared/data --samples 500 --out runs/analysis [--json]

For each decoding step k that reads a digit, per decoder layer and head (and their average):
- mass: share of the cross-attention that falls inside the true k-th digit's box;
- hit: the most-attended token lies in that box;
- order: the attention centre moves left to right from one digit to the next.
Writes analysis.json and figures (mass per layer x head, attention centre vs digit centre).
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
from .model import NextNum


@torch.inference_mode()
def attention_stats(model: NextNum, batches: list[Batch]) -> dict[str, Any]:
    """Pure measurement over given canvases; returns per-(layer, head) and averaged figures."""
    mcfg = model.cfg
    xs = torch.tensor(mcfg.token_centres()[1]).repeat(mcfg.grid[0])  # (N,) token centre x, row-major
    L, H = mcfg.dec_layers, mcfg.heads
    mass_sum = torch.zeros(L + 1, H + 1)
    hit_sum = torch.zeros(L + 1, H + 1)
    n_steps = ordered = n_seq = correct = 0
    centres, truths = [], []
    for b in batches:
        gen = model.generate(b.images, return_attn=True)
        pred = gen.texts()
        masks = token_masks(b, mcfg)  # (B, K, N)
        cross = gen.cross_attn  # (B, S, L, H, N)
        S = cross.shape[1]
        # add the head-mean and layer-mean as an extra row / column
        c = torch.cat([cross, cross.mean(2, keepdim=True)], 2)
        c = torch.cat([c, c.mean(3, keepdim=True)], 3)  # (B, S, L+1, H+1, N)
        for i in range(len(pred)):
            n = int(b.lengths[i])
            correct += pred[i] == b.texts[i]
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
    return {"samples": sum(len(b.lengths) for b in batches), "sequence_accuracy": correct / max(1, sum(len(b.lengths) for b in batches)),
            "steps": n_steps, "mass_in_box": mass.tolist(), "top_token_in_box": hit.tolist(),
            "mass_in_box_mean": float(mass[-1, -1]), "top_token_in_box_mean": float(hit[-1, -1]),
            "left_to_right": ordered / max(n_seq, 1), "centre_error_px": float(np.mean(np.abs(np.array(centres) - np.array(truths)))) if centres else None,
            "layers": L, "heads": H, "_centres": centres, "_truths": truths}


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
    batches = fixed_batches(bank, args.samples, cfg.data, (cfg.model.img_h, cfg.model.img_w), args.seed)
    stats = attention_stats(model, batches)
    out = Path(args.out)
    paths = figures(stats, out)
    public = {k: v for k, v in stats.items() if not k.startswith("_")}
    public["figures"] = [str(p) for p in paths]
    (out / "analysis.json").write_text(json.dumps(public, indent=2) + "\n")
    if args.json:
        print(json.dumps(public))
    else:
        print(f"{public['samples']} canvases, sequence accuracy {public['sequence_accuracy']:.3f}")
        print(f"attention mass inside the digit being read (layer/head mean): {public['mass_in_box_mean']:.3f}")
        print(f"most-attended token inside that digit: {public['top_token_in_box_mean']:.3f}")
        print(f"attention centre moves left to right: {public['left_to_right']:.3f} of multi-digit readings")
        print(f"mean |centre - digit centre|: {public['centre_error_px']:.1f} px;  figures in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
