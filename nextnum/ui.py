"""Helpers behind the Gradio app: checkpoint choice, reading views, webcam frames, the training slot.

Nothing here imports Gradio; app.py only lays out components and wires them to these functions.
"""
from __future__ import annotations

import html
import json
import logging
import queue
import re
import shutil
import threading
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from . import checkpoint
from .attention import DIGIT_COLOURS
from .config import Config

log = logging.getLogger(__name__)

GUIDE_ROI = (0.08, 0.3, 0.92, 0.7)  # webcam guide box: x0, y0, x1, y1 as fractions of the frame
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # checkpoint names: one plain folder, never hidden


# ---------------------------------------------------------------- checkpoints

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


def is_checkpoint(path: Path) -> bool:
    return path.is_dir() and (path / checkpoint.WEIGHTS).is_file() and (path / checkpoint.CONFIG).is_file()


class Checkpoints:
    """The checkpoints the app may load: plain (non-hidden) folders directly under `root`, plus one
    operator-given folder (--checkpoint) that may live elsewhere. Names from the UI or the API are
    looked up here, never joined blindly into a path, so a client cannot name anything else."""

    def __init__(self, root: str | Path, extra: str | Path | None = None, cache_size: int = 4) -> None:
        self.root = Path(root).resolve()
        self.extra: tuple[str, Path] | None = None
        self._startup: str | None = None
        if extra is not None:
            p = Path(extra).resolve()
            self._startup = p.name
            if p.parent != self.root:  # outside root: listed under its own name (marked if that is taken)
                self._startup = p.name if not (self.root / p.name).exists() else f"{p.name} (--checkpoint)"
                self.extra = (self._startup, p)
        self._cache: OrderedDict[tuple[str, int], Any] = OrderedDict()
        self._lock = threading.Lock()
        self._size = cache_size

    def names(self) -> list[str]:
        self._recover_interrupted()
        found = sorted(p.name for p in self.root.iterdir() if not p.name.startswith(".") and NAME_RE.match(p.name)
                       and p.resolve().parent == self.root and is_checkpoint(p)) if self.root.is_dir() else []
        if "nextnum" in found:  # the shipped model first
            found.insert(0, found.pop(found.index("nextnum")))
        return ([self.extra[0]] if self.extra else []) + found

    def _recover_interrupted(self, after_s: float = 2.0) -> None:
        """Put back a checkpoint whose re-save was killed between its two renames (checkpoint.write_files
        leaves it as .<name>.old-*), so it is listed again. A live save is between them for microseconds:
        only folders renamed more than after_s ago are touched."""
        for old in self.root.glob(".*.old-*") if self.root.is_dir() else []:
            path = self.root / old.name[1:].rsplit(".old-", 1)[0]
            try:
                if NAME_RE.match(path.name) and not path.exists() and time.time() - old.stat().st_ctime > after_s:
                    checkpoint._recover(path)
            except OSError:  # another request put it back first
                pass

    def default(self) -> str | None:
        if self._startup is not None:
            return self._startup
        names = [n for n in self.names() if n != "nextnum"]
        if (self.root / "nextnum").is_dir() and is_checkpoint(self.root / "nextnum"):
            return "nextnum"  # the shipped model, else the newest one
        return max(names, key=lambda n: (self.root / n / checkpoint.WEIGHTS).stat().st_mtime, default=None)

    def resolve(self, name: str | None) -> Path:
        if not name:
            raise checkpoint.CheckpointError("no checkpoint chosen: train one in the Train tab, or start the app "
                                             "with --checkpoint")
        if self.extra and name == self.extra[0]:
            return self.extra[1]
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise checkpoint.CheckpointError(f"{name!r} is not a checkpoint name (a folder directly under "
                                             "checkpoints/)")
        path = (self.root / name).resolve()
        if path.parent != self.root or not is_checkpoint(path):  # also refuses symlinks that lead elsewhere
            raise checkpoint.CheckpointError(f"no checkpoint named {name!r} under {self.root.name}/")
        return path

    def predictor(self, name: str | None):
        """The Predictor for a checkpoint name, loaded once and kept (models are read-only once loaded)."""
        from .predictor import Predictor
        path = self.resolve(name)
        key = (str(path), (path / checkpoint.WEIGHTS).stat().st_mtime_ns)  # a re-saved folder is reloaded
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        p = Predictor.load(path)
        with self._lock:
            self._cache[key] = p
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return p


# ---------------------------------------------------------------- readings

