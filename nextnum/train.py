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
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from . import checkpoint
from .config import BOS, PAD, Config
from .data import DigitBank, fixed_batches, load_mnist, render, token_masks, with_fonts
from .evaluate import predict_batches, score
from .model import NextNum, adapt_positions, init_mismatch

log = logging.getLogger(__name__)
RESUME = "resume.safetensors"


def pick_device(name: str | None = None) -> torch.device:
    if name:
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def dist_setup(device: str | None) -> tuple[int, int, torch.device]:
    """(rank, world size, device). Under torchrun (WORLD_SIZE > 1) joins the process group:
    NCCL with one GPU per process when CUDA is there, gloo on CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, pick_device(device)
    cuda = torch.cuda.is_available() and device in (None, "cuda")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(dev)
    return dist.get_rank(), world, dev


def lr_at(progress: float, step: int, cfg) -> float:
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


@torch.no_grad()
def ema_update(avg: NextNum, model: NextNum, decay: float) -> None:
    """avg <- decay * avg + (1 - decay) * model for parameters; buffers (BatchNorm statistics) are copied."""
    for a, p in zip(avg.parameters(), model.parameters()):
        a.lerp_(p, 1.0 - decay)
    for a, b in zip(avg.buffers(), model.buffers()):
        a.copy_(b)


def _save_resume(out: Path, model: NextNum, opt: torch.optim.Optimizer, gen: torch.Generator,
                 meta: dict[str, Any], avg: NextNum | None = None) -> None:
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    if avg is not None:
        tensors.update({f"ema.{k}": v for k, v in avg.state_dict().items()})
    for i, st in opt.state_dict()["state"].items():
        for k, v in st.items():
            tensors[f"opt.{i}.{k}"] = v if torch.is_tensor(v) else torch.tensor(v)
    tensors["gen_state"] = gen.get_state()
    tmp = out / f".{RESUME}.tmp"
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp),
              metadata={"meta": json.dumps(meta)})
    os.replace(tmp, out / RESUME)


def _load_resume(out: Path, model: NextNum, opt: torch.optim.Optimizer, gen: torch.Generator,
                 avg: NextNum | None = None) -> dict[str, Any] | None:
    f = out / RESUME
    if not f.exists():
        return None
    try:
        from safetensors import safe_open
        with safe_open(str(f), "pt") as h:
            meta = json.loads(h.metadata()["meta"])
        t = load_file(str(f))
        model.load_state_dict({k[6:]: v for k, v in t.items() if k.startswith("model.")})
        if avg is not None:  # a run that had no average yet starts it from the model
            ema = {k[4:]: v for k, v in t.items() if k.startswith("ema.")}
            avg.load_state_dict(ema or model.state_dict())
        sd = opt.state_dict()
        for key, v in t.items():
            if key.startswith("opt."):
                _, i, name = key.split(".", 2)
                sd["state"].setdefault(int(i), {})[name] = v
        opt.load_state_dict(sd)
        gen.set_state(t["gen_state"])
    except (SafetensorError, OSError, KeyError, RuntimeError, ValueError) as e:
        log.warning("ignoring unreadable resume state %s (%s); starting afresh", f, e)
        return None
    return meta


def train(cfg: Config, out: str | Path, data_root: str | Path | None = None, *, bank: DigitBank | None = None,
          on_progress: Callable[[dict[str, Any]], None] | None = None, stop: threading.Event | None = None,
          resume: bool = True, device: str | None = None, download: bool = False,
          init: str | Path | None = None) -> dict[str, Any]:
    """Train, validating every eval_every steps and keeping the best checkpoint in `out`.

    bank: digits to train on instead of loading MNIST from data_root (tests pass the fixture).
    on_progress: called with a dict (step, steps, loss, token_acc, val_seq_acc, lr, elapsed_s, eta_s, ...).
    stop: set it to end training early; the best checkpoint so far is kept.
    init: a checkpoint folder to start from instead of random weights (fine-tuning); its token grid may
        differ (positions are resized). Ignored when resuming.
    Returns the final metrics (also written to out/metrics.json).
    """
    tc = cfg.train
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rank, world, dev = dist_setup(device)
    handler = logging.FileHandler(out / "train.log") if rank == 0 else logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.setLevel(logging.INFO)
    if log.level == logging.NOTSET or log.level > logging.INFO:  # the log file gets INFO whatever the caller set
        log.setLevel(logging.INFO)
    log.addHandler(handler)
    threads_before = torch.get_num_threads()
    if tc.threads > 0:  # process-wide in torch: put back when training ends (the app trains in a thread)
        torch.set_num_threads(tc.threads)
    try:
        start = init_metrics = None
        if init is not None:  # checked before anything slow
            start, _, init_metrics = checkpoint.load(init)
            why = init_mismatch(start.cfg, cfg.model)
            if why:
                raise checkpoint.CheckpointError(f"cannot start from {init}: its model does not fit the config ({why})")
        torch.manual_seed(tc.seed)  # the same initial weights on every rank
        if bank is None:
            bank = load_mnist(data_root, train=True, download=download)
        train_bank, val_bank = bank.split(min(cfg.data.val_holdout, len(bank) // 5))
        n_handwritten = len(train_bank)
        train_bank, fonts = with_fonts(train_bank, cfg.data)  # training digits only
        if fonts:
            log.info("%d training digits: %d handwritten, %d from %d fonts", len(train_bank), n_handwritten,
                     len(train_bank) - n_handwritten, len(fonts))
        hw = (cfg.model.img_h, cfg.model.img_w)
        val = fixed_batches(val_bank, tc.val_samples, cfg.data, hw, seed=tc.seed + 1)[rank::world]

        model = NextNum(cfg.model).to(dev)
        decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "pos" not in n]
        no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "pos" not in n)]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": tc.weight_decay},
                                 {"params": no_decay, "weight_decay": 0.0}], lr=tc.lr, betas=(0.9, 0.98))
        gen = torch.Generator().manual_seed(tc.seed + 1000 * rank)  # each rank its own data stream
        avg = NextNum(cfg.model).to(dev) if tc.ema > 0 else None  # the averaged weights validated and kept
        meta = _load_resume(out, model, opt, gen, avg) if resume else None
        if start is not None and meta is None:  # a resumed run keeps its own weights
            model.load_state_dict(adapt_positions(start.state_dict(), model))
            log.info("starting from the weights of %s", init)
        if avg is not None:
            if meta is None:
                avg.load_state_dict(model.state_dict())
            avg.requires_grad_(False)
        kept = avg if avg is not None else model
        if meta and world > 1:
            gen.manual_seed(tc.seed + 1000 * rank + meta["step"])
        net = DistributedDataParallel(model) if world > 1 else model
        step = meta["step"] if meta else 0
        best = meta["best"] if meta else -1.0
        history: list[dict[str, Any]] = meta["history"] if meta else []
        spent = meta["elapsed_s"] if meta else 0.0
        if meta:
            log.info("resumed from step %d (best val %.4f)", step, best)
        log.info("training %s params on %s: %s", model.num_params(), dev, json.dumps(cfg.to_dict()))

        t0 = time.perf_counter() - spent
        budget = tc.time_budget_min * 60
        loss_ema = acc_ema = None
        seen = meta.get("samples_seen", 0) if meta else 0

        if tc.steps <= 0 and budget <= 0:
            raise ValueError("set train.steps or train.time_budget_min (or both) above zero")

        def progress() -> float:
            p_steps = step / tc.steps if tc.steps > 0 else 0.0
            p_time = (time.perf_counter() - t0) / budget if budget > 0 else 0.0
            return max(p_steps, p_time)

        def validate() -> dict[str, Any]:
            nonlocal best
            pairs = predict_batches(kept, val, dev)
            if world > 1:  # every rank scored its share of the validation canvases
                parts: list[Any] = [None] * world
                dist.all_gather_object(parts, pairs)
                pairs = [p for part in parts for p in part]
            res = score(pairs)
            model.train()
            rec = {"step": step, "elapsed_s": round(time.perf_counter() - t0, 1), "loss": loss_ema,
                   "token_acc": acc_ema, "val_seq_acc": res["sequence_accuracy"],
                   "val_digit_acc": res["digit_accuracy"], "samples_seen": seen}
            history.append(rec)
            if res["sequence_accuracy"] > best:
                best = res["sequence_accuracy"]
                if rank == 0:
                    checkpoint.save(out, kept, cfg, _metrics(model, step, t0, best, history, "in progress"))
            if rank == 0:
                meta = {"step": step, "best": best, "history": history, "elapsed_s": time.perf_counter() - t0,
                        "samples_seen": seen}
                _save_resume(out, model, opt, gen, meta, avg)
            log.info("step %d val seq acc %.4f (best %.4f)", step, res["sequence_accuracy"], best)
            return rec

        model.train()
        status = "finished"
        while True:
            want_stop = stop is not None and stop.is_set()
            go_on = progress() < 1.0
            if world > 1:  # all ranks must agree, or one would wait forever for the others
                flags = torch.tensor([float(want_stop), float(go_on)])
                dist.all_reduce(flags, op=dist.ReduceOp.MAX)
                want_stop, go_on = bool(flags[0]), bool(flags[1])
            if want_stop:
                status = "stopped"
                break
            if not go_on:
                break
            p = progress()
            lr = lr_at(p, step, tc)
            for g in opt.param_groups:
                g["lr"] = lr
            b = render(train_bank, tc.batch, cfg.data, hw, gen, max_len=max_len_at(p, cfg))
            img, tgt = b.images.to(dev), b.targets.to(dev)
            inp = torch.cat([torch.full_like(tgt[:, :1], BOS), tgt[:, :-1]], 1)  # (B, T) shifted right
            logits, tok_logits, cross = net(img, inp, extras=True)  # (B,T,V), (B,N,11), (B,T,N)
            loss = F.cross_entropy(logits.flatten(0, 1), tgt.flatten(), ignore_index=PAD,
                                   label_smoothing=tc.label_smoothing)
            inside = token_masks(b, cfg.model).to(dev)  # (B, K, N)
            if tc.aux_weight > 0:
                loss = loss + tc.aux_weight * F.cross_entropy(tok_logits.flatten(0, 1), _token_labels(inside, tgt).flatten())
            if tc.guide_weight > 0:
                K = inside.shape[1]
                mass = (cross[:, :K] * inside).sum(-1)  # (B, K): step k's attention inside digit k
                valid = tgt[:, :K] < 10
                loss = loss + tc.guide_weight * -(mass.clamp_min(1e-4).log() * valid).sum() / valid.sum()
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at step {step}; try a lower lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            opt.step()
            if avg is not None:
                ema_update(avg, model, tc.ema)
            step += 1
            seen += tc.batch * world
            with torch.no_grad():
                mask = tgt != PAD
                acc = ((logits.argmax(-1) == tgt) & mask).sum().item() / mask.sum().item()
            loss_ema = loss.item() if loss_ema is None else 0.95 * loss_ema + 0.05 * loss.item()
            acc_ema = acc if acc_ema is None else 0.95 * acc_ema + 0.05 * acc
            rec = None
            if step % tc.eval_every == 0:
                rec = validate()
            if on_progress is not None and rank == 0 and (step % 10 == 0 or rec is not None):
                el = time.perf_counter() - t0
                p = progress()
                on_progress({"step": step, "steps": tc.steps, "progress": p, "loss": loss_ema, "token_acc": acc_ema,
                             "val_seq_acc": history[-1]["val_seq_acc"] if history else None, "best": best,
                             "lr": lr, "elapsed_s": el, "eta_s": el * (1 - p) / max(p, 1e-9),
                             "max_len": max_len_at(p, cfg), "validated": rec is not None})
        if not history or history[-1]["step"] != step:
            validate()
        metrics = _metrics(model, step, t0, best, history, status)
        metrics["processes"] = world
        if fonts:
            metrics["fonts"] = [f.name for f in fonts]
        if init is not None:  # where the weights came from, with that run's own record (and its ancestors')
            metrics["init"] = str(init)
            metrics["init_metrics"] = init_metrics
        if rank == 0 and (out / checkpoint.WEIGHTS).exists():  # rewrite metrics of the best weights with the whole history
            best_model, _, _ = checkpoint.load(out)
            checkpoint.save(out, best_model, cfg, metrics)
        log.info("%s at step %d: best val seq acc %.4f", status, step, best)
        return metrics
    finally:
        torch.set_num_threads(threads_before)
        log.removeHandler(handler)
        handler.close()
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


def _token_labels(inside: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
    """(B, N) digit under each token (the leftmost if boxes overlap), 10 where there is none."""
    K = inside.shape[1]
    any_ = inside.any(1)
    first = inside.float().argmax(1)  # (B, N) first k whose box holds the token
    lbl = tgt[:, :K].gather(1, first)
    return torch.where(any_, lbl, torch.full_like(lbl, 10))


def _metrics(model: NextNum, step: int, t0: float, best: float, history: list, status: str) -> dict[str, Any]:
    return {"status": status, "parameters": model.num_params(), "steps": step,
            "train_seconds": round(time.perf_counter() - t0, 1), "best_val_seq_acc": best,
            "val": "held-out train-split digits (never t10k)", "history": history,
            "torch": torch.__version__, "threads": torch.get_num_threads()}


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
    ap.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best available)")
    ap.add_argument("--no-resume", action="store_true", help="ignore resume state in --out")
    ap.add_argument("--init", help="checkpoint folder to start from (fine-tune; another patch stride is fine)")
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
                  init=args.init)
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
