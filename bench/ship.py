"""Make a checkpoint folder the app ships from a training run's snapshot: weights, config, the run's record.

    python bench/ship.py checkpoints/.reading/snapshots/018500 --out checkpoints/nextnum --maps-on-ink --views-below 0.9 \\
        --command "torchrun --standalone --nproc_per_node=2 -m nextnum.train --config configs/reading.json ..."
    python -m nextnum.calibrate --checkpoint checkpoints/nextnum --data ../shared/data --write
    python -m nextnum.export --checkpoint checkpoints/nextnum
    python bench/ship.py --record checkpoints/nextnum      # the t10k pages as the app reads them, into metrics.json

The snapshot's metrics.json holds its own figures only; the folder it came from (the run) holds the
history. The shipped metrics.json gets the run's history up to the snapshot's step, the run it started
from (`init`, `init_metrics`), the command, the samples, wall and CPU time. `--record` adds the t10k
figures (reported, never chosen on): the pages of configs/full.json and configs/clean.json, seed 0.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import DATA, ROOT  # also puts the repo on sys.path

T10K = {"t10k_app": "configs/full.json", "t10k_app_clean": "configs/clean.json"}


def record_of(snapshot: Path, run: Path, command: str, init: str | None = None) -> dict[str, Any]:
    """metrics.json for the shipped folder: the snapshot's figures with the run's history and lineage."""
    snap = json.loads((snapshot / "metrics.json").read_text())
    whole = json.loads((run / "metrics.json").read_text())
    history = [h for h in whole.get("history", []) if h["step"] <= snap["steps"]]
    last = history[-1] if history else {}
    m = {**snap, "status": "snapshot of a run", "history": history, "samples": last.get("samples_seen"),
         "processes": whole.get("processes", 2), "command": command,
         "cpu_note": "cpu_seconds is one training process's own CPU time; the run had `processes` of them",
         "best_step": snap["steps"], "shipped": time.strftime("%Y-%m-%d")}
    init = init or whole.get("init") or snap.get("init")
    if init and (Path(init) / "metrics.json").is_file():
        m["init"], m["init_metrics"] = str(init), json.loads((Path(init) / "metrics.json").read_text())
    return m


def ship(snapshot: Path, out: Path, command: str, maps_on_ink: bool, init: str | None, views_below: float = 0.0) -> None:
    run = snapshot.parent.parent if snapshot.parent.name == "snapshots" else snapshot
    cfg = json.loads((snapshot / "config.json").read_text())
    if maps_on_ink:
        cfg["model"]["maps_on_ink"] = True
    if views_below:
        cfg["model"]["views_below"] = views_below
    metrics = record_of(snapshot, run, command, init)
    if views_below:  # how to check the threshold: on validation pages (bench/views.py), never t10k
        metrics["second_look"] = {"views_below": views_below, "command": "python bench/views.py --data ../shared/data --json"}
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    shutil.copy2(snapshot / "model.safetensors", out / "model.safetensors")
    if (run / "train.log").is_file():
        shutil.copy2(run / "train.log", out / "train.log")
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"{out}: step {metrics['steps']}, validation {metrics['best_val_seq_acc']:.4f}")


def record(folder: Path) -> None:
    """Score the t10k pages as the app reads them and keep the figures in metrics.json."""
    metrics = json.loads((folder / "metrics.json").read_text())
    for key, data_config in T10K.items():
        argv = ["-m", "nextnum.evaluate", "--checkpoint", str(folder), "--data", str(DATA), "--samples", "2000",
                "--seed", "0", "--data-config", data_config, "--json"]
        out = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, check=True)
        res = json.loads(out.stdout.strip().splitlines()[-1])
        res["checkpoint"] = str(folder)
        res["command"] = "python " + " ".join(argv).replace(str(DATA), "../shared/data")
        metrics[key] = res
        print(f"{key}: {res['sequence_accuracy']:.4f} (5 digits {res['by_length']['5']:.4f})")
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("snapshot", nargs="?", type=Path, help="a snapshot folder (runs/X/snapshots/NNNNNN) or a run")
    ap.add_argument("--out", type=Path, help="the folder to make (replaced whole)")
    ap.add_argument("--command", default="", help="the command that trained the run, for the record")
    ap.add_argument("--init", default=None, help="the checkpoint the run started from, when its metrics do not say")
    ap.add_argument("--maps-on-ink", action="store_true", help="draw the maps on the ink (model.maps_on_ink)")
    ap.add_argument("--views-below", type=float, default=0.0,
                    help="reread readings less sure than this on shifted views, which vote (model.views_below)")
    ap.add_argument("--record", type=Path, help="score this folder on the t10k pages and keep the figures")
    args = ap.parse_args(argv)
    if args.record:
        record(args.record)
    elif args.snapshot and args.out:
        ship(args.snapshot, args.out, args.command, args.maps_on_ink, args.init, args.views_below)
    else:
        ap.error("give a snapshot and --out, or --record FOLDER")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
