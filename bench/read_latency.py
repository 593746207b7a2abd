"""Reading latency: Predictor.predict per stage on webcam photos and sketchpad drawings, beside the floor.

    python bench/read_latency.py --checkpoint checkpoints/nextnum [--n 40] [--repeats 3] [--json]
    python bench/read_latency.py --quick --json        # a few images, 1 thread: checks the script runs

For 640x480 webcam-like photos and sketchpad composites (bench/realsets.py, MNIST t10k handwriting),
with explain=True plus every picture the Draw tab shows, drawn at the size it shows them ("every view":
views is that drawing), and explain=False, both as Predictor.load() reads by default (onnxruntime when it
is installed, attention maps included; the graph is exported first if it is not cached), explain=False
in PyTorch (runtime="torch") and with runtime="onnx", with torch and OpenCV at 1 and 2 threads: p50/p95 in ms of each stage of Prediction.timings_ms.
In the same run, on the same images: the raw model alone on the preprocessed canvases (encoder, whole
greedy decode, with and without attention weights: the floor), the same model through onnxruntime
(nextnum/export.py), and Tesseract (`tesseract --psm 7`, digits only) where it is installed, with
the accuracy of each reader (whole number exactly right). Prints tables; --json adds one JSON line last.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

STAGES = ("preprocess.grayscale", "preprocess.normalise", "preprocess.binarise", "preprocess.canvas",
          "model", "visualise", "views", "total")


def set_threads(n: int) -> None:
    import cv2
    import torch
    torch.set_num_threads(n)
    cv2.setNumThreads(n)


def as_input(kind: str, img: np.ndarray) -> Any:
    """What the app hands predict(): a webcam frame as is, a drawing as the sketchpad's value."""
    return {"background": None, "layers": [], "composite": img} if kind == "sketch" else img


def read_once(pred, image: Any, explain: bool) -> tuple[Any, dict[str, float]]:
    """One reading as the app makes it: with explain, also every picture the Draw tab shows at the size it
    shows them (nextnum/web/views.py; the stage pictures stay in their closed accordion)."""
    from nextnum.web.views import reading_views
    p = pred.predict(image, explain=explain)
    timings = dict(p.timings_ms)
    if explain:
        t = time.perf_counter()
        reading_views(p, "bench", "rollout", "mean", stages=False)
        timings["views"] = (time.perf_counter() - t) * 1000
        timings["total"] += timings["views"]
    return p, timings


def time_predict(pred, images: list[tuple[np.ndarray, str]], kind: str, explain: bool, repeats: int) -> dict[str, Any]:
    for img, _ in images[:3]:  # warm-up: lazy imports, allocator, colour tables
        read_once(pred, as_input(kind, img), explain)
    per: dict[str, list[float]] = {}
    right = 0
    for r in range(repeats):
        for img, text in images:
            p, timings = read_once(pred, as_input(kind, img), explain)
            for k, v in timings.items():
                per.setdefault(k, []).append(v)
            right += r == 0 and p.text == text
    out = {k: C.stats(v) for k, v in per.items()}
    out["accuracy"] = right / len(images)
    return out


def time_model(pred, canvases: list, repeats: int) -> dict[str, Any]:
    """The model alone on preprocessed canvases: encoder, generate, generate with attention weights."""
    import torch
    model = pred.model
    res: dict[str, list[float]] = {"encoder": [], "decode": [], "generate": [], "generate_attn": []}
    with torch.inference_mode():
        for x in canvases[:3]:
            model.generate(x)
            model.generate(x, return_attn=True)
        for _ in range(repeats):
            for x in canvases:
                t0 = time.perf_counter()
                model.encoder(x)
                t1 = time.perf_counter()
                model.generate(x)
                t2 = time.perf_counter()
                model.generate(x, return_attn=True)
                t3 = time.perf_counter()
                res["encoder"].append((t1 - t0) * 1000)
                res["generate"].append((t2 - t1) * 1000)
                res["decode"].append((t2 - t1 - (t1 - t0)) * 1000)  # generate = encoder + greedy decoding
                res["generate_attn"].append((t3 - t2) * 1000)
    return {k: C.stats(v) for k, v in res.items()}