def thumb(img: np.ndarray, max_side: int = 640) -> np.ndarray:
    """Downscale for display; returned images are encoded per request, so smaller is faster."""
    h, w = img.shape[:2]
    f = max_side / max(h, w)
    return cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA) if f < 1 else img


READ_SIDE = 2000  # the app reads images at most this big (longer side), see for_reading


def for_reading(image: Any) -> np.ndarray:
    """What the app got (file path, array, sketchpad value) as an array no larger than READ_SIDE.

    Raises preprocess.ImageError for what is not an image. With explain=True every map is drawn at the
    image's size: a 10,000 px upload took 9 s and 2.8 GB; downscaled first it takes a fraction of a
    second, and the reading hardly changes (the digits are looked for on a copy of at most 800 px)."""
    from .inputs import to_array
    return thumb(to_array(image), READ_SIDE)


def reading_html(pred, note: str = "") -> str:
    """The digits big, each with its confidence bar and the next likeliest alternatives."""
    if pred is None or not pred.digits:
        msg = html.escape(pred.message if pred is not None and pred.message else note or "Draw a number to read it.")
        return f"<div class='nn-reading nn-empty' style='font-size:1.2em;color:#666;padding:1em'>{msg}</div>"
    cards = []
    for i, d in enumerate(pred.digits):
        r, g, b = DIGIT_COLOURS[i % len(DIGIT_COLOURS)]
        alts = ", ".join(f"{a} {p:.0%}" for a, p in d.top3[1:] if p >= 0.005) or "none"
        cards.append(
            f"<div style='display:inline-block;text-align:center;margin:0 .4em;min-width:3.2em'>"
            f"<div style='font-size:4.2em;font-weight:700;line-height:1.05;color:rgb({r},{g},{b})'>{d.digit}</div>"
            f"<div style='height:.45em;background:#ddd;border-radius:3px'><div style='height:100%;width:{d.prob:.0%};"
            f"background:rgb({r},{g},{b});border-radius:3px'></div></div>"
            f"<div style='font-size:.95em'>{d.prob:.0%}</div>"
            f"<div style='font-size:.8em;color:#666'>or {alts}</div></div>")
    extra = f"<div style='color:#a60'>{html.escape(pred.message)}</div>" if pred.message else ""
    return (f"<div class='nn-reading'>{''.join(cards)}<div style='margin-top:.4em'>whole reading "
            f"<b>{pred.confidence:.0%}</b> sure{(' · ' + html.escape(note)) if note else ''}</div>{extra}</div>")


def crop(img: np.ndarray, roi: tuple[float, float, float, float] | None) -> np.ndarray:
    if roi is None:
        return img
    h, w = img.shape[:2]
    x0, y0 = int(roi[0] * w), int(roi[1] * h)
    return img[y0:max(int(roi[3] * h), y0 + 1), x0:max(int(roi[2] * w), x0 + 1)]


def ink_roi(pred, margin: float = 0.25) -> tuple[float, float, float, float] | None:
    """The digits' box in the original image as fractions, grown by `margin` of its height each side."""
    if pred is None or pred.geometry is None:
        return None
    (h, w), (x0, y0, x1, y1) = pred.geometry.src_hw, pred.geometry.crop
    m = margin * (y1 - y0)
    return max(0.0, (x0 - m) / w), max(0.0, (y0 - m) / h), min(1.0, (x1 + m) / w), min(1.0, (y1 + m) / h)


def attention_gallery(pred) -> list[tuple[np.ndarray, str]]:
    """Per-digit overlays ("where it looked for digit k"), cropped around the digits."""
    if pred is None or pred.attention is None:
        return []
    roi = ink_roi(pred)
    return [(thumb(crop(img, roi)), f"digit {i + 1}: {d.digit} ({d.prob:.0%})")
            for i, (d, img) in enumerate(zip(pred.digits, pred.attention.per_digit))]


def stage_gallery(pred) -> list[tuple[np.ndarray, str]]:
    return [] if pred is None else [(thumb(img), name) for name, img in pred.stages.items()]


def layer_head_choices(cfg: Config | None) -> tuple[list[str], list[str]]:
    """Encoder selector choices: rollout or one layer; the mean of the heads or one head."""
    if cfg is None:
        return ["rollout"], ["mean"]
    m = cfg.model
    return (["rollout"] + [f"layer {i + 1}" for i in range(m.enc_layers)],
            ["mean"] + [f"head {i + 1}" for i in range(m.heads)])


