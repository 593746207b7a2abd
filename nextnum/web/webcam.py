"""Webcam frames: read inside the guide box, smooth the reading over frames, draw the tint, box and stats."""
from __future__ import annotations

import time
from collections import Counter
from typing import Any

import cv2
import numpy as np

from ..attention import DIGIT_COLOURS
from ..explain import AttentionViews
from ..inputs import downscale, roi_box
from .views import DISPLAY_SIDE

GUIDE_ROI = (0.08, 0.3, 0.92, 0.7)  # webcam guide box: x0, y0, x1, y1 as fractions of the frame


def new_stream_state() -> dict[str, Any]:
    """A webcam session's state: frames seen, their times, recent readings, the last attention tint."""
    return {"n": 0, "times": [], "history": [], "tint": None}


def read_frame(predictor, frame: np.ndarray, state: dict[str, Any] | None, smooth: bool, heavy_every: int,
               keep: int = 5) -> tuple[dict[str, Any], Any, str, np.ndarray, str]:
    """One webcam frame: read inside the guide box, with the attention maps only on every heavy_every-th
    frame (the last tint is laid over the frames between). Returns (state, prediction, text shown,
    annotated frame, stats line); prediction.attention is None on light frames."""
    t0 = time.perf_counter()
    st = state or new_stream_state()
    st["n"] += 1
    heavy = (st["n"] - 1) % heavy_every == 0  # frames 1, 1 + k, ...
    if heavy:  # the frame a correction would save, as a JPEG: ~50 KB a session where the array took 900 KB
        st["frame"] = cv2.imencode(".jpg", np.ascontiguousarray(frame[..., 2::-1]) if frame.ndim == 3 else frame,
                                   [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    pred = predictor.predict(frame, explain=heavy, roi=GUIDE_ROI)
    if pred.attention is not None or not pred.text:
        st["tint"] = heat_tint(pred.attention) if pred.attention is not None else None
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


def heat_tint(att: AttentionViews, scale: float = 0.25) -> tuple[np.ndarray, np.ndarray] | None:
    """Colour (h, w, 3) and alpha (h, w) of each digit's attention map, drawn at `scale` of the frame, to be
    laid over the following frames until the next heavy frame replaces it."""
    h, w = att.original.shape[:2]
    heat = att.heat_maps(att.window(box=(max(1, round(w * scale)), max(1, round(h * scale)))))
    if not heat:
        return None
    small = np.stack(heat)
    who, strength = small.argmax(0), small.max(0)
    colour = np.array(DIGIT_COLOURS, np.uint8)[who % len(DIGIT_COLOURS)]
    return colour, (0.7 * np.clip(strength, 0, 1)).astype(np.float32)


def annotate_frame(frame: np.ndarray, text: str, tint: tuple[np.ndarray, np.ndarray] | None,
                   roi: tuple[float, float, float, float] = GUIDE_ROI, max_side: int = DISPLAY_SIDE) -> np.ndarray:
    """The frame with the attention tint, the guide box and the reading drawn on it."""
    out = downscale(np.ascontiguousarray(frame[..., :3]), max_side).copy()
    h, w = out.shape[:2]
    if tint is not None:
        colour, alpha = (cv2.resize(t, (w, h), interpolation=cv2.INTER_LINEAR) for t in tint)
        out = cv2.blendLinear(out, colour, 1 - alpha, alpha)  # on every frame: ~3x faster than numpy float maths
    x0, y0, x1, y1 = roi_box((h, w), roi)
    cv2.rectangle(out, (x0, y0), (x1, y1), (255, 140, 0), 2)
    label = text or "hold digits inside the box"
    scale = 1.4 if text else 0.7
    (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 3)
    ty = max(th + 6, y0 - 10)
    cv2.rectangle(out, (x0, ty - th - 6), (x0 + tw + 10, ty + 6), (0, 0, 0), -1)
    cv2.putText(out, label, (x0 + 5, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 3, cv2.LINE_AA)
    return out


def stream_stats(times: list[float], latency_ms: float, heavy_every: int) -> str:
    """The line under the webcam view: this frame's latency and the frames read per second."""
    fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
    return f"latency {latency_ms:.0f} ms · {fps:.1f} frames/s read · attention refreshed every {heavy_every} frames"
