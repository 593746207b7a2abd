"""Train NextNum on synthetic canvases of MNIST training digits.

    python -m nextnum.train --config configs/default.json --data ../shared/data --out checkpoints/mine
    torchrun --nproc_per_node=2 -m nextnum.train --config ... --out ...   # DistributedDataParallel

train() is a plain function over explicit arguments; the CLI and the app's training tab both call
it, passing a progress callback and a stop flag.
"""
from __future__ import annotations

import argparse
import json
import logging
import logging.handlers
import math
import os
import sys
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel

from . import checkpoint
from .config import Config, TrainConfig
from .correction_canvases import CorrectionCanvases
from .evaluate import held_out_accuracy
from .data import DigitBank, fixed_batches, load_mnist, with_fonts, with_hands
from .distributed import agreed, dist_setup
from .model import NextNum
from .warmstart import adapt_positions, deepen, init_mismatch
from .losses import batch_loss
from .resume import Progress, averaged_model, load_resume
from .stream import Batches, batches
from .validation import run_metrics, validate_kept

log = logging.getLogger("nextnum.train")  # not __name__: under python -m that is __main__, which resume.py cannot name


def lr_at(progress: float, step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to min_lr_frac * lr over progress in [0, 1]."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    c = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return cfg.lr * (cfg.min_lr_frac + (1 - cfg.min_lr_frac) * c)


def max_len_at(progress: float, cfg: Config) -> int:
    """Curriculum: the longest sequence grows from 2 digits to max_len over the first part of training."""
    hi = cfg.data.max_len
    lo = max(cfg.data.min_len, min(2, hi))
    if cfg.train.curriculum <= 0 or progress >= cfg.train.curriculum:
        return hi
    return lo + int((hi - lo + 1) * progress / cfg.train.curriculum)


def _log_file(out: Path, rank: int) -> logging.Handler:
    # checkpoint.save swaps the run's folder for a new one, train.log hard-linked (or copied where links fail):
    # a watched handler reopens the path when the file under it changes, so no line lands in a swapped-out copy
    handler = logging.handlers.WatchedFileHandler(out / "train.log") if rank == 0 else logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.setLevel(logging.INFO)
    if log.level == logging.NOTSET or log.level > logging.INFO:  # the log file gets INFO whatever the caller set
        log.setLevel(logging.INFO)
    log.addHandler(handler)
    return handler


def _starting_point(init: str | Path | None, cfg: Config) -> tuple[NextNum | None, dict[str, Any] | None]:
    """The --init checkpoint's model and metrics, refused at once when its shape does not fit cfg."""
    if init is None:
        return None, None
    start, _, init_metrics = checkpoint.load(init)
    why = init_mismatch(start.cfg, cfg.model)
    if why:
        raise checkpoint.CheckpointError(f"cannot start from {init}: its model does not fit the config ({why})")
    return start, init_metrics


def _data(cfg: Config, bank: DigitBank | None, data_root: str | Path | None, download: bool, rank: int,
          world: int) -> tuple[DigitBank, list, list[Path]]:
    """(training digits with any font digits, this process's share of the validation batches, fonts)."""
    if bank is None:
        bank = load_mnist(data_root, train=True, download=download)
    train_bank, val_bank = bank.split(min(cfg.data.val_holdout, len(bank) // 5))
    n_mnist = len(train_bank)
    train_bank = with_hands(train_bank, cfg.data)  # training digits only, as the fonts
    if len(train_bank) > n_mnist:
        log.info("%d flagged ones and crossed sevens drawn onto training digits", len(train_bank) - n_mnist)
    n_handwritten = len(train_bank)
    train_bank, fonts = with_fonts(train_bank, cfg.data)  # training digits only
    if fonts:
        log.info("%d training digits: %d handwritten, %d from %d fonts", len(train_bank), n_handwritten,
                 len(train_bank) - n_handwritten, len(fonts))
    hw = (cfg.model.img_h, cfg.model.img_w)
    val = fixed_batches(val_bank, cfg.train.val_samples, cfg.data, hw, seed=cfg.train.seed + 1,
                        match_strokes=cfg.model.match_strokes)
    return train_bank, val[rank::world], fonts


def _optimizer(model: NextNum, tc: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not on biases, norms or positions)."""
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "pos" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "pos" not in n)]
    return torch.optim.AdamW([{"params": decay, "weight_decay": tc.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=tc.lr, betas=(0.9, 0.98))


def _loop(s: Progress, cfg: Config, net: torch.nn.Module, model: NextNum, opt: torch.optim.Optimizer,
          avg: AveragedModel | None, gen: torch.Generator, train_bank: DigitBank, validate: Callable[[], dict],
          on_progress: Callable[[dict[str, Any]], None] | None, stop: threading.Event | None, rank: int, world: int,
          dev: torch.device, corr: CorrectionCanvases | None = None) -> str:
    """Train until the steps or the time run out ("finished") or stop is set ("stopped")."""
    tc = cfg.train
    n_corr = round(tc.corrections_share * tc.batch) if corr is not None else 0
    ds = Batches(train_bank, cfg, tc.batch - n_corr, rank, start=s.step)
    stream = batches(ds, tc.workers)
    for g in opt.param_groups:
        g["initial_lr"] = tc.lr  # what LambdaLR scales: this run's lr, also when the optimizer was resumed
    # over the progress fraction, not the step count: with train.time_budget_min the decay follows
    # max(step progress, wall-time progress)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: lr_at(s.fraction(), s.step, tc) / tc.lr)
    model.train()
    while True:
        want_stop, go_on = agreed(stop is not None and stop.is_set(), s.fraction() < 1.0, world)
        if want_stop or not go_on:
            return "stopped" if want_stop else "finished"
        p, lr = s.fraction(), schedule.get_last_lr()[0]
        ds.max_len.value = max_len_at(p, cfg)
        b = next(stream)
        if corr is not None:
            b = corr.mix_into(b, n_corr, cfg.data, gen)
        loss, acc = batch_loss(net, b, cfg, dev)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at step {s.step}; try a lower lr")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        opt.step()
        if avg is not None:
            avg.update_parameters(model)
        s.step += 1
        s.seen += tc.batch * world
        schedule.step()  # the next step's lr
        s.record(loss.item(), acc)
        rec = validate() if s.step % tc.eval_every == 0 else None
        if on_progress is not None and rank == 0 and (s.step % 10 == 0 or rec is not None):
            el, p = s.elapsed(), s.fraction()
            on_progress({"step": s.step, "steps": tc.steps, "progress": p, "loss": s.loss, "token_acc": s.acc,
                         "val_seq_acc": s.history[-1]["val_seq_acc"] if s.history else None, "best": s.best,
                         "lr": lr, "elapsed_s": el, "eta_s": el * (1 - p) / max(p, 1e-9),
                         "max_len": max_len_at(p, cfg), "validated": rec is not None})


def train(cfg: Config, out: str | Path, data_root: str | Path | None = None, *, bank: DigitBank | None = None,
          on_progress: Callable[[dict[str, Any]], None] | None = None, stop: threading.Event | None = None,
          resume: bool = True, device: str | None = None, download: bool = False,
          init: str | Path | None = None, corrections: str | Path | None = None) -> dict[str, Any]:
    """Train, validating every eval_every steps and keeping the best checkpoint in `out`.

    bank: digits to train on instead of loading MNIST from data_root (tests pass the fixture).
    on_progress: called with a dict (step, steps, loss, token_acc, val_seq_acc, lr, elapsed_s, eta_s, ...).
    stop: set it to end training early; the best checkpoint so far is kept.
    init: a checkpoint folder to start from instead of random weights (fine-tuning); its token grid may
        differ (positions are resized). Ignored when resuming.
    corrections: a corrections folder (nextnum.corrections) whose trained-on part makes train.corrections_share
        of every batch; its held-out part is scored before and after (metrics["corrections"]).
    Returns the final metrics (also written to out/metrics.json).
    """
    tc = cfg.train
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rank, world, dev = dist_setup(device)
    handler = _log_file(out, rank)
    threads_before = torch.get_num_threads()
    if tc.threads > 0:  # process-wide in torch: put back when training ends (the app trains in a thread)
        torch.set_num_threads(tc.threads)
    try:
        start, init_metrics = _starting_point(init, cfg)  # checked before anything slow
        torch.manual_seed(tc.seed)  # the same initial weights on every rank
        train_bank, val, fonts = _data(cfg, bank, data_root, download, rank, world)
        model = NextNum(cfg.model).to(dev)
        opt = _optimizer(model, tc)
        gen = torch.Generator().manual_seed(tc.seed + 1000 * rank)  # the corrections' draws (stream.py: the batches)
        meta = load_resume(out, model, opt, gen) if resume else None
        if start is not None and meta is None:  # a resumed run keeps its own weights
            model.load_state_dict(deepen(adapt_positions(start.state_dict(), model), model))
            log.info("starting from the weights of %s", init)
        # the averaged weights are what is validated and kept
        avg = averaged_model(model, tc.ema, out if meta else None) if tc.ema > 0 else None
        kept = avg.module if avg is not None else model
        if meta and world > 1:
            gen.manual_seed(tc.seed + 1000 * rank + meta["step"])
        s = Progress.resumed(tc, meta)
        if meta:
            log.info("resumed from step %d (best val %.4f)", s.step, s.best)
        log.info("training %s params on %s: %s", model.num_params(), dev, json.dumps(cfg.to_dict()))
        if tc.steps <= 0 and tc.time_budget_min <= 0:
            raise ValueError("set train.steps or train.time_budget_min (or both) above zero")
        validate = partial(validate_kept, s, cfg, out, model, kept, val, opt, gen, avg, rank, world, dev, log)
        net = DistributedDataParallel(model) if world > 1 else model
        corr = CorrectionCanvases(corrections, cfg) if corrections is not None else None
        before = held_out_accuracy(start or model, cfg, corrections) if corr is not None and rank == 0 else None
        status = _loop(s, cfg, net, model, opt, avg, gen, train_bank, validate, on_progress, stop, rank, world, dev,
                       corr)
        if not s.history or s.history[-1]["step"] != s.step:
            validate()
        metrics = run_metrics(model, s, status)
        metrics["processes"] = world
        if fonts:
            metrics["fonts"] = [f.name for f in fonts]
        if init is not None:  # where the weights came from, with that run's own record (and its ancestors')
            metrics["init"] = str(init)
            metrics["init_metrics"] = init_metrics
        if rank == 0 and (out / checkpoint.WEIGHTS).exists():  # rewrite metrics of the best weights with the whole history
            best_model, _, _ = checkpoint.load(out)
            if corr is not None:
                metrics["corrections"] = corr.report(before, held_out_accuracy(best_model, cfg, corrections))
            checkpoint.save(out, best_model, cfg, metrics)
        log.info("%s at step %d: best val seq acc %.4f", status, s.step, s.best)
        if world > 1:  # leave the group together, once rank 0 has rewritten the checkpoint: a rank that tore
            dist.barrier()  # its gloo group down while rank 0 was still saving was seen to abort (SIGABRT)
        return metrics
    finally:
        torch.set_num_threads(threads_before)
        log.removeHandler(handler)
        handler.close()
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nextnum.train", description=__doc__.split("\n")[1])
    ap.add_argument("--config", default="configs/default.json", help="JSON config (model/data/train)")
    ap.add_argument("--data", default="../shared/data", help="MNIST root in torchvision's layout")
    ap.add_argument("--download", action="store_true", help="download MNIST into --data if missing")
    ap.add_argument("--fixture", action="store_true", help="train on the small committed digit sample (tests, demos)")
    ap.add_argument("--out", required=True, help="checkpoint folder to write (best weights, config, metrics, log)")
    ap.add_argument("--steps", type=int, help="override train.steps")
    ap.add_argument("--minutes", type=float, help="override train.time_budget_min")
    ap.add_argument("--seed", type=int, help="override train.seed")
    ap.add_argument("--threads", type=int, help="override train.threads (torch threads; 1 is steadier on a busy machine)")
    ap.add_argument("--workers", type=int, help="override train.workers (DataLoader processes drawing the batches)")
    ap.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best available)")
    ap.add_argument("--no-resume", action="store_true", help="ignore resume state in --out")
    ap.add_argument("--init", help="checkpoint folder to start from (fine-tune; another patch stride is fine)")
    ap.add_argument("--corrections", help="a corrections folder to mix into every batch (train.corrections_share)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        cfg = Config.load(args.config)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.steps is not None:
        cfg.train.steps = args.steps
    if args.minutes is not None:
        cfg.train.time_budget_min = args.minutes
    if args.seed is not None:
        cfg.train.seed = args.seed
    if args.threads is not None:
        cfg.train.threads = args.threads
    if args.workers is not None:
        cfg.train.workers = args.workers
    from tqdm import tqdm
    bar = tqdm(total=1000, unit="‰", dynamic_ncols=True)

    def show(p: dict[str, Any]) -> None:
        bar.n = min(1000, int(p["progress"] * 1000))
        val = "-" if p["val_seq_acc"] is None else f"{p['val_seq_acc']:.3f}"
        bar.set_postfix_str(f"step {p['step']} loss {p['loss']:.3f} tok {p['token_acc']:.3f} val {val} "
                            f"len<={p['max_len']}")
    stop = threading.Event()
    try:
        from .data import load_fixture
        m = train(cfg, args.out, args.data, bank=load_fixture() if args.fixture else None, on_progress=show,
                  stop=stop, resume=not args.no_resume, device=args.device, download=args.download,
                  init=args.init, corrections=args.corrections)
    except (FileNotFoundError, checkpoint.CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted; the best checkpoint so far and the resume state are in", args.out, file=sys.stderr)
        return 130
    finally:
        bar.close()
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({k: v for k, v in m.items() if k != "history"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