def _index(choice: str | None, n: int) -> int | None:
    """'layer 2' -> 1; anything else (rollout, mean, out of range) -> None."""
    m = re.fullmatch(r"\w+ (\d+)", choice or "")
    i = int(m.group(1)) - 1 if m else -1
    return i if 0 <= i < n else None


def encoder_view(pred, layer: str | None, head: str | None) -> np.ndarray | None:
    if pred is None or pred.attention is None:
        return None
    a = pred.attention
    li = _index(layer, a.encoder.shape[0])
    if li is None:
        return thumb(a.rollout_overlay)  # predict drew the rollout view already: don't draw it twice
    return thumb(a.encoder_overlay(li, _index(head, a.encoder.shape[1])))


def details(pred, checkpoint_name: str | None) -> dict[str, Any]:
    d = pred.as_dict() if pred is not None else {"text": "", "digits": [], "message": ""}
    d["checkpoint"] = checkpoint_name
    return d


def reading_views(pred, checkpoint_name: str | None, layer: str | None, head: str | None) -> tuple:
    """Everything the Draw and Upload tabs show, in order: digits text, reading HTML, per-digit gallery,
    combined map, encoder view, stages gallery, details dict."""
    combined = None
    if pred is not None and pred.attention is not None:
        combined = thumb(crop(pred.attention.combined, ink_roi(pred)))
    return (pred.text if pred is not None else "", reading_html(pred), attention_gallery(pred), combined,
            encoder_view(pred, layer, head), stage_gallery(pred), details(pred, checkpoint_name))


# ---------------------------------------------------------------- webcam

def new_stream_state() -> dict[str, Any]:
    return {"n": 0, "times": [], "history": [], "tint": None}


def read_frame(predictor, frame: np.ndarray, state: dict[str, Any] | None, smooth: bool, heavy_every: int,
               keep: int = 5) -> tuple[dict[str, Any], Any, str, np.ndarray, str]:
    """One webcam frame: read inside the guide box, with the attention maps only on every heavy_every-th
    frame (the last tint is laid over the frames between). Returns (state, prediction, text shown,
    annotated frame, stats line); prediction.attention is None on light frames."""
    t0 = time.perf_counter()
    st = state or new_stream_state()
    st["n"] += 1
    pred = predictor.predict(frame, explain=(st["n"] - 1) % heavy_every == 0, roi=GUIDE_ROI)  # frames 1, 1+k, ...
    if pred.attention is not None or not pred.text:
        st["tint"] = heat_tint(pred.attention.heat) if pred.attention is not None else None
    st["history"] = (st["history"] + [(pred.text, pred.confidence)])[-keep:]
    text = smooth_text(st["history"]) if smooth else pred.text
    img = annotate_frame(frame, text, st["tint"])
    st["times"] = (st["times"] + [time.perf_counter()])[-10:]
    return st, pred, text, img, stream_stats(st["times"], (time.perf_counter() - t0) * 1000, heavy_every)


def smooth_text(history: list[tuple[str, float]]) -> str:
    """The reading most supported over recent frames (summed confidence); empty readings count too,
    so taking the paper away clears the reading within a few frames."""
    votes: Counter[str] = Counter()
    for text, conf in history:
        votes[text] += max(conf, 0.05)
    return votes.most_common(1)[0][0] if votes else ""


def heat_tint(heat: list[np.ndarray], scale: float = 0.25) -> tuple[np.ndarray, np.ndarray] | None:
    """Colour (h, w, 3) and alpha (h, w) of each digit's attention map at reduced size, to be laid over
    the following frames until the next heavy frame replaces it."""
    if not heat:
        return None
    small = np.stack([cv2.resize(m, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) for m in heat])
    who, strength = small.argmax(0), small.max(0)
    colour = np.array(DIGIT_COLOURS, np.uint8)[who % len(DIGIT_COLOURS)]
    return colour, (0.7 * np.clip(strength, 0, 1)).astype(np.float32)


