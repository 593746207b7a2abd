"""What the reading tabs and the Model tab show: HTML of a reading, attention galleries, encoder view, model card."""
from __future__ import annotations

import html
import re
from typing import Any

import numpy as np
from tqdm import tqdm

from ..attention import DIGIT_COLOURS
from ..geometry import Window
from ..config import Config
from ..inputs import roi_box
from ..predictor import LIMIT_NOTE

# Pictures are drawn at the size the page shows them (width, height in CSS pixels): each one is drawn,
# encoded, sent and decoded per reading, so every pixel more costs on every reading.
DISPLAY_SIDE = 640  # the webcam's annotated frame (longer side)
DIGITS_BOX = (480, 180)  # per-digit overlays and the combined map: a map is shown at most ~240 px wide (3 a row)
ENCODER_BOX = (640, 170)  # the encoder view (170 high)
STAGE_BOX = (320, 200)  # each preprocessing stage (a gallery 200 high)
# what a reading card says before anything was read: the Draw tab's blank pad (empty_views), and an upload
# (read() of no file: the Upload tab and /predict)
EMPTY = {"draw": "Draw a number to read it.",
         "upload": "Upload a picture of a number (a photo, a scan or a drawing) to read it."}
CONFIDENCE_HINT = "each digit's confidence and that the number ends there, multiplied"


def may_be_cut_short(pred) -> bool:
    """Whether a reading of the most digits the model reads may be the start of a longer number: the ink
    falls into more runs of columns than digits were read, or (with attention maps) continues past the last
    digit's attention by more than 0.75 of the digits' spacing. On printed strips with the shipped model,
    5-digit numbers left 0.4-0.6 spacings past the last digit; 6-7-digit ones 0.6-0.9, or more runs: the
    check misses some longer numbers rather than flag right readings."""
    n = len(pred.digits)
    col = pred.canvas.max(0) > 0.5  # (W,) columns with ink
    runs = int(col[0]) + int(np.sum(col[1:] & ~col[:-1]))
    inked = np.flatnonzero(col)
    a = pred.attention
    if runs > n or a is None or n < 2 or not inked.size:  # without maps (a webcam's light frames): runs alone
        return runs > n
    mass = a.cross[:n].mean((1, 2)).sum(-2)  # (n, gw): each digit's attention per token column
    x = (mass * np.arange(mass.shape[1])).sum(-1) / np.maximum(mass.sum(-1), 1e-9) * a.cfg.cell + a.cfg.field / 2
    spacing = (x[-1] - x[0]) / (n - 1)  # canvas px between neighbouring digits' centres
    return spacing <= 0 or (inked[-1] - x[-1]) > 0.75 * spacing


def shown_message(pred) -> str:
    """pred.message as the page shows it: the note that a reading stops at the most digits NextNum reads
    only where the reading may be cut short (may_be_cut_short)."""
    note = LIMIT_NOTE.format(n=len(pred.digits))
    if note not in pred.message or may_be_cut_short(pred):
        return pred.message
    return "; ".join(m for m in pred.message.split("; ") if m != note)


def reading_html(pred, note: str = "", empty: str = EMPTY["upload"]) -> str:
    """The digits big, each with its confidence bar and the next likeliest alternatives; with nothing
    read, pred's message, else `note`, else `empty`."""
    if pred is None or not pred.digits:
        msg = html.escape(pred.message if pred is not None and pred.message else note or empty)
        return f"<div class='nn-reading nn-empty' style='font-size:1.2em;color:#666;padding:1em'>{msg}</div>"
    cards = []
    for i, d in enumerate(pred.digits):
        r, g, b = DIGIT_COLOURS[i % len(DIGIT_COLOURS)]
        alts = ", ".join(f"{a} {p:.0%}" for a, p in d.top3[1:] if p >= 0.005) or "none"
        cards.append(
            f"<div style='display:inline-block;text-align:center;margin:0 .25em;min-width:2.8em'>"
            f"<div style='font-size:3.4em;font-weight:700;line-height:1.05;color:rgb({r},{g},{b})'>{d.digit}</div>"
            f"<div style='height:.45em;background:#ddd;border-radius:3px'><div style='height:100%;width:{d.prob:.0%};"
            f"background:rgb({r},{g},{b});border-radius:3px'></div></div>"
            f"<div style='font-size:.95em'>{d.prob:.0%}</div>"
            f"<div style='font-size:.8em;color:#666'>or {alts}</div></div>")
    msg = shown_message(pred)
    extra = f"<div style='color:#a60'>{html.escape(msg)}</div>" if msg else ""
    return (f"<div class='nn-reading'>{''.join(cards)}<div style='margin-top:.4em'>whole reading "
            f"<b>{pred.confidence:.0%}</b> sure <span style='font-size:.85em;color:#666'>({CONFIDENCE_HINT})</span>"
            f"{second_look(pred)}{(' · ' + html.escape(note)) if note else ''}</div>{extra}</div>")


def second_look(pred) -> str:
    """" · read again: 7 of 9 views agree" where a doubtful reading was read on shifted views (nextnum/tta.py)."""
    if pred.agree is None:
        return ""
    return f" <span style='font-size:.85em;color:#666'>· read again: {pred.agree[0]} of {pred.agree[1]} views agree</span>"


