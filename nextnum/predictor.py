"""The public reading API: load a checkpoint once, then predict(image) -> Prediction.

    from nextnum import Predictor
    p = Predictor.load()              # the shipped checkpoint
    pred = p.predict("note.jpg")      # any image: path, array, PIL, sketchpad value
    pred.text, pred.confidence, pred.digits[0].top3, pred.attention.per_digit[0]

Readings, with their attention maps or without, run in onnxruntime from the checkpoint's exported graph
(nextnum/runtime.py), with no PyTorch imported; PyTorch reads when there is no graph yet, or onnxruntime
is missing or fails. predict() keeps nothing between calls, so one Predictor can serve several threads.
"""
from __future__ import annotations

import argparse
import logging
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import attention as A
from . import runtime as R
from . import tta
from .config import READ_SHRINK, Config
from .explain import AttentionViews
from .geometry import Geometry
from .preprocess import Preprocessed, preprocess
from .runtime import Reading, tokens_text

if TYPE_CHECKING:
    import torch

    from .model import NextNum

log = logging.getLogger(__name__)
RUNTIMES = ("auto", "torch", "onnx")
# runtime "auto" without a cached graph: export it once this many readings have run in PyTorch. The export
# takes tens of seconds of CPU and saves several ms per reading; a process that reads a handful of images
# (a CLI call, a test) never pays for it, a webcam stream starts it within seconds.
EXPORT_AFTER = 100
LIMIT_NOTE = "{n} digits is the most NextNum reads: if the number is longer, this reading is not right"
BUFFERS = ("running_mean", "running_var", "num_batches_tracked")  # BatchNorm's: saved, but not parameters
_FIND = object()  # Predictor(reader=_FIND): look for the model's graph


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
    canvas: np.ndarray  # (H, W) the model's input, ink = 1 (the winning view's, when views voted)
    geometry: Geometry | None
    agree: tuple[int, int] | None = None  # a second look: (views that read this text, views read); None: one view

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary; "box" is the digits' ink box (x0, y0, x1, y1) in the pixels of the image as
        given (also when it was read shrunk), or None; "views_agree" is `agree` (a second look) or None."""
        return {"text": self.text, "confidence": round(self.confidence, 4), "message": self.message,
                "digits": [{"digit": d.digit, "prob": round(d.prob, 4),
                            "top3": [[a, round(p, 4)] for a, p in d.top3]} for d in self.digits],
                "box": None if self.geometry is None else [round(v * self.geometry.zoom) for v in self.geometry.crop],
                "views_agree": None if self.agree is None else list(self.agree),
                "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()}}


def add_load_args(ap: argparse.ArgumentParser) -> None:
    """The options every CLI that reads through a Predictor shares (nextnum.read, nextnum.evaluate)."""
    ap.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the shipped model)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--runtime", choices=RUNTIMES, default="auto",
                    help="auto = onnxruntime when installed and the model's graph is exported (cached per "
                         "weights), else PyTorch; onnx = export now if needed; torch")


class Predictor:
    def __init__(self, model: NextNum | None, config: Config, metrics: dict | None = None,
                 checkpoint_path: Path | None = None, device: str | torch.device = "cpu",
                 runtime: str = "torch", reader: Any = _FIND) -> None:
        """runtime: what readings run in (see load); "torch" for a model given directly. model None: the
        weights of checkpoint_path, loaded (with PyTorch) only if PyTorch must read. reader: an OnnxReader
        already made, or None for PyTorch."""
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
        if model is None and checkpoint_path is None:
            raise ValueError("a Predictor needs a model or a checkpoint folder")
        self._model = None if model is None else model.eval().to(device)
        self._model_lock = threading.Lock()
        self.runtime = runtime
        self.config = config
        self.metrics = metrics or {}
        self.checkpoint = checkpoint_path
        self.device = str(device)
        self._fast = None  # an OnnxReader, once onnxruntime reads
        self._fast_done = threading.Event()  # set once onnxruntime is reading, or will not
        self._fast_started = threading.Lock()
        self._slow_reads = 0  # readings PyTorch made for want of a graph
        if reader is not _FIND:
            self._use_fast(reader)
        elif runtime == "onnx":
            from .export import cached_export
            self._use_fast(R.OnnxReader(cached_export(self.model.cpu(), beside=checkpoint_path)))
            self.model.to(device)
        elif runtime == "auto" and self.device.split(":")[0] == "cpu":  # on an accelerator PyTorch is the fast path
            if not R.has_onnxruntime():
                log.info("onnxruntime is not installed: readings run in PyTorch")
                self._use_fast(None)
            elif (graph := R.cached_graph(R.graph_places(self._graph_key(), checkpoint_path))) is not None:
                self._use_fast(R.load_reader(graph))
        else:
            self._fast_done.set()
        self.shrink = READ_SHRINK  # training draws it from DataConfig.fit_shrink

    @classmethod
    def load(cls, checkpoint: str | Path | None = None, device: str | torch.device = "cpu",
             runtime: str = "auto") -> "Predictor":
        """Load a checkpoint folder once (None = the shipped model in checkpoints/nextnum).

        runtime decides what readings (with their pictures or without) run in; both read the same tokens,
        probabilities and attention:
        - "auto": in onnxruntime when it is installed and the model's graph is found beside the checkpoint
          (<checkpoint>/.onnx/) or in the user cache; then PyTorch is not even imported. Without a graph,
          PyTorch reads, and after EXPORT_AFTER readings (or wait_fast()) the graph is exported (tens of
          seconds of CPU) in a background thread and kept. Any failure leaves PyTorch reading, with one log line.
        - "onnx": the same, exporting now if the graph is not cached yet.
        - "torch": PyTorch only."""
        from . import checkpoint as C
        path = Path(checkpoint) if checkpoint is not None else C.SHIPPED
        if runtime in ("auto", "onnx") and str(device).split(":")[0] == "cpu" and R.has_onnxruntime():
            cfg, metrics = C.read(path)
            graph = R.cached_graph(R.graph_places(R.graph_key(cfg.model, C.weights(path)), path))
            if graph is not None:
                reader = R.load_reader(graph)  # None (logged) when onnxruntime refuses it: PyTorch reads
                model = None if reader is not None else C.load(path, device=device)[0]
                return cls(model, cfg, metrics, path, device, runtime, reader=reader)
        model, cfg, metrics = C.load(path, device=device)
        return cls(model, cfg, metrics, path, device, runtime)

    @property
    def model(self) -> NextNum:
        """The PyTorch model (loaded from the checkpoint on first use when onnxruntime reads)."""
        if self._model is None:
            with self._model_lock:
                if self._model is None:
                    from .checkpoint import load
                    self._model = load(self.checkpoint, device=self.device)[0]
        return self._model

    def _graph_key(self) -> str:
        if self._model is not None:
            from .export import graph_key
            return graph_key(self._model)
        from .checkpoint import weights
        return R.graph_key(self.config.model, weights(self.checkpoint))

    @property
    def num_params(self) -> int:
        """The model's parameter count, from the weights file when PyTorch has not loaded it."""
        if self._model is not None:
            return self._model.num_params()
        from .checkpoint import weights
        return sum(int(a.size) for k, a in weights(self.checkpoint).items() if not k.endswith(BUFFERS))

    @property
    def reads_with(self) -> str:
        """What readings run in now: "onnxruntime" or "torch"."""
        return "torch" if self._fast is None else "onnxruntime"

    def wait_fast(self, timeout: float | None = None) -> bool:
        """Start the background export if it has not started (runtime "auto"), wait for it, and say
        whether readings now run in onnxruntime."""
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

    def preprocess(self, image: Any, roi: tuple[float, float, float, float] | None = None,
                   stages: bool = False) -> Preprocessed:
        """The canvas this model reads an image as: preprocess with the model's canvas and settings."""
        return preprocess(image, self.canvas_hw, roi=roi, stages=stages, shrink=self.shrink,
                          match_strokes=self.config.model.match_strokes)

    def predict(self, image: Any, explain: bool = True, roi: tuple[float, float, float, float] | None = None) -> Prediction:
        """Read the digits in an image. explain=False skips stage images and attention maps (fastest).

        Raises preprocess.ImageError for input that is not a readable image.
        """
        t0 = time.perf_counter()
        pre = self.preprocess(image, roi=roi, stages=explain)
        timings = {f"preprocess.{k}": v for k, v in pre.timings_ms.items()}
        if pre.empty:
            timings["total"] = (time.perf_counter() - t0) * 1000
            return Prediction("", [], 0.0, pre.message, pre.stages, None, timings, pre.canvas, None)
        t1 = time.perf_counter()
        gen = self.read(pre.canvas[None, None], attention=explain)
        t2 = time.perf_counter()
        timings["model"] = (t2 - t1) * 1000
        text, digits, conf = _readings(gen)
        canvas, geometry, agree = pre.canvas, pre.geometry, None
        if conf < self.config.model.views_below:
            gen, conf, view, agree = self._reread(canvas, gen, explain)
            text, digits, _ = _readings(gen)
            if view != tta.SELF:
                canvas, geometry = tta.warp(canvas, view), tta.geometry(geometry, view)
            t3 = time.perf_counter()
            timings["reread"], t2 = (t3 - t2) * 1000, t3
        views = self._views(pre, gen, len(digits), canvas, geometry) if explain else None
        if explain:
            timings["visualise"] = (time.perf_counter() - t2) * 1000
        timings["total"] = (time.perf_counter() - t0) * 1000
        log.debug("read %r (%.2f) in %.1f ms", text, conf, timings["total"])
        msg = pre.message
        if len(digits) == self.config.model.max_digits:
            # the decoder stops here whatever it sees, and does not read a longer number's first digits
            # (its stop probability is the same on 5-digit and 6-8-digit strips): say so rather than guess
            msg = "; ".join(m for m in (msg, LIMIT_NOTE.format(n=len(digits))) if m)
        return Prediction(text, digits, conf, msg, pre.stages, views, timings, canvas, geometry, agree)

    def stages(self, image: Any, roi: tuple[float, float, float, float] | None = None) -> dict[str, np.ndarray]:
        """The preprocessing stages' pictures of an image, as predict(explain=True) returns them, without
        reading it (ImageError as predict)."""
        return self.preprocess(image, roi=roi, stages=True).stages

    def read(self, canvas: np.ndarray, attention: bool = False) -> Reading:
        """Greedy decoding of canvases (B, 1, H, W), ink = 1: in onnxruntime when it reads, else in PyTorch
        (the attention too when asked; onnxruntime returns the steps after EOS as PAD)."""
        fast = self._fast
        if fast is not None:
            try:
                return fast(canvas, attention=attention)
            except Exception as e:  # onnxruntime failed: PyTorch reads this one and every later one
                log.warning("onnxruntime failed, readings go back to PyTorch: %s: %s", type(e).__name__, e)
                self._fast = None
        else:
            self._slow_reads += 1
            if self._slow_reads >= EXPORT_AFTER:
                self._start_fast()
        import torch
        x = torch.from_numpy(np.ascontiguousarray(canvas, np.float32)).to(self.device)
        return self.model.generate(x, return_attn=attention).numpy()

    def _reread(self, canvas: np.ndarray, gen: Reading, attention: bool) -> tuple[Reading, float, tta.View, tuple[int, int]]:
        """A doubtful reading: read tta.VIEWS of the canvas in one batch, and let every view vote (tta.vote).
        Returns the winning view's reading (one row), the vote's confidence, the view (identity: the canvas)
        and (views that read the winning text, views read)."""
        more = self.read(np.stack([tta.warp(canvas, v) for v in tta.VIEWS])[:, None], attention=attention)
        rows = [gen] + [more.row(i) for i in range(len(tta.VIEWS))]
        votes = [(text, p) for text, _, p in map(_readings, rows)]
        best, conf = tta.vote(votes)
        return rows[best], conf, ((tta.SELF,) + tta.VIEWS)[best], (sum(t == votes[best][0] for t, _ in votes), len(votes))

    def _views(self, pre: Preprocessed, gen: Reading, n: int, canvas: np.ndarray, geometry: Geometry) -> AttentionViews:
        """The token maps the pictures are drawn from (drawn when asked for: see explain.AttentionViews), over
        the canvas read (the view that won, when views voted) and mapped back by its geometry."""
        grid = self.config.model.grid
        enc = gen.enc_attn[0]  # (L, H, N, N)
        return AttentionViews(cross=A.to_grid(gen.cross_attn[0, :n], grid),  # (S, layers, heads, gh, gw)
                              rollout=A.to_grid(A.rollout_importance(enc), grid),  # (gh, gw)
                              encoder=A.to_grid(enc.mean(-2), grid),  # (L, H, gh, gw): attention each token receives
                              original=pre.stages["original"], geometry=geometry, cfg=self.config.model,
                              canvas=canvas)


def _readings(gen: Reading) -> tuple[str, list[DigitReading], float]:
    """Text, per-digit readings and whole-string confidence (the digits' and the stop's probabilities)
    for the first image of a Reading."""
    toks = gen.tokens[0].tolist()
    probs = np.asarray(gen.probs[0], np.float32)  # (S, VOCAB)
    text = tokens_text(toks)
    digits = []
    for i, t in enumerate(toks[:len(text)]):
        top = np.argsort(-probs[i, :10], kind="stable")[:3]  # ties in index order, as argmax breaks them
        digits.append(DigitReading(str(t), float(probs[i, t]), [(str(int(k)), float(probs[i, k])) for k in top]))
    conf = math.prod(float(probs[i, t]) for i, t in enumerate(toks[:len(text) + 1]))
    return text, digits, conf
