"""NextNum beside a general OCR engine (RapidOCR: PP-OCR models in ONNX) on labelled image folders.

    python bench/realsets.py --out runs/realsets/s2 --n 100 --seed 2          # the sets (main venv)
    python bench/ocr_compare.py --engine nextnum runs/realsets/s2/*           # main venv
    python -m venv .venv-ocr && .venv-ocr/bin/pip install rapidocr-onnxruntime==1.4.4
    .venv-ocr/bin/python bench/ocr_compare.py --engine rapidocr runs/realsets/s2/*

Both engines read every image named in each folder's labels.json and are scored alike: exact match of
the digits, plus the p50 time per image on one thread. RapidOCR runs without its angle classifier; of
what it finds, the digits are kept and its text boxes are read left to right. RapidOCR pulls in the full
opencv-python, which clashes with NextNum's headless OpenCV, hence its own virtual environment.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread for both engines, as the app reads


def rapidocr_reader() -> Callable[[Path], str]:
    from rapidocr_onnxruntime import RapidOCR
    engine = RapidOCR(use_cls=False, intra_op_num_threads=1, inter_op_num_threads=1)

    def read(path: Path) -> str:
        import cv2
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if img is not None and img.ndim == 3 and img.shape[2] == 4:  # sketch layers: ink over white
            a = img[..., 3:4].astype(np.float32) / 255
            img = (img[..., :3] * a + 255 * (1 - a)).astype(np.uint8)
        result, _ = engine(img, use_cls=False)
        boxes = sorted(result or [], key=lambda r: min(p[0] for p in r[0]))  # left to right
        return "".join(ch for r in boxes for ch in r[1] if ch.isdigit())
    return read


def nextnum_reader(checkpoint: str | None) -> Callable[[Path], str]:
    import torch
    from nextnum import Predictor
    torch.set_num_threads(1)
    pred = Predictor.load(checkpoint)
    return lambda path: pred.predict(path, explain=False).text


def score_folder(read: Callable[[Path], str], folder: Path, limit: int | None = None) -> dict[str, Any]:
    """Exact-match accuracy and p50 ms per image over folder/labels.json (its first `limit` entries)."""
    labels = dict(sorted(json.loads((folder / "labels.json").read_text()).items())[:limit])
    right, ms = 0, []
    for name, true in sorted(labels.items()):
        t0 = time.perf_counter()
        got = read(folder / name)
        ms.append((time.perf_counter() - t0) * 1000)
        right += got == str(true)
    return {"set": folder.name, "n": len(labels), "accuracy": right / len(labels),
            "p50_ms": float(np.percentile(ms, 50))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folders", nargs="+", help="folders holding images and labels.json")
    ap.add_argument("--engine", choices=("nextnum", "rapidocr"), required=True)
    ap.add_argument("--checkpoint", help="NextNum checkpoint folder (default: the shipped model)")
    ap.add_argument("--quick", action="store_true", help="the first 10 images of each folder only")
    ap.add_argument("--json", action="store_true", help="print one line of JSON last")
    args = ap.parse_args(argv)
    try:
        read = rapidocr_reader() if args.engine == "rapidocr" else nextnum_reader(args.checkpoint)
    except ImportError as e:
        print(f"error: {args.engine} is not installed here ({e}); see this script's docstring", file=sys.stderr)
        return 2
    rows = []
    for f in map(Path, args.folders):
        if not (f / "labels.json").is_file():
            print(f"error: {f}/labels.json not found", file=sys.stderr)
            return 2
        rows.append(score_folder(read, f, 10 if args.quick else None))
    for r in rows:
        print(f"{args.engine:9} {r['set']:14} {r['accuracy']:7.1%} of {r['n']}   p50 {r['p50_ms']:.1f} ms")
    if args.json:
        print(json.dumps({"bench": "ocr_compare", "engine": args.engine, "rows": rows,
                          "date": time.strftime("%Y-%m-%d"), "cores": os.cpu_count()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
