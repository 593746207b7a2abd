"""Training speed: wall time to 90/95/97% validation sequence accuracy, samples/s, and the curve.

    python bench/train_speed.py --config configs/default.json --data ../shared/data --out runs/bench_train
    python bench/train_speed.py --from-metrics checkpoints/nextnum/metrics.json   # a finished run's history
    python bench/train_speed.py --quick --json --out /tmp/bench_train   # 15 steps of configs/smoke.json

A run fine-tuned from another (train.py --init) carries that run's metrics; its history is shown after
its parent's, on one time axis, with the total time.

Validation canvases are built from train-split digits held out of training (never t10k); the
shipped model's t10k figure comes from `python -m nextnum.evaluate`. Prints a table and, with
--json, one line of JSON last. The curve goes to OUT/train_curve.png.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

THRESHOLDS = (0.90, 0.95, 0.97)
SMOKE = Path(__file__).resolve().parent.parent / "configs" / "smoke.json"  # --quick trains this


def lineage(metrics: dict[str, Any]) -> dict[str, Any]:
    """A fine-tuned run's metrics with the runs it started from (metrics["init_metrics"], train.py --init)
    put in front: one history over cumulative steps, wall time and samples, and the total training time."""
    parent = metrics.get("init_metrics")
    if not parent or not parent.get("history"):
        return metrics
    # the weights handed on: the step the parent shipped (bench/ship.py records it as best_step), else its best
    # validation checkpoint, not its last step
    best_local = parent.get("best_step") or max(parent["history"], key=lambda h: h["val_seq_acc"])["step"]
    own_steps = parent["steps"]
    parent = lineage(parent)
    from_step = parent["steps"] - own_steps + best_local
    last = parent["history"][-1]
    moved = [{**h, "step": h["step"] + parent["steps"], "elapsed_s": round(h["elapsed_s"] + parent["train_seconds"], 1),
              "samples_seen": (h.get("samples_seen") or 0) + (last.get("samples_seen") or 0)} for h in metrics["history"]]
    return {**metrics, "history": parent["history"] + moved, "steps": parent["steps"] + metrics["steps"],
            "train_seconds": round(parent["train_seconds"] + metrics["train_seconds"], 1),
            "best_val_seq_acc": max(parent["best_val_seq_acc"], metrics["best_val_seq_acc"]),
            "stage_starts": parent.get("stage_starts", []) + [{"step": parent["steps"], "seconds": parent["train_seconds"],
                                                               "from_step": from_step}]}


def summarise(metrics: dict[str, Any]) -> dict[str, Any]:
    hist = metrics["history"]
    res: dict[str, Any] = {"steps": metrics["steps"], "train_seconds": metrics["train_seconds"],
                           "best_val_seq_acc": metrics["best_val_seq_acc"], "parameters": metrics["parameters"]}
    for t in THRESHOLDS:
        hit = next((h for h in hist if h["val_seq_acc"] >= t), None)
        res[f"to_{int(t * 100)}"] = None if hit is None else {"step": hit["step"], "seconds": hit["elapsed_s"]}
    res["fine_tuned_from_steps"] = [st.get("from_step", st["step"]) for st in metrics.get("stage_starts", [])]
    last = hist[-1]
    res["samples_per_s"] = round(last["samples_seen"] / max(last["elapsed_s"], 1e-9), 1) if last.get("samples_seen") else None
    return res


def plot(metrics: dict[str, Any], path: Path, marks: dict[int, str] | None = None) -> None:
    """Validation against wall time and against training canvases; marks: {step: what changed there}."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    hist = metrics["history"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
    for ax, key, scale, label in ((axes[0], "elapsed_s", 60, "wall time (min)"),
                                  (axes[1], "samples_seen", 1e6, "training canvases (millions)")):
        ax.plot([(h.get(key) or 0) / scale for h in hist], [h["val_seq_acc"] for h in hist], "o-", ms=2)
        at = {h["step"]: (h.get(key) or 0) / scale for h in hist}
        for st in metrics.get("stage_starts", []):  # where a fine-tuning run took over (--init)
            x = st["seconds"] / 60 if key == "elapsed_s" else max((v for k, v in at.items() if k <= st["step"]), default=0)
            ax.axvline(x, color="tab:orange", lw=0.8)
            ax.annotate(f"fine-tuning the weights of step {st.get('from_step', st['step']):,}", (x, 0.05), fontsize=7,
                        xytext=(3, 0), rotation=90, textcoords="offset points", color="tab:orange")
        for step, text in (marks or {}).items():
            x = max((v for k, v in at.items() if k <= step), default=0)
            ax.axvline(x, color="tab:green", lw=0.8, ls=":")
            ax.annotate(text, (x, 0.05), fontsize=7, xytext=(3, 0), rotation=90, textcoords="offset points",
                        color="tab:green")
        for t in THRESHOLDS:
            ax.axhline(t, color="grey", lw=0.6, ls="--")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("validation sequence accuracy")
    axes[0].set_ylim(0, 1)
    procs = metrics.get("processes", 1)
    run = f"{metrics.get('threads', '?')} thread(s)" + (f" x {procs} processes" if procs > 1 else "")
    fig.suptitle(f"{metrics['parameters']:,} params; last stage: {run}", fontsize=9)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="configs/default.json")
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--out", default="runs/bench_train")
    ap.add_argument("--steps", type=int, default=None, help="override train.steps (e.g. tiny for a smoke run)")
    ap.add_argument("--fixture", action="store_true", help="train on the committed digit sample (smoke)")
    ap.add_argument("--from-metrics", default=None, help="summarise an existing metrics.json instead of training")
    ap.add_argument("--quick", action="store_true", help="15 steps of configs/smoke.json on the committed digit sample")
    ap.add_argument("--mark", nargs="*", default=[], metavar="STEP=TEXT",
                    help="a vertical line at the (lineage) step where something changed, e.g. the validation pages")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.config, args.steps, args.fixture = str(SMOKE), 15, True
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.from_metrics:
        metrics = lineage(json.loads(Path(args.from_metrics).read_text()))
    else:
        from nextnum.config import Config
        from nextnum.data import load_fixture
        from nextnum.train import train
        cfg = Config.load(args.config)
        if args.steps is not None:
            cfg.train.steps = args.steps
        metrics = lineage(train(cfg, out / "checkpoint", args.data, bank=load_fixture() if args.fixture else None,
                                resume=False))
    res = summarise(metrics)
    res.update(machine=f"{platform.machine()}, {os.cpu_count()} cores", curve=str(out / "train_curve.png"))
    plot(metrics, out / "train_curve.png", {int(k): v for k, v in (m.split("=", 1) for m in args.mark)})
    print(f"{'target':>8} {'step':>7} {'minutes':>8}")
    for t in THRESHOLDS:
        r = res[f"to_{int(t * 100)}"]
        print(f"{t:>8.0%} {r['step'] if r else '-':>7} {r['seconds'] / 60 if r else float('nan'):>8.1f}")
    print(f"best {res['best_val_seq_acc']:.3f} after {res['steps']} steps, {res['train_seconds'] / 60:.1f} min, "
          f"{res['samples_per_s']} samples/s")
    if args.json:
        print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