def annotate_frame(frame: np.ndarray, text: str, tint: tuple[np.ndarray, np.ndarray] | None,
                   roi: tuple[float, float, float, float] = GUIDE_ROI, max_side: int = 640) -> np.ndarray:
    """The frame with the attention tint, the guide box and the reading drawn on it."""
    out = thumb(np.ascontiguousarray(frame[..., :3]), max_side).copy()
    h, w = out.shape[:2]
    if tint is not None:
        colour, alpha = (cv2.resize(t, (w, h), interpolation=cv2.INTER_LINEAR) for t in tint)
        out = cv2.blendLinear(out, colour, 1 - alpha, alpha)  # on every frame: ~3x faster than numpy float maths
    x0, y0, x1, y1 = int(roi[0] * w), int(roi[1] * h), int(roi[2] * w), int(roi[3] * h)
    cv2.rectangle(out, (x0, y0), (x1, y1), (255, 140, 0), 2)
    label = text or "hold digits inside the box"
    scale = 1.4 if text else 0.7
    (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 3)
    ty = max(th + 6, y0 - 10)
    cv2.rectangle(out, (x0, ty - th - 6), (x0 + tw + 10, ty + 6), (0, 0, 0), -1)
    cv2.putText(out, label, (x0 + 5, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 3, cv2.LINE_AA)
    return out


def stream_stats(times: list[float], latency_ms: float, heavy_every: int) -> str:
    fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
    return f"latency {latency_ms:.0f} ms · {fps:.1f} frames/s read · attention refreshed every {heavy_every} frames"


# ---------------------------------------------------------------- model card

def accuracy_table(metrics: dict[str, Any]) -> tuple[list[list[Any]], str]:
    """Rows (length, samples, sequence accuracy) from the first 'by_length' found in metrics.json."""
    for key, block in [("", metrics)] + [(k, v) for k, v in metrics.items() if isinstance(v, dict)]:
        if isinstance(block.get("by_length"), dict):
            counts = block.get("by_length_count", {})
            rows = [[k, counts.get(k, ""), f"{v:.1%}"] for k, v in block["by_length"].items()]
            if "sequence_accuracy" in block:
                rows.append(["all", block.get("samples", ""), f"{block['sequence_accuracy']:.1%}"])
            src = block.get("source") or block.get("data") or key or "metrics.json"
            return rows, str(src)
    return [], ""


def model_card(pred_obj, name: str | None) -> tuple[str, list[list[Any]], dict[str, Any]]:
    """Markdown summary, accuracy-by-length rows and the config dict of a loaded Predictor."""
    if pred_obj is None:
        return "**No model loaded.** Train one in the Train tab or start the app with `--checkpoint PATH`.", [], {}
    m, cfg = pred_obj.metrics, pred_obj.config
    rows, src = accuracy_table(m)
    secs = m.get("train_seconds")
    lines = [f"### {html.escape(name or '?')}",
             f"- **parameters:** {pred_obj.model.num_params():,}",
             f"- **canvas:** {cfg.model.img_h}×{cfg.model.img_w}, "
             f"patch grid {cfg.model.grid[0]}×{cfg.model.grid[1]}, "
             f"{cfg.model.enc_layers} encoder + {cfg.model.dec_layers} decoder layers, width {cfg.model.dim}, "
             f"{cfg.model.heads} heads, up to {cfg.model.max_digits} digits",
             f"- **training:** {m.get('steps', '?')} steps" + (f" in {format_seconds(secs)}" if secs else "")
             + (f", status *{m['status']}*" if m.get("status") else ""),
             ]
    parent = m.get("init_metrics")
    if isinstance(parent, dict):  # fine-tuned (train.py --init): say from what
        p_secs = parent.get("train_seconds")
        lines.append(f"- **started from:** a model trained {parent.get('steps', '?')} steps"
                     + (f" in {format_seconds(p_secs)}" if p_secs else "")
                     + (f" ({html.escape(str(m['init']))})" if m.get("init") else ""))
    if m.get("best_val_seq_acc") is not None:
        lines.append(f"- **best validation sequence accuracy:** {m['best_val_seq_acc']:.1%} "
                     f"({m.get('val', 'validation canvases')})")
    lines.append(f"- **accuracy by length** below: {html.escape(src)}" if src else
                 "- no accuracy-by-length table in this checkpoint's metrics.json (run `python -m nextnum.evaluate`)")
    return "\n".join(lines), rows, cfg.to_dict()


# ---------------------------------------------------------------- training

def format_seconds(s: float | None) -> str:
    if s is None or not np.isfinite(s):
        return "?"
    s = int(round(s))
    return f"{s // 3600}h {s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m {s % 60:02d}s" if s >= 60 else f"{s}s"


def progress_line(p: dict[str, Any]) -> str:
    val = "-" if p.get("val_seq_acc") is None else f"{p['val_seq_acc']:.1%}"
    return (f"step {p['step']}/{p['steps']} · loss {p['loss']:.3f} · token acc {p['token_acc']:.1%} · "
            f"val sequence acc {val} · up to {p['max_len']} digits · {format_seconds(p['elapsed_s'])} elapsed, "
            f"ETA {format_seconds(p['eta_s'])}")


def curves(rows: list[dict[str, Any]], keys: tuple[str, ...] = ("loss", "token_acc", "val_seq_acc")):
    """Long-form DataFrame (step, value, metric) of the given progress keys, for a gr.LinePlot."""
    import pandas as pd
    recs = [{"step": r["step"], "value": r[k], "metric": k} for r in rows for k in keys if r.get(k) is not None]
    return pd.DataFrame(recs, columns=["step", "value", "metric"])


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
    from .data import render
    gen = torch.Generator().manual_seed(seed if seed is not None else int(time.time() * 1000) % 2**31)
    b = render(bank, n, cfg.data, (cfg.model.img_h, cfg.model.img_w), gen)
    read = model.generate(b.images).texts()
    out = []
    for img, true, got in zip(b.images[:, 0].numpy(), b.texts, read):
        pic = cv2.resize((255 - img * 255).astype(np.uint8), None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
        out.append((pic, f"drawn {true} · read {got} {'✓' if got == true else '✗'}"))
    return out


def training_data(data_root: str | Path, force_fixture: bool = False) -> tuple[str, Callable[[], tuple[Any, Callable]]]:
    """What the Train tab trains on: MNIST under data_root when it is there, else the built-in sample.
    Returns (a note for the tab, a loader giving (bank, score(model, cfg) -> evaluation dict))."""
    from . import data, evaluate
    raw = Path(data_root) / "MNIST" / "raw"
    if not force_fixture and all((raw / f"{s}-images-idx3-ubyte").exists() for s in ("train", "t10k")):
        def load_mnist():
            def score(model, cfg):
                res = evaluate.evaluate_synthetic(model, data_root, 300, 0, cfg.data)
                return {**res, "source": "300 canvases of MNIST t10k digits"}
            return data.load_mnist(data_root, train=True), score
        return (f"Training data: MNIST from `{data_root}`; each new model is scored on 300 canvases of t10k digits.",
                load_mnist)

    def load_fixture():
        bank = data.load_fixture()

        def score(model, cfg):
            b = data.fixed_batches(bank, 100, cfg.data, (cfg.model.img_h, cfg.model.img_w), seed=12345)
            return {**evaluate.score(evaluate.predict_batches(model, b)),
                    "source": "100 canvases of the built-in sample (digits also seen in training)"}
        return bank, score
    why = "forced by NEXTNUM_TRAIN_DATA=fixture" if force_fixture else f"MNIST not found under `{data_root}`"
    return (f"**Training data: the small built-in sample of {len(data.load_fixture())} MNIST digits** ({why}). "
            "Fine to try the tab, not to make a good model: start the app with `--data DIR` pointing at MNIST.",
            load_fixture)


class Busy(RuntimeError):
    """Another training run holds the slot."""


@dataclass
class Run:
    name: str
    cfg: Config
    init: Path | None = None  # checkpoint whose weights the run starts from (None: fresh weights)
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    stop: threading.Event = field(default_factory=threading.Event)
    events: queue.Queue = field(default_factory=queue.Queue)
    history: list[dict[str, Any]] = field(default_factory=list)
    status: str = "starting"
    error: str = ""
    checkpoint: str | None = None  # folder name under checkpoints/ once promoted
    evaluation: dict[str, Any] | None = None
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
        return self._lock.locked()

    def start(self, cfg: Config, name: str, init: Path | None = None) -> Run:
        """Start training `cfg` into checkpoints/<name>, from fresh weights or from the checkpoint `init`
        (fine-tuning). ValueError, meant for the user, when the name or the starting point will not do."""
        if not NAME_RE.match(name or ""):
            raise ValueError("name the checkpoint with letters, digits, '-', '_' or '.' (not starting with '.')")
        if (self.root / name).exists():
            raise ValueError(f"checkpoints/{name} already exists: choose another name")
        if init is not None:
            from .model import init_mismatch
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
            run = Run(name, cfg, init)
            self.current = run
            threading.Thread(target=self._work, args=(run,), name=f"train-{name}", daemon=True).start()
        except BaseException:
            self._lock.release()
            raise
        return run

    def stop(self, token: str | None) -> bool:
        run = self.current
        if run is None or run.done.is_set() or token != run.token:
            return False
        run.stop.set()
        return True

    def _work(self, run: Run) -> None:
        from .train import train
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
                            init=run.init)
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