def time_onnx(pred, canvases: list, repeats: int, threads: list[int], workdir: Path, ckpt: Path) -> dict[str, Any]:
    """The graph the app reads with (the checkpoint's cached one; exported now only when there is none):
    its agreement with PyTorch and its latency at each thread count."""
    try:
        import onnxruntime as ort
    except ImportError:
        return {"skipped": "onnxruntime not installed"}
    import torch
    from nextnum.export import cached_export, compare, graph_places
    cached = any(p.is_file() for p in graph_places(pred.model, beside=ckpt))
    t0 = time.perf_counter()
    path = workdir / "nextnum.onnx"
    path.write_bytes(cached_export(pred.model, beside=ckpt))
    out: dict[str, Any] = {"graph": "cached" if cached else "exported now", "bytes": path.stat().st_size,
                           **({} if cached else {"export_s": round(time.perf_counter() - t0, 2)})}
    agree = compare(pred.model, path, torch.cat(canvases))
    out.update({k: agree[k] for k in ("tokens_equal", "max_prob_diff", "max_cross_attn_diff", "max_enc_attn_diff")
                if k in agree})
    for n in threads:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = n
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        arrs = [x.numpy() for x in canvases]
        for a in arrs[:3]:
            sess.run(None, {"canvas": a})
        ms = []
        for _ in range(repeats):
            for a in arrs:
                t = time.perf_counter()
                sess.run(None, {"canvas": a})
                ms.append((time.perf_counter() - t) * 1000)
        out[f"threads_{n}"] = C.stats(ms)
    return out


def flat_grey(img: np.ndarray) -> np.ndarray:
    """A white-backed grey or RGB image for Tesseract (transparent sketch layers composited onto white)."""
    if img.ndim == 3 and img.shape[2] == 4:
        a = img[..., 3:4].astype(np.float32) / 255
        rgb = img[..., :3].astype(np.float32) * a + 255 * (1 - a)
        return rgb.mean(-1).astype(np.uint8)
    return img


def time_tesseract(sets: dict[str, list[tuple[np.ndarray, str]]], workdir: Path) -> dict[str, Any]:
    exe = shutil.which("tesseract")
    if exe is None:
        return {"skipped": "tesseract not installed (apt-get install tesseract-ocr)"}
    import cv2
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    out: dict[str, Any] = {"version": version.strip()}
    for kind, images in sets.items():
        ms, right = [], 0
        for i, (img, text) in enumerate(images):
            f = workdir / f"{kind}{i}.png"
            g = flat_grey(img)
            cv2.imwrite(str(f), g if g.ndim == 2 else cv2.cvtColor(g, cv2.COLOR_RGB2BGR))
            t = time.perf_counter()
            r = subprocess.run([exe, str(f), "stdout", "--psm", "7", "-c", "tessedit_char_whitelist=0123456789"],
                               capture_output=True, text=True)
            ms.append((time.perf_counter() - t) * 1000)
            right += "".join(ch for ch in r.stdout if ch.isdigit()) == text
        out[kind] = {**C.stats(ms), "accuracy": right / len(images)}
    return out


def cell(st: dict[str, float] | None) -> str:
    return "-" if st is None else f"{st['p50']:.2f} / {st['p95']:.2f}"


