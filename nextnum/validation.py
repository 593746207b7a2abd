"""A training run's validation: score the kept weights, keep the best and the snapshots, and the run's record."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.optim.swa_utils import AveragedModel

from . import checkpoint
from .config import Config
from .evaluate import predict_batches, score
from .model import NextNum
from .resume import Progress, save_resume


def validate_kept(s: Progress, cfg: Config, out: Path, model: NextNum, kept: NextNum, val: list, opt: torch.optim.Optimizer,
                  gen: torch.Generator, avg: AveragedModel | None, rank: int, world: int, dev: torch.device,
                  log: logging.Logger) -> dict[str, Any]:
    """Score the kept weights on the validation canvases; save them if best, and the resume state.
    log: train()'s logger ("nextnum.train"), the one that writes the run's train.log."""
    pairs = predict_batches(kept, val, dev)
    if world > 1:  # every rank scored its share of the validation canvases
        parts: list[Any] = [None] * world
        dist.all_gather_object(parts, pairs)
        pairs = [p for part in parts for p in part]
    res = score(pairs)
    model.train()
    rec = {"step": s.step, "elapsed_s": round(s.elapsed(), 1), "cpu_s": round(s.cpu(), 1), "loss": s.loss, "token_acc": s.acc,
           "val_seq_acc": res["sequence_accuracy"], "val_digit_acc": res["digit_accuracy"], "samples_seen": s.seen}
    s.history.append(rec)
    if res["sequence_accuracy"] > s.best:
        s.best = res["sequence_accuracy"]
        if rank == 0:
            checkpoint.save(out, kept, cfg, run_metrics(model, s, "in progress"))
    if rank == 0 and cfg.train.snapshots:
        checkpoint.save(out / "snapshots" / f"{s.step:06d}", kept, cfg,
                        run_metrics(model, s, "snapshot", res["sequence_accuracy"]))
    if rank == 0:
        save_resume(out, model, opt, gen, s.meta(), avg)
    log.info("step %d val seq acc %.4f (best %.4f)", s.step, res["sequence_accuracy"], s.best)
    return rec


def run_metrics(model: NextNum, s: Progress, status: str, best: float | None = None) -> dict[str, Any]:
    """metrics.json: the run's record; best: the validation score to report (default the best so far)."""
    return {"status": status, "parameters": model.num_params(), "steps": s.step,
            "train_seconds": round(s.elapsed(), 1), "cpu_seconds": round(s.cpu(), 1), "best_val_seq_acc": s.best if best is None else best,
            "val": "held-out train-split digits (never t10k)", "history": s.history,
            "torch": torch.__version__, "threads": torch.get_num_threads()}
