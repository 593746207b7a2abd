"""Score a checkpoint as the app reads: t10k pages through preprocess and the Predictor, or a labelled image folder.

    python -m nextnum.evaluate --data ../shared/data --samples 2000 --seed 0 --json
    python -m nextnum.evaluate --images DIR --json      # DIR/labels.json: {"file": "4072", ...}; + each reading
    python -m nextnum.evaluate --data-config configs/clean.json --json   # other canvas complexity

The last line printed with --json is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from .config import READ_SHRINK, Config
from .data import Batch, fixed_batches, load_mnist
from .model import NextNum
from .scoring import score, score_corrections  # noqa: F401 (evaluate.score, as callers know it)


@torch.inference_mode()
def predict_batches(model: NextNum, batches: list[Batch], device: str | torch.device = "cpu") -> list[tuple[str, str]]:
    model.eval()
    pairs = []
    for b in batches:
        pred = model.generate(b.images.to(device)).texts()
        pairs += list(zip(pred, b.texts))
    return pairs


def evaluate_synthetic(model: NextNum, data_root: str | Path | None, samples: int, seed: int, data_cfg,
                       device: str | torch.device = "cpu", bank=None) -> dict[str, Any]:
    """t10k pages (or bank's) read through preprocess onto the model's canvas (every page kept), the canvases
    decoded in batches in PyTorch: the app's canvases, read fast."""
    bank = bank if bank is not None else load_mnist(data_root, train=False)
    batches = fixed_batches(bank, samples, data_cfg, (model.cfg.img_h, model.cfg.img_w), seed,
                            match_strokes=model.cfg.match_strokes)
    return score(predict_batches(model, batches, device))


def evaluate_app(predictor, data_root: str | Path | None, samples: int, seed: int, data_cfg,
                 bank=None) -> dict[str, Any]:
    """t10k pages (scenes.draw: the same pages for every model, whatever its canvas), each read as the app reads
    an image: Predictor.predict, preprocess included."""
    from .scenes import fixed_pages
    bank = bank if bank is not None else load_mnist(data_root, train=False)
    return score((predictor.predict(page, explain=False).text, true)
                 for sc in fixed_pages(bank, samples, data_cfg, seed, READ_SHRINK)
                 for page, true in zip(sc.images, sc.texts))


def evaluate_images(predictor, folder: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Read every image named in folder/labels.json through the Predictor; returns (scores, rows)."""
    folder = Path(folder)
    labels_file = folder / "labels.json"
    try:
        labels = json.loads(labels_file.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{labels_file} not found: --images needs a labels.json mapping file -> digits") from None
    if not isinstance(labels, dict) or not labels:
        raise ValueError(f"{labels_file}: expected a non-empty JSON object {{\"file.png\": \"4072\", ...}}")
    rows = []
    for name, true in sorted(labels.items()):
        pred = predictor.predict(folder / name, explain=False)
        rows.append({"file": name, "true": str(true), "pred": pred.text, "confidence": pred.confidence})
    return score((r["pred"], r["true"]) for r in rows), rows


# ---------------------------------------------------------------- corrections

def held_out_accuracy(model, cfg, root: str | Path) -> dict[str, Any] | None:
    """A model's sequence accuracy on the held-out corrections (None when none are held out)."""
    from .predictor import Predictor
    return score_corrections(Predictor(model, cfg), root, held_out_only=True)


def _table(res: dict[str, Any]) -> str:
    lines = [f"{'length':>8} {'samples':>8} {'seq acc':>8}"]
    for k, v in res["by_length"].items():
        lines.append(f"{k:>8} {res['by_length_count'][k]:>8} {v:>8.2%}")
    lines.append(f"{'all':>8} {res['samples']:>8} {res['sequence_accuracy']:>8.2%}   digit acc {res['digit_accuracy']:.2%}")
    e = res["errors"]
    lines.append(f"misread {e['wrong_length'] + e['wrong_digit']}: {e['wrong_length']} with a digit dropped or added, "
                 f"{e['wrong_digit']} of the right length with a wrong digit")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from .predictor import Predictor, add_load_args  # here: it pulls in OpenCV
    ap = argparse.ArgumentParser(prog="python -m nextnum.evaluate", description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data", help="MNIST root (torchvision layout); t10k is used")
    ap.add_argument("--images", default=None, help="evaluate a folder of images with labels.json instead")
    ap.add_argument("--samples", type=int, default=2000, help="synthetic canvases to score")
    ap.add_argument("--seed", type=int, default=0, help="seed of the synthetic canvases")
    ap.add_argument("--data-config", default=None,
                    help="JSON config whose 'data' section (canvas complexity) replaces the checkpoint's own")
    ap.add_argument("--direct", action="store_true",
                    help="decode the canvases preprocess makes of the pages in PyTorch batches, without the Predictor "
                         "(faster; the same canvases)")
    add_load_args(ap)
    ap.add_argument("--json", action="store_true", help="print one line of JSON last")
    args = ap.parse_args(argv)

    try:
        pred = Predictor.load(args.checkpoint, device=args.device, runtime=args.runtime)
    except Exception as e:  # a clear message, not a traceback, for a bad --checkpoint
        print(f"error: {e}", file=sys.stderr)
        return 2
    data_cfg = pred.config.data
    if args.data_config:
        try:
            data_cfg = Config.load(args.data_config).data
            Config(model=pred.config.model, data=data_cfg)  # lengths must suit the model
        except (FileNotFoundError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    t0 = time.perf_counter()
    try:
        if args.images:
            res, rows = evaluate_images(pred, args.images)
            if not args.json:
                for r in rows:
                    print(f"{'ok ' if r['pred'] == r['true'] else 'BAD'} {r['file']}: {r['pred'] or '(none)'} (true {r['true']})")
        elif args.direct:
            res = evaluate_synthetic(pred.model, args.data, args.samples, args.seed, data_cfg, args.device)
            res["read"] = "canvases decoded in PyTorch batches (--direct)"
        else:
            res = evaluate_app(pred, args.data, args.samples, args.seed, data_cfg)
            res["read"] = "each page through Predictor.predict, as the app reads an image"
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    res.update(parameters=pred.model.num_params(), checkpoint=str(pred.checkpoint),
               seconds=round(time.perf_counter() - t0, 2))
    if args.images:
        res["images"] = str(args.images)
        res["readings"] = rows  # per file: true, read, confidence
    else:
        res["seed"] = args.seed
        res["data_config"] = args.data_config or "the checkpoint's own (its training augmentation)"
    if not args.json:
        print(_table(res))
        print(f"parameters {res['parameters']:,}  checkpoint {res['checkpoint']}")
    else:
        print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