def ink_roi(pred, margin: float = 0.25) -> tuple[float, float, float, float] | None:
    """The digits' box in the original image as fractions, grown by `margin` of its height each side."""
    if pred is None or pred.geometry is None:
        return None
    (h, w), (x0, y0, x1, y1) = pred.geometry.src_hw, pred.geometry.crop
    m = margin * (y1 - y0)
    return max(0.0, (x0 - m) / w), max(0.0, (y0 - m) / h), min(1.0, (x1 + m) / w), min(1.0, (y1 + m) / h)


def digits_window(pred) -> Window:
    """Where the per-digit and combined pictures are drawn: around the digits, at the size they are shown."""
    hw = pred.attention.original.shape[:2]
    return Window.fit(hw, roi_box(hw, ink_roi(pred)), DIGITS_BOX)


def attention_gallery(pred) -> list[tuple[np.ndarray, str]]:
    """Per-digit overlays ("where it looked for digit k"), cropped around the digits."""
    if pred is None or pred.attention is None:
        return []
    pictures = pred.attention.digit_overlays(digits_window(pred))
    return [(img, f"digit {i + 1}: {d.digit} ({d.prob:.0%})") for i, (d, img) in enumerate(zip(pred.digits, pictures))]


def combined_view(pred) -> np.ndarray | None:
    """Every digit's map in its own colour, cropped around the digits."""
    return None if pred is None or pred.attention is None else pred.attention.combined_overlay(digits_window(pred))


def stage_gallery(pred) -> list[tuple[np.ndarray, str]]:
    """The preprocessing stages, in order, with their names."""
    return [] if pred is None else stage_pictures(pred.stages)


def stage_pictures(stages: dict[str, np.ndarray]) -> list[tuple[np.ndarray, str]]:
    """Stage pictures (name -> image, in order) at the size the stages gallery shows them."""
    return [(Window.fit(img.shape, None, STAGE_BOX).picture(img), name) for name, img in stages.items()]


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
    """The encoder's self-attention on the image: the rollout, or one layer (one head or their mean)."""
    if pred is None or pred.attention is None:
        return None
    a = pred.attention
    li = _index(layer, a.encoder.shape[0])
    hi = None if li is None else _index(head, a.encoder.shape[1])
    return a.encoder_overlay(li, hi, window=a.window(box=ENCODER_BOX))


def details(pred, checkpoint_name: str | None) -> dict[str, Any]:
    """The reading as JSON (Prediction.as_dict), with the checkpoint that read it."""
    d = pred.as_dict() if pred is not None else {"text": "", "digits": [], "message": ""}
    d["checkpoint"] = checkpoint_name
    return d


def reading_views(pred, checkpoint_name: str | None, layer: str | None, head: str | None,
                  stages: bool = True) -> tuple:
    """Everything the Draw and Upload tabs show, in order: digits text, reading HTML, per-digit gallery,
    combined map, encoder view, stages gallery (an empty one unless `stages`: the page shows them only
    when their accordion is open), details dict."""
    return (pred.text if pred is not None else "", reading_html(pred), attention_gallery(pred), combined_view(pred),
            encoder_view(pred, layer, head), stage_gallery(pred) if stages else [], details(pred, checkpoint_name))


def empty_views() -> tuple:
    """reading_views for a cleared sketchpad."""
    return "", reading_html(None, empty=EMPTY["draw"]), [], None, None, [], {}


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


def duration(s: float | None) -> str:
    """Seconds as H:MM:SS or MM:SS; '?' when unknown."""
    return "?" if s is None or not np.isfinite(s) else tqdm.format_interval(s)


def _trained(m: dict[str, Any]) -> str:
    secs = m.get("train_seconds")
    return f"{m.get('steps', '?')} steps" + (f" in {duration(secs)}" if secs else "")


def model_card(pred_obj, name: str | None) -> tuple[str, list[list[Any]], dict[str, Any]]:
    """Markdown summary, accuracy-by-length rows and the config dict of a loaded Predictor."""
    if pred_obj is None:
        return "**No model loaded.** Train one in the Train tab or start the app with `--checkpoint PATH`.", [], {}
    m, mc = pred_obj.metrics, pred_obj.config.model
    rows, src = accuracy_table(m)
    lines = [f"### {html.escape(name or '?')}",
             f"- **parameters:** {pred_obj.num_params:,}",
             f"- **canvas:** {mc.img_h}×{mc.img_w}, patch grid {mc.grid[0]}×{mc.grid[1]}, {mc.enc_layers} encoder + "
             f"{mc.dec_layers} decoder layers, width {mc.dim}, {mc.heads} heads, up to {mc.max_digits} digits",
             f"- **training:** {_trained(m)}" + (f", status *{m['status']}*" if m.get("status") else "")]
    parent = m.get("init_metrics")
    if isinstance(parent, dict):  # fine-tuned (train.py --init): say from what
        lines.append(f"- **started from:** a model trained {_trained(parent)}"
                     + (f" ({html.escape(str(m['init']))})" if m.get("init") else ""))
    if m.get("best_val_seq_acc") is not None:
        lines.append(f"- **best validation sequence accuracy:** {m['best_val_seq_acc']:.1%} "
                     f"({m.get('val', 'validation canvases')})")
    lines.append(f"- **accuracy by length** below: {html.escape(src)}" if src else
                 "- no accuracy-by-length table in this checkpoint's metrics.json (run `python -m nextnum.evaluate`)")
    return "\n".join(lines), rows, pred_obj.config.to_dict()