def report(res: dict[str, Any], rows: list[list], mrows: list[list], kinds: list[str], threads: int) -> None:
    """Print the tables: predict() per stage, the model alone, onnxruntime against PyTorch, and Tesseract."""
    mc = res["machine"]
    print(f"Reading latency, p50 / p95 ms per stage of Prediction.timings_ms ({mc['cpu']}, {mc['cores']} cores, "
          f"load {mc['loadavg_1m']}; {res['n']} images of each kind x {res['repeats']} passes; {res['digits']} "
          f"handwriting; checkpoint {res['checkpoint']})\n")
    short = [s.replace("preprocess.", "pre.") for s in STAGES]
    print(C.table(["input", "explain", "threads"] + short + ["read right"], rows))
    print("\nThe floor: the model alone on the same preprocessed canvases, ms\n")
    print(C.table(["what", "threads", "p50", "p95"], mrows))
    if "tokens_equal" in res["onnx"]:
        print(f"\nonnxruntime vs PyTorch: tokens equal {res['onnx']['tokens_equal']:.1%}, "
              f"max prob diff {res['onnx']['max_prob_diff']:.1e}")
    t = res["tesseract"]
    if "skipped" in t:
        print(f"\nTesseract: skipped ({t['skipped']})")
    else:
        print(f"\nTesseract ({t['version']}, --psm 7, digits only, one CLI call per image), same images\n")
        nn = {k: res["predict"][f"{k}/explain=False/threads={threads}"] for k in kinds}
        print(C.table(["input", "tesseract p50 ms", "tesseract p95 ms", "tesseract read right",
                       "NextNum p50 ms (explain=False)", "NextNum read right"],
                      [[k, t[k]["p50"], t[k]["p95"], f"{t[k]['accuracy']:.0%}", nn[k]["total"]["p50"],
                        f"{nn[k]['accuracy']:.0%}"] for k in kinds]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default=None, help="checkpoint folder (default: checkpoints/nextnum)")
    ap.add_argument("--n", type=int, default=40, help="images of each kind")
    ap.add_argument("--repeats", type=int, default=3, help="passes over the images")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-onnx", action="store_true")
    ap.add_argument("--no-tesseract", action="store_true")
    ap.add_argument("--quick", action="store_true", help="3 images, 1 pass, 1 thread, the committed digit sample")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.repeats, args.threads = 3, 1, [1]

    from nextnum import Predictor
    ckpt = C.checkpoint_path(args.checkpoint)
    res: dict[str, Any] = {"bench": "read_latency", "machine": C.machine(), "checkpoint": str(ckpt),
                           "n": args.n, "repeats": args.repeats}
    bank, res["digits"] = C.digit_bank() if not args.quick else (None, "tests/fixtures sample")
    if bank is None:
        from nextnum.data import load_fixture
        bank = load_fixture()
    sets = {"photo": C.photos(args.n, args.seed, bank), "sketch": C.sketches(args.n, args.seed, bank)}
    pred = Predictor.load(ckpt)  # the default: explain=False through onnxruntime when it can
    res["default_reads_with"] = "onnxruntime" if pred.wait_fast() else "torch"  # exports now if not cached
    slow = Predictor.load(ckpt, runtime="torch")
    from nextnum.preprocess import preprocess
    canvases = [preprocess(as_input(k, img), pred.canvas_hw, shrink=pred.shrink).tensor
                for k, imgs in sets.items() for img, _ in imgs]

    rows, mrows = [], []
    res["predict"], res["model"] = {}, {}
    for n in args.threads:
        set_threads(n)
        for kind, images in sets.items():
            for explain, p, name in ((True, pred, "True (every view)"),
                                     (False, pred, f"False ({res['default_reads_with']}, the default)"),
                                     (False, slow, "False, torch")):
                r = time_predict(p, images, kind, explain, args.repeats)
                key = f"{kind}/explain={explain}" + ("/runtime=torch" if p is slow else "") + f"/threads={n}"
                res["predict"][key] = r
                rows.append([kind, name, n] + [cell(r.get(s)) for s in STAGES] + [f"{r['accuracy']:.0%}"])
        m = time_model(pred, canvases, args.repeats)
        res["model"][f"threads={n}"] = m
        mrows += [[f"model.{k}", n, v["p50"], v["p95"]] for k, v in m.items()]
    set_threads(args.threads[0])
    if not args.no_onnx:  # the whole predict() with the model in onnxruntime (Predictor runtime="onnx")
        fast = Predictor.load(ckpt, runtime="onnx")
        for kind, images in sets.items():
            r = time_predict(fast, images, kind, False, args.repeats)
            res["predict"][f"{kind}/explain=False/runtime=onnx/threads={args.threads[0]}"] = r
            rows.append([kind, "False, onnx", args.threads[0]] + [cell(r.get(s)) for s in STAGES]
                        + [f"{r['accuracy']:.0%}"])
    with tempfile.TemporaryDirectory() as tmp:
        res["onnx"] = {"skipped": "--no-onnx"} if args.no_onnx else time_onnx(pred, canvases, args.repeats,
                                                                             args.threads, Path(tmp), ckpt)
        res["tesseract"] = {"skipped": "--no-tesseract"} if args.no_tesseract else time_tesseract(sets, Path(tmp))
    for n in args.threads:
        if f"threads_{n}" in res["onnx"]:
            mrows.append(["onnxruntime (same greedy loop, all 6 steps)", n, res["onnx"][f"threads_{n}"]["p50"],
                          res["onnx"][f"threads_{n}"]["p95"]])

    report(res, rows, mrows, list(sets), args.threads[0])
    if args.json:
        C.emit_json(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
