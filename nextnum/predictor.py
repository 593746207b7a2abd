"""The public reading API: load a checkpoint once, then predict(image) -> Prediction.

    from nextnum import Predictor
    p = Predictor.load()              # the shipped checkpoint
    pred = p.predict("note.jpg")      # any image: path, array, PIL, sketchpad value
    pred.text, pred.confidence, pred.digits[0].top3, pred.attention.per_digit[0]

predict() keeps nothing between calls, so one Predictor can serve several threads at once.
"""
from __future__ import annotations

import argparse
import logging
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import attention as A
from .config import Config
from .explain import AttentionViews
from .model import Generation, NextNum, tokens_text
from .preprocess import Geometry, Preprocessed, preprocess

log = logging.getLogger(__name__)
RUNTIMES = ("auto", "torch", "onnx")
# runtime "auto" without a cached graph: export it once this many readings without pictures have run in
# PyTorch. The export takes tens of seconds of CPU and saves a few ms per reading; a process that reads a
# handful of images (a CLI call, a test) never pays for it, a webcam stream starts it within seconds.
EXPORT_AFTER = 100
LIMIT_NOTE = "{n} digits is the most NextNum reads: if the number is longer, this reading is not right"


@dataclass
class DigitReading:
    digit: str
    prob: float
    top3: list[tuple[str, float]]  # the three likeliest digits at this position


