"""The Train tab's work: its configs and knobs, the training data, one run at a time in a thread."""
from __future__ import annotations

import json
import logging
import queue
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .. import checkpoint
from ..config import FIXTURE, Config
from .models import NAME_RE, is_checkpoint

log = logging.getLogger(__name__)
NO_TORCH = ("Training needs PyTorch, which this install leaves out (it reads with onnxruntime alone: "
            "requirements-serve.txt). Add it with `pip install -r requirements.txt`, then start the app again.")


def has_torch() -> bool:
    """Whether PyTorch is installed (without importing it: reading needs none)."""
    import importlib.util
    return importlib.util.find_spec("torch") is not None


def training_configs(folder: Path) -> dict[str, Path]:
    """name -> file of the configs in `folder` that describe a model to train (a 'model' section): not
    the sweep's grid, nor data-only settings such as configs/clean.json (an evaluation complexity)."""
    out = {}
    for p in sorted(Path(folder).glob("*.json")):
        try:
            d = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(d, dict) and isinstance(d.get("model"), dict):
            out[p.stem] = p
    return out


def build_config(base: Config, steps: float, lr: float, batch: float, max_len: float, dim: float) -> Config:
    """A copy of `base` with the UI's knobs applied; ValueError with a message meant for the user."""
    try:
        steps, batch, max_len, dim, lr = int(steps), int(batch), int(max_len), int(dim), float(lr)
    except (TypeError, ValueError):
        raise ValueError("steps, batch, digits and model width must be whole numbers, lr a number") from None
    if not 1 <= steps <= 50_000:
        raise ValueError("steps must be between 1 and 50,000")
    if not 0 < lr <= 0.1:
        raise ValueError("lr must be between 0 and 0.1")
    if not 1 <= batch <= 512:
        raise ValueError("batch must be between 1 and 512")
    d = base.to_dict()
    if not 1 <= max_len <= d["model"]["max_digits"]:
        raise ValueError(f"max digits must be between 1 and {d['model']['max_digits']} for this config")
    if dim < d["model"]["heads"] or dim % d["model"]["heads"] or dim > 256:
        raise ValueError(f"model width must be a multiple of the {d['model']['heads']} heads, at most 256")
    d["model"]["dim"] = dim
    d["data"]["max_len"] = max_len
    d["data"]["min_len"] = min(d["data"].get("min_len", 1), max_len)
    d["train"].update(steps=steps, lr=lr, batch=batch, time_budget_min=0)
    d["train"]["eval_every"] = max(1, min(d["train"].get("eval_every", 250), max(steps // 4, 1)))
    d["train"]["warmup"] = min(d["train"].get("warmup", 200), max(steps // 5, 1))
    try:
        return Config.from_dict(d)
    except (TypeError, AssertionError, ValueError) as e:
        raise ValueError(f"invalid settings: {e}") from None


def sample_predictions(model, bank, cfg: Config, n: int = 6, seed: int | None = None) -> list[tuple[np.ndarray, str]]:
    """Read n freshly rendered canvases; captions say what was drawn and what was read."""
    import torch
    from ..data import render
    gen = torch.Generator().manual_seed(seed if seed is not None else int(time.time() * 1000) % 2**31)
    b = render(bank, n, cfg.data, (cfg.model.img_h, cfg.model.img_w), gen, match_strokes=cfg.model.match_strokes)
    read = model.generate(b.images).texts()
    out = []
    for img, true, got in zip(b.images[:, 0].numpy(), b.texts, read):
        pic = cv2.resize((255 - img * 255).astype(np.uint8), None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
        out.append((pic, f"drawn {true} · read {got} {'✓' if got == true else '✗'}"))
    return out


def training_data(data_root: str | Path, force_fixture: bool = False) -> tuple[str, Callable[[], tuple[Any, Callable]]]:
    """What the Train tab trains on: MNIST under data_root when it is there, else the built-in sample.
    Returns (a note for the tab, a loader giving (bank, score(model, cfg) -> evaluation dict)). Nothing is
    loaded (nor PyTorch imported) until the loader is called."""
    raw = Path(data_root) / "MNIST" / "raw"
    if not force_fixture and all((raw / f"{s}-images-idx3-ubyte").exists() for s in ("train", "t10k")):
        def loader():
            from .. import data, evaluate

            def score(model, cfg):
                res = evaluate.evaluate_synthetic(model, data_root, 300, 0, cfg.data)
                return {**res, "source": "300 canvases of MNIST t10k digits"}
            return data.load_mnist(data_root, train=True), score
        note = f"Training data: MNIST from `{data_root}`; each new model is scored on 300 canvases of t10k digits."
    else:
        def load_sample():
            from .. import data, evaluate
            bank = data.load_fixture()

            def score(model, cfg):
                b = data.fixed_batches(bank, 100, cfg.data, (cfg.model.img_h, cfg.model.img_w), seed=12345,
                                       match_strokes=cfg.model.match_strokes)
                return {**evaluate.score(evaluate.predict_batches(model, b)),
                        "source": "100 canvases of the built-in sample (digits also seen in training)"}
            return bank, score
        loader = load_sample
        with np.load(FIXTURE) as f:
            n = len(f["labels"])
        why = "forced by NEXTNUM_TRAIN_DATA=fixture" if force_fixture else f"MNIST not found under `{data_root}`"
        note = (f"**Training data: the small built-in sample of {n} MNIST digits** ({why}). Fine to try the tab, "
                "not to make a good model: start the app with `--data DIR` pointing at MNIST.")
    return (note if has_torch() else f"**{NO_TORCH}**\n\n{note}"), loader


class Busy(RuntimeError):
    """Another training run holds the slot."""


@dataclass
class Run:
    """One training run of the Train tab: its settings, stop flag, progress events and outcome."""
    name: str
    cfg: Config
    init: Path | None = None  # checkpoint whose weights the run starts from (None: fresh weights)
    corrections: Path | None = None  # a corrections folder mixed into every batch
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    stop: threading.Event = field(default_factory=threading.Event)
    events: queue.Queue = field(default_factory=queue.Queue)
    history: list[dict[str, Any]] = field(default_factory=list)
    status: str = "starting"
    error: str = ""
    checkpoint: str | None = None  # folder name under checkpoints/ once promoted
    evaluation: dict[str, Any] | None = None
    corrections_report: dict[str, Any] | None = None  # held-out corrections before and after, when trained on them
    done: threading.Event = field(default_factory=threading.Event)

    def follow(self, heartbeat: float = 1.0) -> Iterator[dict[str, Any] | None]:
        """Progress dicts as they come (None as a heartbeat when nothing came), until the run ends."""
        while True:
            try:
                ev = self.events.get(timeout=heartbeat)
            except queue.Empty:
                if self.done.is_set():
                    return
                yield None
                continue
            if ev is StopIteration:
                return
            yield ev


class TrainingSlot:
    """One training run at a time in this process. A run trains a fresh model in a hidden folder
    under checkpoints/ (never listed), so the live models are never touched; when it ends (finished,
    stopped, or failed after a checkpoint was saved) the best weights so far are evaluated and the
    folder is renamed to checkpoints/<name>."""

    def __init__(self, root: str | Path, load_data: Callable[[], tuple[Any, Callable[[Any, Config], dict]]]) -> None:
        self.root = Path(root)
        self._load_data = load_data  # -> (training bank, evaluate(model, cfg) -> score dict)
        self._lock = threading.Lock()
        self.current: Run | None = None

    def busy(self) -> bool:
        """Whether a run holds the slot now."""
        return self._lock.locked()

    def start(self, cfg: Config, name: str, init: Path | None = None, corrections: Path | None = None) -> Run:
        """Start training `cfg` into checkpoints/<name>, from fresh weights or from the checkpoint `init`
        (fine-tuning). ValueError, meant for the user, when the name or the starting point will not do."""
        if not has_torch():
            raise ValueError(NO_TORCH)
        if not NAME_RE.match(name or ""):
            raise ValueError("name the checkpoint with letters, digits, '-', '_' or '.' (not starting with '.')")
        if (self.root / name).exists():
            raise ValueError(f"checkpoints/{name} already exists: choose another name")
        if init is not None:
            from ..warmstart import init_mismatch
            try:
                start = Config.from_dict(checkpoint.read_json(Path(init) / checkpoint.CONFIG)).model
            except (checkpoint.CheckpointError, ValueError) as e:
                raise ValueError(f"cannot start from {Path(init).name}: {e}") from None
            why = init_mismatch(start, cfg.model)
            if why:
                raise ValueError(f"cannot start from {Path(init).name}: its model does not fit this config ({why})")
        if not self._lock.acquire(blocking=False):
            raise Busy("training is busy: another run is in progress; try again when it ends")
        try:
            run = Run(name, cfg, init, corrections)
            self.current = run
            threading.Thread(target=self._work, args=(run,), name=f"train-{name}", daemon=True).start()
        except BaseException:
            self._lock.release()
            raise
        return run

    def stop(self, token: str | None) -> bool:
        """Ask the current run to stop, if `token` is its owner's; whether it was asked."""
        run = self.current
        if run is None or run.done.is_set() or token != run.token:
            return False
        run.stop.set()
        return True

    def _work(self, run: Run) -> None:
        from ..train import train
        tmp = self.root / f".training-{run.name}-{run.token[:8]}"
        try:
            bank, evaluate = self._load_data()

            def on_progress(p: dict[str, Any]) -> None:
                # runs in this thread between steps, so reading the just-saved best checkpoint is race-free
                p = dict(p)
                if p.get("validated") and is_checkpoint(tmp):
                    model, cfg, _ = checkpoint.load(tmp)
                    p["samples"] = sample_predictions(model, bank, cfg)
                run.history.append({k: v for k, v in p.items() if k != "samples"})
                run.events.put(p)

            run.status = "training"
            metrics = train(run.cfg, tmp, bank=bank, on_progress=on_progress, stop=run.stop, resume=False,
                            init=run.init, corrections=run.corrections)
            run.status = metrics.get("status", "finished")
        except Exception as e:  # a failed run must not take the app down; its best checkpoint is still kept
            log.exception("training %s failed", run.name)
            run.status, run.error = "failed", f"{type(e).__name__}: {e}"
        try:
            if is_checkpoint(tmp):
                run.events.put({"phase": "evaluating"})
                model, cfg, metrics = checkpoint.load(tmp)
                try:
                    run.evaluation = evaluate(model, cfg)
                except Exception as e:  # keep the weights even if they cannot be scored
                    log.exception("evaluating the run %s failed", run.name)
                    run.evaluation = {"error": f"{type(e).__name__}: {e}"}
                metrics.update(status=run.status, evaluation=run.evaluation)
                run.corrections_report = metrics.get("corrections")
                if run.error:
                    metrics["error"] = run.error
                checkpoint.write_files(tmp, {checkpoint.METRICS: (json.dumps(metrics, indent=2) + "\n").encode()})
                (tmp / "resume.safetensors").unlink(missing_ok=True)  # optimizer state: not needed to read
                final, i = self.root / run.name, 1
                while final.exists():  # someone took the name meanwhile: never overwrite a checkpoint
                    i += 1
                    final = self.root / f"{run.name}-{i}"
                tmp.rename(final)
                run.checkpoint = final.name
                run.events.put({"phase": "done", "samples": sample_predictions(model, bank, cfg, seed=1)})
            else:
                shutil.rmtree(tmp, ignore_errors=True)  # nothing worth keeping was saved
        except Exception as e:  # the weights stay in the hidden folder; say where
            log.exception("saving the run %s failed; its files are in %s", run.name, tmp)
            run.error = run.error or f"{type(e).__name__}: {e}"
        finally:
            run.done.set()
            run.events.put(StopIteration)
            self._lock.release()
