"""Read digits from image files on the command line.

    python -m nextnum.read IMAGE... [--json] [--save-viz DIR] [--roi X0,Y0,X1,Y1] [--checkpoint PATH]

Exit status, as grep's: 0 if digits were read in at least one image; 1 if nothing was read (every image
was blank or could not be read), with a line on stderr saying so; 2 if the checkpoint could not be
loaded or the arguments are wrong.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .inputs import ImageError


def save_viz(pred, stem: str, out: Path) -> list[Path]:
    """Write the stages and attention views of one Prediction as PNGs named after the image."""
    import cv2
    out.mkdir(parents=True, exist_ok=True)
    images = {f"stage{i}_{k.replace(' ', '_')}": v for i, (k, v) in enumerate(pred.stages.items())}
    if pred.attention is not None:
        for i, (d, img) in enumerate(zip(pred.digits, pred.attention.per_digit)):
            images[f"digit{i}_{d.digit}"] = img
        images["combined"] = pred.attention.combined
        images["rollout"] = pred.attention.rollout_overlay
    paths = []
    for name, img in images.items():
        p = out / f"{stem}.{name}.png"
        cv2.imwrite(str(p), img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        paths.append(p)
    return paths


def _roi(text: str) -> tuple[float, float, float, float]:
    try:
        x0, y0, x1, y1 = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("expected four fractions X0,Y0,X1,Y1, e.g. 0.2,0.3,0.8,0.7") from None
    if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
        raise argparse.ArgumentTypeError("need 0 <= X0 < X1 <= 1 and 0 <= Y0 < Y1 <= 1")
    return x0, y0, x1, y1


def main(argv: list[str] | None = None) -> int:
    from .predictor import Predictor, add_load_args  # here: it pulls in OpenCV
    ap = argparse.ArgumentParser(prog="python -m nextnum.read", description="Read handwritten digits in images.",
                                 epilog="exit status: 0 digits were read in at least one image; 1 nothing was read "
                                        "(every image blank or unreadable; stderr says so); 2 the checkpoint could "
                                        "not be loaded, or bad arguments")
    ap.add_argument("images", nargs="+", help="image files (PNG, JPEG, BMP, WebP, TIFF)")
    ap.add_argument("--json", action="store_true", help="one JSON object per image")
    ap.add_argument("--save-viz", default=None, metavar="DIR", help="write stages and attention maps as PNGs")
    ap.add_argument("--roi", type=_roi, default=None, metavar="X0,Y0,X1,Y1",
                    help="look for digits only inside this box (fractions of width and height)")
    add_load_args(ap)
    args = ap.parse_args(argv)

    try:
        p = Predictor.load(args.checkpoint, device=args.device, runtime=args.runtime)
    except Exception as e:  # a clear message, not a traceback, for a bad --checkpoint
        print(f"error: {e}", file=sys.stderr)
        return 2
    read = 0
    for path in args.images:
        try:
            pred = p.predict(path, explain=args.save_viz is not None, roi=args.roi)
        except ImageError as e:
            print(json.dumps({"file": path, "error": str(e)}) if args.json else f"{path}: error: {e}")
            continue
        read += bool(pred.text)
        if args.save_viz:
            save_viz(pred, Path(path).stem, Path(args.save_viz))
        if args.json:
            print(json.dumps({"file": path, **pred.as_dict()}))
        else:
            alts = "  ".join(f"{d.digit}:{d.prob:.2f} (or {d.top3[1][0]})" for d in pred.digits)
            print(f"{path}: {pred.text or '(none)'}  confidence {pred.confidence:.2f}  {alts}"
                  + (f"  [{pred.message}]" if pred.message else ""))
    if not read:  # like grep finding nothing: not a failure of the program, but a script can tell
        n = len(args.images)
        print(f"nothing read: no digits found in {'the image' if n == 1 else f'any of the {n} images'}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
