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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import attention as A
from .config import Config
from .model import Generation, NextNum, tokens_text
from .preprocess import Geometry, Preprocessed, preprocess

log = logging.getLogger(__name__)
RUNTIMES = ("torch", "onnx")
LIMIT_NOTE = "{n} digits is the most NextNum reads: if the number is longer, this reading is not right"


@dataclass
class DigitReading:
    digit: str
    prob: float
    top3: list[tuple[str, float]]  # the three likeliest digits at this position


@dataclass
class AttentionViews:
    """Where the model looked. Maps on the original image are (H0, W0) float32 in [0, 1], max 1."""
    heat: list[np.ndarray]  # per output digit: cross-attention averaged over layers and heads
    per_digit: list[np.ndarray]  # per output digit: RGB overlay of `heat` on the original
    combined: np.ndarray  # RGB: every digit's map in its own colour
    cross: np.ndarray  # (S, dec_layers, heads, gh, gw) raw cross-attention per digit
    rollout: np.ndarray  # (gh, gw) encoder attention rollout: attention each token receives
    rollout_overlay: np.ndarray  # RGB
    encoder: np.ndarray  # (enc_layers, heads, gh, gw) attention each token receives, per head
    original: np.ndarray = field(repr=False, default=None)  # RGB image the overlays are drawn on
    geometry: Geometry | None = field(repr=False, default=None)
    cfg: Any = field(repr=False, default=None)

    def cross_map(self, digit: int, layer: int | None = None, head: int | None = None) -> np.ndarray:
        """One digit's cross-attention on the original, for one layer/head (None = averaged)."""
        m = self.cross[digit]
        m = m.mean(0) if layer is None else m[layer]
        m = m.mean(0) if head is None else m[head]
        return A.on_original(m, self.geometry, self.cfg)

    def cross_overlay(self, digit: int, layer: int | None = None, head: int | None = None) -> np.ndarray:
        """Overlay of one digit's cross-attention for one layer/head (None = averaged)."""
        return A.overlay(self.original, self.cross_map(digit, layer, head), rect=self.geometry.canvas_rect())

    def encoder_overlay(self, layer: int | None = None, head: int | None = None) -> np.ndarray:
        """Overlay of encoder self-attention: rollout when layer is None, else one layer (head None = mean)."""
        if layer is None:
            m = self.rollout
        else:
            m = self.encoder[layer].mean(0) if head is None else self.encoder[layer, head]
        return A.overlay(self.original, A.on_original(m, self.geometry, self.cfg), cmap="viridis",
                         rect=self.geometry.canvas_rect())


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
    ap.add_argument("--runtime", choices=RUNTIMES, default="torch",
                    help="onnx: readings without pictures run in onnxruntime (faster per image, ~1 s more to load)")


class Predictor:
    def __init__(self, model: NextNum, config: Config, metrics: dict | None = None,
                 checkpoint_path: Path | None = None, device: str | torch.device = "cpu",
                 runtime: str = "torch") -> None:
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
        self.model = model.eval().to(device)
        self.runtime = runtime
        # explain=False readings need no attention weights: onnxruntime runs the same greedy loop faster
        self._fast = None
        if runtime == "onnx":
            from .export import OnnxReader
            self._fast = OnnxReader(self.model.cpu())
            self.model.to(device)
        self.config = config
        self.metrics = metrics or {}
        self.checkpoint = checkpoint_path
        self.device = torch.device(device)
        # Training fits each strip's ink box at fit_scale times a random shrink in DataConfig.fit_shrink
        # (0.8-1.0). On bench/realsets.py's seed-0 sets (4 x 300 images, the shipped model) 1.0 read best
        # on average (0.86, against 0.84 at 0.95 and 0.85 at 0.9): within noise, so the simplest is kept.
        self.shrink = 1.0

    @classmethod
    def load(cls, checkpoint: str | Path | None = None, device: str | torch.device = "cpu",
             runtime: str = "torch") -> "Predictor":
        """Load a checkpoint folder once (None = the shipped model in checkpoints/nextnum).

        runtime="onnx": readings with explain=False run in onnxruntime (same tokens, about 4x faster
        model time; costs a second at load and ~25 MB); explain=True always runs in PyTorch."""
        from .checkpoint import SHIPPED, load
        path = Path(checkpoint) if checkpoint is not None else SHIPPED
        model, cfg, metrics = load(path, device=device)
        return cls(model, cfg, metrics, path, device, runtime)

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
        if self._fast is not None and not explain:
            gen = self._fast(pre.tensor)
        else:
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

    def _views(self, pre: Preprocessed, gen: Generation, n: int) -> AttentionViews:
        cfg, geo = self.config.model, pre.geometry
        original, rect = pre.stages["original"], geo.canvas_rect()
        cross = A.to_grid(gen.cross_attn[0, :n], cfg.grid)  # (S, layers, heads, gh, gw)
        heat = [A.on_original(c.mean((0, 1)), geo, cfg) for c in cross]
        enc = gen.enc_attn[0]  # (L, H, N, N)
        roll = A.to_grid(A.token_importance(A.rollout(enc)), cfg.grid)  # (gh, gw)
        per_head = A.to_grid(enc.mean(-2), cfg.grid)  # (L, H, gh, gw): attention each token receives
        return AttentionViews(
            heat=heat, per_digit=[A.overlay(original, h, rect=rect) for h in heat],
            combined=A.combined(original, heat, rect=rect), cross=cross, rollout=roll,
            rollout_overlay=A.overlay(original, A.on_original(roll, geo, cfg), cmap="viridis", rect=rect),
            encoder=per_head, original=original, geometry=geo, cfg=cfg)

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
