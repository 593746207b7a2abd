"""Ablations under a fixed time budget: vary one setting at a time from a base config.

    python -m nextnum.sweep --grid configs/sweep.json --budget-minutes 4 --out runs/sweep

configs/sweep.json: {"base": "configs/default.json", "axes": {"model.heads": [1, 2, 4], ...}}.
An axis may set several keys at once: "model.patch,model.stride": [[3, 3], [3, 2]].
Each variant trains for the same wall time, then is scored on t10k canvases (sequence accuracy),
counted (parameters) and timed (greedy reading of one canvas, one thread). Writes results.csv,
results.md and results.png in --out.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

import torch

from .config import Config


def variants(base: Config, axes: dict[str, list[Any]]) -> list[tuple[str, Config]]:
    """The base, then one variant per axis value that differs from the base (one factor at a time)."""
    out = [("base", base)]
    for axis, values in axes.items():
        keys = axis.split(",")
        for v in values:
            vals = v if len(keys) > 1 else [v]
            d = copy.deepcopy(base.to_dict())
            for k, x in zip(keys, vals):
                sec, name = k.split(".")
                d[sec][name] = x
            cfg = Config.from_dict(d)
            if cfg.to_dict() != base.to_dict():
                out.append((",".join(f"{k.split('.')[1]}={x}" for k, x in zip(keys, vals)), cfg))
    return out


def latency_ms(model: torch.nn.Module, hw: tuple[int, int]) -> float:
    """Median time in ms of one greedy reading of a canvas with a block of ink, at one thread."""
    from .timing import median_ms
    x = torch.zeros(1, 1, *hw)
    x[..., hw[0] // 4: 3 * hw[0] // 4, hw[1] // 4: 3 * hw[1] // 4] = 1
    return median_ms(lambda: model.generate(x))


def run(grid: dict[str, Any], budget_min: float, out: Path, data_root: str, samples: int,
        threads: int = 1) -> list[dict[str, Any]]:
    from . import checkpoint
    from .evaluate import evaluate_synthetic
    from .train import train
    base = Config.load(grid["base"])
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, cfg in variants(base, grid["axes"]):
        cfg.train.time_budget_min = budget_min
        cfg.train.steps = 0  # the clock alone ends each run
        cfg.train.threads = threads
        folder = out / name.replace(",", "_").replace("=", "-")
        m = train(cfg, folder, data_root, resume=False)
        model, _, _ = checkpoint.load(folder)
        res = evaluate_synthetic(model, data_root, samples, 0, cfg.data)
        row = {"variant": name, "parameters": model.num_params(), "tokens": cfg.model.grid[0] * cfg.model.grid[1],
               "steps": m["steps"], "minutes": budget_min, "sequence_accuracy": round(res["sequence_accuracy"], 4),
               "digit_accuracy": round(res["digit_accuracy"], 4),
               "latency_ms": round(latency_ms(model, (cfg.model.img_h, cfg.model.img_w)), 2)}
        rows.append(row)
        print(json.dumps(row), flush=True)
        write(rows, out)
    return rows


def write(rows: list[dict[str, Any]], out: Path) -> None:
    import pandas as pd
    pd.DataFrame(rows).to_csv(out / "results.csv", index=False)
    # written by hand: pandas' to_markdown needs the tabulate package, which nothing else here uses
    cols = list(rows[0])
    md = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    md += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    (out / "results.md").write_text("\n".join(md) + "\n")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.5, 4))
    span = max(r["parameters"] for r in rows) - min(r["parameters"] for r in rows) or 1
    for i, r in enumerate(rows):
        ax.scatter(r["parameters"], r["sequence_accuracy"], s=20 + 8 * r["latency_ms"])
        # labels of points that (nearly) coincide are stacked instead of printed over each other
        near = sum(abs(q["parameters"] - r["parameters"]) < 0.05 * span
                   and abs(q["sequence_accuracy"] - r["sequence_accuracy"]) < 0.03 for q in rows[:i])
        ax.annotate(r["variant"], (r["parameters"], r["sequence_accuracy"]), fontsize=7, xytext=(3, 3 - 9 * near),
                    textcoords="offset points")
    ax.set_xlabel("parameters")
    ax.set_ylabel("sequence accuracy (t10k canvases)")
    ax.set_title(f"same wall-time budget per variant ({rows[0]['minutes']} min); marker size = latency", fontsize=9)
    fig.savefig(out / "results.png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nextnum.sweep", description=__doc__.split("\n")[0])
    ap.add_argument("--grid", default="configs/sweep.json")
    ap.add_argument("--budget-minutes", type=float, default=4.0, help="training wall time per variant")
    ap.add_argument("--out", default="runs/sweep")
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--samples", type=int, default=500, help="t10k canvases to score each variant on")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per run (1 is steadiest on a shared CPU)")
    args = ap.parse_args(argv)
    try:
        grid = json.loads(Path(args.grid).read_text())
        variants(Config.load(grid["base"]), grid["axes"])  # fail early on a bad grid
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"error: bad grid {args.grid}: {e}", file=sys.stderr)
        return 2
    run(grid, args.budget_minutes, Path(args.out), args.data, args.samples, args.threads)
    print(f"results in {args.out}/results.csv, results.md, results.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
