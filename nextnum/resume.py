"""A training run's resume state: its weights and their moving average, the optimizer, the data stream, its progress.

One safetensors file, out/resume.safetensors: "model.*" the weights being trained, "ema.*" the
averaged model (torch.optim.swa_utils.AveragedModel's state), "opt.<i>.*" AdamW's per-parameter state,
"gen_state" the data generator's state, and the progress (step, best, history, ...) as JSON metadata
under "meta". Files written before the average was an AveragedModel keep its weights as "ema.<name>"
with no "ema.n_averaged": they load too.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from .atomic import write_atomic
from .config import TrainConfig
from .model import NextNum

log = logging.getLogger("nextnum.train")
RESUME = "resume.safetensors"
_ERRORS = (SafetensorError, OSError, KeyError, RuntimeError, ValueError)


@dataclass
class Progress:
    """Where a run stands; what the resume state's metadata keeps of it."""
    tc: TrainConfig
    step: int = 0
    best: float = -1.0
    history: list[dict[str, Any]] = field(default_factory=list)
    seen: int = 0  # training canvases, all processes together
    t0: float = field(default_factory=time.perf_counter)  # perf_counter when the run began (resumes included)
    # this process's CPU time (process_time) when the run began, resumes included: unlike wall time it
    # does not grow while the process is paused or waits for a shared core
    cpu0: float = field(default_factory=time.process_time)
    loss: float | None = None  # moving averages, for the reports
    acc: float | None = None

    @classmethod
    def resumed(cls, tc: TrainConfig, meta: dict[str, Any] | None) -> "Progress":
        if not meta:
            return cls(tc)
        return cls(tc, meta["step"], meta["best"], meta["history"], meta.get("samples_seen", 0),
                   time.perf_counter() - meta["elapsed_s"], time.process_time() - meta.get("cpu_s", 0.0))

    def meta(self) -> dict[str, Any]:
        return {"step": self.step, "best": self.best, "history": self.history, "elapsed_s": self.elapsed(),
                "cpu_s": self.cpu(), "samples_seen": self.seen}

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def cpu(self) -> float:
        """CPU seconds this run's process has used (all its threads), resumes included."""
        return time.process_time() - self.cpu0

    def fraction(self) -> float:
        """How far training is, 0..1: by steps or by the clock, whichever is further."""
        p_steps = self.step / self.tc.steps if self.tc.steps > 0 else 0.0
        budget = self.tc.time_budget_min * 60
        return max(p_steps, self.elapsed() / budget if budget > 0 else 0.0)

    def record(self, loss: float, acc: float) -> None:
        self.loss = loss if self.loss is None else 0.95 * self.loss + 0.05 * loss
        self.acc = acc if self.acc is None else 0.95 * self.acc + 0.05 * acc


def averaged_model(model: NextNum, decay: float, out: str | Path | None = None) -> AveragedModel:
    """An exponential moving average of `model`'s weights (update_parameters after each step), starting
    from its weights now, or from the average kept in out's resume state when there is one.

    The BatchNorm statistics are averaged with the weights (use_buffers=True), so the statistics the
    averaged model normalises with come from the same span of training as its weights. The model's buffers
    are its state alone (the fixed blur kernel averages to itself); the decoder's -inf step masks are no
    buffer, since an average turns -inf into NaN."""
    avg = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
    avg.update_parameters(model)  # the first update copies: the average starts at the model
    avg.requires_grad_(False)
    f = Path(out) / RESUME if out is not None else None
    if f is not None and f.exists():
        try:
            ema = {k[4:]: v for k, v in load_file(str(f)).items() if k.startswith("ema.")}
            if "n_averaged" in ema:
                avg.load_state_dict(ema)
            elif ema:  # the earlier layout: the averaged weights alone, an average already under way
                avg.module.load_state_dict(ema)
        except _ERRORS as e:  # a run that had no average yet starts it from the model
            log.warning("ignoring the unreadable average in %s (%s); it starts from the model", f, e)
    return avg


def save_resume(out: Path, model: NextNum, opt: torch.optim.Optimizer, gen: torch.Generator,
                meta: dict[str, Any], avg: AveragedModel | None = None) -> None:
    """Write the resume state atomically (atomic.write_atomic: written whole, synced, renamed over the last one)."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    if avg is not None:
        tensors.update({f"ema.{k}": v for k, v in avg.state_dict().items()})
    for i, st in opt.state_dict()["state"].items():
        for k, v in st.items():
            tensors[f"opt.{i}.{k}"] = v if torch.is_tensor(v) else torch.tensor(v)
    tensors["gen_state"] = gen.get_state()
    write_atomic(out / RESUME, save({k: v.detach().cpu().contiguous() for k, v in tensors.items()},
                                    metadata={"meta": json.dumps(meta)}))


def load_resume(out: Path, model: NextNum, opt: torch.optim.Optimizer, gen: torch.Generator) -> dict[str, Any] | None:
    """Load out's resume state into the model, optimizer and generator; its progress metadata, or None
    when there is none (or it cannot be read: the run then starts afresh)."""
    f = out / RESUME
    if not f.exists():
        return None
    try:
        with safe_open(str(f), "pt") as h:
            meta = json.loads(h.metadata()["meta"])
        t = load_file(str(f))
        model.load_state_dict({k[6:]: v for k, v in t.items() if k.startswith("model.")})
        sd = opt.state_dict()
        for key, v in t.items():
            if key.startswith("opt."):
                _, i, name = key.split(".", 2)
                sd["state"].setdefault(int(i), {})[name] = v
        opt.load_state_dict(sd)
        gen.set_state(t["gen_state"])
    except _ERRORS as e:
        log.warning("ignoring unreadable resume state %s (%s); starting afresh", f, e)
        return None
    return meta