@dataclass
class Prediction:
    text: str  # "4072"; "" when nothing was found
    digits: list[DigitReading]
    confidence: float  # probability of the whole string (digits and the stop)
    message: str  # e.g. "no digits found: the image looks blank"
    stages: dict[str, np.ndarray]  # ordered name -> image (empty with explain=False)
    attention: AttentionViews | None
    timings_ms: dict[str, float]
    canvas: np.ndarray  # (H, W) the model's input, ink = 1
    geometry: Geometry | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary; "box" is the digits' ink box (x0, y0, x1, y1) in the pixels of the image as
        given (also when it was read shrunk), or None."""
        return {"text": self.text, "confidence": round(self.confidence, 4), "message": self.message,
                "digits": [{"digit": d.digit, "prob": round(d.prob, 4),
                            "top3": [[a, round(p, 4)] for a, p in d.top3]} for d in self.digits],
                "box": None if self.geometry is None else [round(v * self.geometry.zoom) for v in self.geometry.crop],
                "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()}}


def add_load_args(ap: argparse.ArgumentParser) -> None:
    """The options every CLI that reads through a Predictor shares (nextnum.predict, nextnum.evaluate)."""
    ap.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the shipped model)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--runtime", choices=RUNTIMES, default="auto",
                    help="readings without pictures: auto = onnxruntime when installed and the model's graph is "
                         "exported (cached per weights), else PyTorch; onnx = export now if needed; torch")


class Predictor:
    def __init__(self, model: NextNum, config: Config, metrics: dict | None = None,
                 checkpoint_path: Path | None = None, device: str | torch.device = "cpu",
                 runtime: str = "torch") -> None:
        """runtime: how explain=False readings run (see load); "torch" for a model given directly."""
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
        self.model = model.eval().to(device)
        self.runtime = runtime
        self.config = config
        self.metrics = metrics or {}
        self.checkpoint = checkpoint_path
        self.device = torch.device(device)
        # explain=False readings need no attention weights: onnxruntime runs the same greedy loop faster
        self._fast = None
        self._fast_done = threading.Event()  # set once onnxruntime is reading, or will not
        self._fast_started = threading.Lock()
        self._slow_reads = 0  # explain=False readings PyTorch made for want of a graph
        if runtime == "onnx":
            from .export import OnnxReader
            self._use_fast(OnnxReader(self.model.cpu(), beside=checkpoint_path))
            self.model.to(device)
        elif runtime == "auto" and self.device.type == "cpu":  # on an accelerator PyTorch is the fast path
            from . import export as E
            if not E.has_onnxruntime():
                log.info("onnxruntime is not installed: readings run in PyTorch")
                self._use_fast(None)
            elif (graph := E.cached_graph(E.graph_places(self.model, checkpoint_path))) is not None:
                self._use_fast(E.load_reader(graph))
        else:
            self._fast_done.set()
        # Training fits each strip's ink box at fit_scale times a random shrink in DataConfig.fit_shrink
        # (0.8-1.0). On bench/realsets.py's seed-0 sets (4 x 300 images, the shipped model) 1.0 read best
        # on average (0.86, against 0.84 at 0.95 and 0.85 at 0.9): within noise, so the simplest is kept.
        self.shrink = 1.0

    @classmethod
    def load(cls, checkpoint: str | Path | None = None, device: str | torch.device = "cpu",
             runtime: str = "auto") -> "Predictor":
        """Load a checkpoint folder once (None = the shipped model in checkpoints/nextnum).

        runtime decides how readings with explain=False run (explain=True always runs in PyTorch, which
        returns the attention weights; both read the same tokens):
        - "auto": in onnxruntime when it is installed. The model's graph is exported once per weights
          (tens of seconds of CPU) and kept beside the checkpoint (<checkpoint>/.onnx/) or in the user
          cache; without one, PyTorch reads, and after EXPORT_AFTER such readings (or wait_fast()) the
          export runs in a background thread. Any failure leaves PyTorch reading, with one log line.
        - "onnx": the same, exporting now if the graph is not cached yet.
        - "torch": PyTorch only."""
        from .checkpoint import SHIPPED, load
        path = Path(checkpoint) if checkpoint is not None else SHIPPED
        model, cfg, metrics = load(path, device=device)
        return cls(model, cfg, metrics, path, device, runtime)

    @property
    def reads_with(self) -> str:
        """What explain=False readings run in now: "onnxruntime" or "torch"."""
        return "torch" if self._fast is None else "onnxruntime"

    def wait_fast(self, timeout: float | None = None) -> bool:
        """Start the background export if it has not started (runtime "auto"), wait for it, and say
        whether explain=False readings now run in onnxruntime."""
        self._start_fast()
        self._fast_done.wait(timeout)
        return self._fast is not None

    def _use_fast(self, reader) -> None:
        self._fast = reader
        self._fast_done.set()

    def _start_fast(self) -> None:
        """runtime "auto" without a cached graph: export it in the background, once."""
        if self._fast_done.is_set() or not self._fast_started.acquire(blocking=False):
            return
        from .export import start_reader
        start_reader(self.model, self.checkpoint, self._use_fast)

    @property
    def canvas_hw(self) -> tuple[int, int]:
        return self.config.model.img_h, self.config.model.img_w

    def predict(self, image: Any, explain: bool = True, roi: tuple[float, float, float, float] | None = None) -> Prediction:
        """Read the digits in an image. explain=False skips stage images and attention maps (fastest).

        Raises preprocess.ImageError for input that is not a readable image.
        """
        t0 = time.perf_counter()
        pre = preprocess(image, self.canvas_hw, roi=roi, stages=explain, shrink=self.shrink)
        timings = {f"preprocess.{k}": v for k, v in pre.timings_ms.items()}
        if pre.empty:
            timings["total"] = (time.perf_counter() - t0) * 1000
            return Prediction("", [], 0.0, pre.message, pre.stages, None, timings, pre.canvas, None)
        t1 = time.perf_counter()
        gen = self._read_fast(pre.tensor) if not explain else None
        if gen is None:
            gen = self.model.generate(pre.tensor.to(self.device), return_attn=explain)
        t2 = time.perf_counter()
        timings["model"] = (t2 - t1) * 1000
        text, digits, conf = _readings(gen)
        views = self._views(pre, gen, len(digits)) if explain else None
        if explain:
            timings["visualise"] = (time.perf_counter() - t2) * 1000
        timings["total"] = (time.perf_counter() - t0) * 1000
        log.debug("read %r (%.2f) in %.1f ms", text, conf, timings["total"])
        msg = pre.message
        if len(digits) == self.config.model.max_digits:
            # the decoder stops here whatever it sees, and does not read a longer number's first digits
            # (its stop probability is the same on 5-digit and 6-8-digit strips): say so rather than guess
            msg = "; ".join(m for m in (msg, LIMIT_NOTE.format(n=len(digits))) if m)
        return Prediction(text, digits, conf, msg, pre.stages, views, timings, pre.canvas, pre.geometry)

    def _read_fast(self, x: torch.Tensor) -> Generation | None:
        """The reading through onnxruntime, or None when PyTorch must read it (no graph yet, or failed)."""
        fast = self._fast
        if fast is None:
            self._slow_reads += 1
            if self._slow_reads >= EXPORT_AFTER:
                self._start_fast()
            return None
        try:
            return fast(x)
        except Exception as e:  # onnxruntime failed: PyTorch reads this one and every later one
            log.warning("onnxruntime failed, readings go back to PyTorch: %s: %s", type(e).__name__, e)
            self._fast = None
            return None

    def _views(self, pre: Preprocessed, gen: Generation, n: int) -> AttentionViews:
        """The token maps the pictures are drawn from (drawn when asked for: see explain.AttentionViews)."""
        grid = self.config.model.grid
        enc = gen.enc_attn[0]  # (L, H, N, N)
        return AttentionViews(cross=A.to_grid(gen.cross_attn[0, :n], grid),  # (S, layers, heads, gh, gw)
                              rollout=A.to_grid(A.rollout_importance(enc), grid),  # (gh, gw)
                              encoder=A.to_grid(enc.mean(-2), grid),  # (L, H, gh, gw): attention each token receives
                              original=pre.stages["original"], geometry=pre.geometry, cfg=self.config.model)

    def faithfulness(self, image: Any, frac: float = 0.1,
                     roi: tuple[float, float, float, float] | None = None) -> list[dict[str, Any]]:
        """For each digit read, blank the canvas under its most-attended `frac` of tokens and read again.

        If the attention is faithful, the digit's probability should drop far more than when as many
        other tokens over ink, picked at random, are blanked (tokens over empty canvas would be no test).
        Returns one dict per digit: its probability, and the reading and that digit's probability with
        the top tokens masked and with the random ones masked.
        """
        pred = self.predict(image, explain=True, roi=roi)
        if not pred.text:
            return []
        cfg = self.config.model
        rng = np.random.default_rng(0)
        gh, gw = cfg.grid
        f, k = cfg.field, cfg.cell
        inked = np.array([pred.canvas[r * k:r * k + f, c * k:c * k + f].max() > 0.1
                          for r in range(gh) for c in range(gw)])  # (N,) tokens with ink under them
        out = []
        for i, d in enumerate(pred.digits):
            m = pred.attention.cross[i].mean((0, 1)).reshape(-1)  # (N,)
            top = A.top_tokens(m, frac)
            rest = np.setdiff1d(np.flatnonzero(inked), top)
            if rest.size < top.size:
                rest = np.setdiff1d(np.arange(m.size), top)
            rand = rng.choice(rest, size=min(top.size, rest.size), replace=False)
            row = {"position": i, "digit": d.digit, "prob": d.prob}
            for name, toks in (("top", top), ("random", rand)):
                c = A.mask_tokens(pred.canvas, toks, cfg)
                g = self.model.generate(torch.from_numpy(c)[None, None].to(self.device))
                text, _, _ = _readings(g)
                p = float(g.probs[0, i, int(d.digit)]) if i < g.probs.shape[1] else 0.0
                row[f"{name}_masked_text"], row[f"{name}_masked_prob"] = text, p
            out.append(row)
        return out


def _readings(gen: Generation) -> tuple[str, list[DigitReading], float]:
    """Text, per-digit readings and whole-string confidence (the digits' and the stop's probabilities)
    for the first image of a Generation."""
    toks = gen.tokens[0].tolist()
    probs = gen.probs[0].float().cpu().numpy()  # (S, VOCAB)
    text = tokens_text(toks)
    digits = []
    for i, t in enumerate(toks[:len(text)]):
        top = np.argsort(-probs[i, :10], kind="stable")[:3]  # ties in index order, as argmax breaks them
        digits.append(DigitReading(str(t), float(probs[i, t]), [(str(int(k)), float(probs[i, k])) for k in top]))
    conf = math.prod(float(probs[i, t]) for i, t in enumerate(toks[:len(text) + 1]))
    return text, digits, conf
