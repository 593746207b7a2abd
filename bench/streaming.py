"""Webcam streaming: frames per second the app's stream handler sustains at 640x480, one user.

    python bench/streaming.py --checkpoint checkpoints/nextnum [--frames 300] [--json]
    python bench/streaming.py --quick --json

Builds the real Blocks app in this process (app.build) and calls the very function app.py wires to
the webcam stream (api_name "predict_frame") on 640x480 webcam-like RGB frames (bench/realsets.py),
one after another, as one user's stream would. Each frame's outputs then go through the output
components' own postprocessing, as the server does before the browser gets them: the annotated frame
is written as JPEG (gr.Image(format="jpeg")) and, on frames that refresh the attention, the per-digit
gallery too. Two settings: attention maps on every frame (heavy_every = 1) and throttled (the
app's HEAVY_EVERY); each row counts the frames that read digits and those that also drew the maps
(a frame that reads nothing has none). Prints a table; --json adds one JSON line last.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


def stream_fn(demo, api_name: str = "predict_frame"):
    """The BlockFunction a Blocks app wired under api_name."""
    for f in demo.fns.values():
        if f.api_name == api_name:
            return f
    raise LookupError(f"app.py wires no function as api_name={api_name!r}")


def run(fn, frames: list, n: int, heavy_every: int, live: str) -> dict[str, Any]:
    import gradio as gr
    fn.fn.__self__.heavy_every = heavy_every  # the app's handlers (events.Handlers) keep the schedule
    img_out, gallery_out = fn.outputs[0], fn.outputs[4]
    state = None
    handler, encode, total, heavy, read = [], [], [], 0, 0
    t_start = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        img, text, html, stats, gallery, state = fn.fn(frames[i % len(frames)], state, live, True)
        t1 = time.perf_counter()
        img_out.postprocess(img)  # JPEG into Gradio's cache, as the browser will fetch it
        read += bool(state["history"][-1][0])  # this frame's own reading (the text shown is smoothed)
        if not isinstance(gallery, type(gr.skip())):  # a frame that drew the attention maps
            gallery_out.postprocess(gallery)
            heavy += 1
        t2 = time.perf_counter()
        handler.append((t1 - t0) * 1000)
        encode.append((t2 - t1) * 1000)
        total.append((t2 - t0) * 1000)
    wall = time.perf_counter() - t_start
    return {"heavy_every": heavy_every, "frames": n, "read_frames": read, "heavy_frames": heavy,
            "fps": round(n / wall, 1), "handler_ms": C.stats(handler), "encode_ms": C.stats(encode),
            "frame_ms": C.stats(total)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default=None, help="checkpoint folder (default: checkpoints/nextnum)")
    ap.add_argument("--frames", type=int, default=300, help="frames per setting")
    ap.add_argument("--distinct", type=int, default=20, help="distinct photos, cycled")
    ap.add_argument("--threads", type=int, default=1, help="torch and OpenCV threads (the app's default is 1)")
    ap.add_argument("--quick", action="store_true", help="10 frames of 3 photos, the committed digit sample")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.frames, args.distinct = 10, 3
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import cv2
    import torch
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    import logging
    logging.disable(logging.INFO)

    import app
    from nextnum.web.models import Checkpoints
    from nextnum.web.train_runs import TrainingSlot
    ckpt = C.checkpoint_path(args.checkpoint).resolve()
    res: dict[str, Any] = {"bench": "streaming", "machine": C.machine(), "checkpoint": str(ckpt),
                           "threads": args.threads, "frame_size": [640, 480]}
    if args.quick:
        from nextnum.data import load_fixture
        bank = load_fixture()
    else:
        bank = C.digit_bank()[0]
    frames = [img for img, _ in C.photos(args.distinct, seed=2, bank=bank)]
    with tempfile.TemporaryDirectory() as tmp:
        ckpts = Checkpoints(Path(tmp), ckpt)
        demo = app.build(ckpts, TrainingSlot(Path(tmp), lambda: None), "")
        fn = stream_fn(demo)
        live = ckpts.default()
        run(fn, frames, min(5, args.frames), 1, live)  # warm-up
        res["every_frame"] = run(fn, frames, args.frames, 1, live)
        res["throttled"] = run(fn, frames, args.frames, app.HEAVY_EVERY, live)
    settings = (("attention every frame", res["every_frame"]), ("throttled (app default)", res["throttled"]))
    rows = [[name, r["heavy_every"], f"{r['heavy_frames']}/{r['read_frames']}/{r['frames']}", r["fps"],
             r["frame_ms"]["p50"], r["frame_ms"]["p95"], r["handler_ms"]["p50"], r["encode_ms"]["p50"]]
            for name, r in settings]
    mc = res["machine"]
    print(f"Webcam stream handler, 640x480, one user ({mc['cpu']}, {mc['cores']} cores, load {mc['loadavg_1m']}; "
          f"{args.frames} frames per row, {args.threads} thread(s))\n")
    print(C.table(["attention maps", "every n-th frame", "with maps / read / frames", "frames/s", "frame p50 ms",
                   "frame p95 ms", "handler p50 ms", "JPEG/gallery encode p50 ms"], rows))
    if args.json:
        C.emit_json(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
