"""Score candidate checkpoints on the product's own checks and choose one, not on validation alone.

    python bench/product_checks.py --run runs/full --realsets runs/realsets/s1 --json     # every snapshot of a run
    python bench/product_checks.py --checkpoints checkpoints/nextnum runs/full --t10k      # named folders

For each candidate: its validation accuracy (from its metrics.json: held-out train-split digits; with
--val-samples N, N more validation pages of the same digits, which the run never scored, so that
snapshots a few tenths apart are told apart by more than chance; with --val-configs, the pages of those
configs for every candidate, so that runs trained on different pages are compared on the same), the 1/7
grid (tests/sketch_checks.py: pass rate, reads right), numbers drawn from strokes (read right, and each
digit map's centre on its digit), numbers drawn small and as tall as the pad, numbers drawn in other hands (bench/hands.py: the worst variant), and
optionally the real-looking sets (bench/realsets.py folders) and the
2,000 t10k canvases (for the report only: never used to choose). The choice: among the candidates that
clear every bar in BARS, the best validation accuracy (the later step on a tie).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from _common import DATA, ROOT, emit_json, machine  # also puts the repo and tests/ on sys.path

BARS = {"grid_pass": 0.95, "drawn_centres_inside": 0.99, "small_read": 0.90, "large_read": 0.95, "hands_worst": 0.95,
        "sketch-mnist": 0.92, "sketch-font": 0.92,
        "photo": 0.92, "photo-mnist": 0.85}


def candidates(run: Path | None, named: list[str]) -> list[Path]:
    """Checkpoint folders: a run's snapshots (and its best) in step order, then the named ones."""
    found = []
    if run is not None:
        found += sorted((run / "snapshots").glob("[0-9]*"))
        if (run / "model.safetensors").is_file():
            found.append(run)
    return found + [Path(p) for p in named]


VAL_SEED = 1001  # the run validates on seed train.seed + 1: these pages are others


def more_validation(pred, samples: int, data_cfg=None) -> float:
    """Sequence accuracy on `samples` validation pages (the run's held-out train-split digits and its page
    settings, or data_cfg's, seed VAL_SEED), read as the run reads its own validation pages."""
    from nextnum.data import load_mnist
    from nextnum.evaluate import evaluate_synthetic
    cfg = pred.config
    _, val = load_mnist(DATA, train=True).split(cfg.data.val_holdout)
    return evaluate_synthetic(pred.model, None, samples, VAL_SEED, data_cfg or cfg.data, bank=val)["sequence_accuracy"]


def validation(pred, samples: int, val_configs: list[Path] | None = None) -> dict[str, float]:
    """{"val": ...}: the candidate's own pages, or with val_configs each config's pages ("val_<name>") and
    their mean, so that candidates trained on different pages are compared on the same ones."""
    if not val_configs:
        return {"val": more_validation(pred, samples)}
    from nextnum.config import Config
    out = {f"val_{c.stem}": more_validation(pred, samples, Config.load(c).data) for c in val_configs}
    return {**out, "val": sum(out.values()) / len(out)}


def score(ckpt: Path, realsets: Path | None, t10k: bool, drawn: int, maps_on_ink: bool = False,
          val_samples: int = 0, val_configs: list[Path] | None = None) -> dict[str, Any]:
    import torch
    from nextnum import Predictor
    from nextnum.evaluate import evaluate_app, evaluate_images
    from sketch_checks import drawn_large, drawn_numbers, drawn_small, hands, one_seven_grid, summary
    torch.set_num_threads(1)
    pred = Predictor.load(ckpt)
    if maps_on_ink:  # how the maps are drawn, not what is read: a run's snapshots are scored as they would ship
        pred.config.model.maps_on_ink = True
    m = pred.metrics
    row: dict[str, Any] = {"checkpoint": str(ckpt), "step": m.get("steps"), "val": m.get("best_val_seq_acc")}
    if val_samples:  # the choice is then made on the larger set; the run's own figure stays beside it
        row["val_run"] = row["val"]
        row.update(validation(pred, val_samples, val_configs))
    row.update(summary(one_seven_grid(pred), drawn_numbers(pred, drawn), drawn_small(pred), hands(pred),
                       drawn_large(pred)))
    if realsets is not None:
        for style in BARS:
            if (realsets / style / "labels.json").is_file():
                row[style] = evaluate_images(pred, realsets / style)[0]["sequence_accuracy"]
    if t10k:
        from nextnum.config import Config
        res = evaluate_app(pred, DATA, 2000, 0, Config.load(ROOT / "configs" / "full.json").data)
        row["t10k"], row["t10k_5_digits"] = res["sequence_accuracy"], res["by_length"]["5"]
    return row


