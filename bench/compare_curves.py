"""Validation accuracy against training canvases and CPU time, one curve per run: designs compared at one budget.

    python bench/compare_curves.py --runs today=runs/compare/today strip=runs/compare/strip \\
        wide=runs/compare/wide control=runs/compare/control --out docs/compare.png --json

Each run folder's metrics.json (written at every best validation, and at the end) holds its history:
step, samples_seen, cpu_s (this process's CPU seconds, resumes included) and elapsed_s (wall). Prints a
table and, with --json, one line of JSON last.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from _common import emit_json


def summary(name: str, metrics: dict[str, Any]) -> dict[str, Any]:
    """The run's last and best validation, and what it had spent by its last validation."""
    hist = metrics["history"]
    last, best = hist[-1], max(hist, key=lambda h: h["val_seq_acc"])
    cpu = last.get("cpu_s")
    return {"run": name, "status": metrics["status"], "parameters": metrics["parameters"], "step": last["step"],
            "samples": last["samples_seen"], "cpu_s": cpu, "wall_s": last["elapsed_s"],
            "val_last": last["val_seq_acc"], "val_best": best["val_seq_acc"], "best_step": best["step"],
            "samples_per_cpu_s": round(last["samples_seen"] / cpu, 1) if cpu else None}


def plot(runs: dict[str, dict[str, Any]], path: str | Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for name, m in runs.items():
        h = m["history"]
        label = f"{name} ({m['parameters']:,} params)"
        axes[0].plot([r["samples_seen"] / 1000 for r in h], [r["val_seq_acc"] for r in h], "o-", ms=3, label=label)
        if all("cpu_s" in r for r in h):
            axes[1].plot([r["cpu_s"] / 60 for r in h], [r["val_seq_acc"] for r in h], "o-", ms=3, label=label)
    axes[0].set(xlabel="training canvases (thousands)", ylabel="validation: whole number right", ylim=(0, 1))
    axes[1].set(xlabel="CPU minutes of the training process (1 thread, validation included)")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower right")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", nargs="+", required=True, help="NAME=FOLDER, each a training run's output folder")
    ap.add_argument("--out", default=None, help="PNG of the curves")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    runs = {}
    for spec in args.runs:
        name, _, folder = spec.partition("=")
        runs[name] = json.loads((Path(folder) / "metrics.json").read_text())
    rows = [summary(n, m) for n, m in runs.items()]
    print(f"{'run':<10} {'status':<12} {'params':>8} {'step':>5} {'samples':>8} {'CPU min':>8} {'wall min':>9} "
          f"{'val last':>9} {'val best':>9}")
    for r in rows:
        cpu = f"{r['cpu_s'] / 60:.1f}" if r["cpu_s"] else "-"
        print(f"{r['run']:<10} {r['status']:<12} {r['parameters']:>8,} {r['step']:>5} {r['samples']:>8} {cpu:>8} "
              f"{r['wall_s'] / 60:>9.1f} {r['val_last']:>9.4f} {r['val_best']:>9.4f}")
    if args.out:
        plot(runs, args.out)
    if args.json:
        emit_json({"runs": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