def choose(rows: list[dict[str, Any]], bars: dict[str, float] = BARS) -> dict[str, Any] | None:
    """The candidate to ship: every bar cleared (bars a row was not scored on are skipped), then the best
    validation accuracy, the later step on a tie. None when no candidate clears them all."""
    ok = [r for r in rows if all(r[k] >= v for k, v in bars.items() if r.get(k) is not None)]
    return max(ok, key=lambda r: (r["val"] or 0.0, r["step"] or 0), default=None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, help="a training run folder: its snapshots/ and its best checkpoint")
    ap.add_argument("--checkpoints", nargs="*", default=[], help="more checkpoint folders")
    ap.add_argument("--realsets", type=Path, help="a bench/realsets.py output folder (the development seed)")
    ap.add_argument("--t10k", action="store_true", help="also score 2,000 t10k canvases (reported, not chosen on)")
    ap.add_argument("--drawn", type=int, default=200, help="numbers drawn from strokes per candidate")
    ap.add_argument("--every", type=int, default=1, help="score every k-th snapshot only (counted from the last)")
    ap.add_argument("--from-step", type=int, default=0, help="skip snapshots before this step")
    ap.add_argument("--val-samples", type=int, default=0, help="choose on this many more validation pages")
    ap.add_argument("--val-configs", type=Path, nargs="+", help="draw the --val-samples pages of each of these configs' "
                    "data sections for every candidate (not each its own) and choose on their mean")
    ap.add_argument("--jobs", type=int, default=1, help="candidates scored at once (one process and thread each)")
    ap.add_argument("--maps-on-ink", action="store_true", help="draw every candidate's maps on its ink (model.maps_on_ink)")
    ap.add_argument("--quick", action="store_true", help="the last snapshot only, 20 drawn numbers (tests)")
    ap.add_argument("--json", action="store_true", help="print one line of JSON last")
    args = ap.parse_args(argv)
    import pandas as pd
    found = candidates(args.run, args.checkpoints)
    snaps = [c for c in found if c.parent.name == "snapshots" and int(c.name) >= args.from_step]
    found = [c for c in found if c.parent.name != "snapshots" or c in snaps]
    found = [c for c in found if c not in snaps] + snaps[::-1][::args.every][::-1]
    if args.quick:
        found, args.drawn = found[-1:], 20
    if not found:
        raise SystemExit("error: no checkpoints: pass --run RUN or --checkpoints DIR ...")
    t0 = time.time()
    from concurrent.futures import ProcessPoolExecutor
    from functools import partial
    with ProcessPoolExecutor(max(1, args.jobs)) as ex:
        rows = list(ex.map(partial(score, realsets=args.realsets, t10k=args.t10k, drawn=args.drawn,
                                     maps_on_ink=args.maps_on_ink, val_samples=args.val_samples,
                                     val_configs=args.val_configs), found))
    best = choose(rows)
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print("chosen:", best["checkpoint"] if best else "none clears every bar", f"({', '.join(f'{k} >= {v}' for k, v in BARS.items())}; "
          "then the best validation accuracy)")
    if args.json:
        emit_json({"bench": "product_checks", "rows": rows, "chosen": best and best["checkpoint"], "bars": BARS,
                   "seconds": round(time.time() - t0, 1), "machine": machine(), "date": time.strftime("%Y-%m-%d")})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
