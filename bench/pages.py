"""Write t10k pages (nextnum/scenes.py: the pages `python -m nextnum.evaluate` reads) to a folder of PNG files
with labels.json, so that any version of the code, or another reader, is scored on the same images.

    python bench/pages.py --out runs/pages/full --data-config configs/full.json --samples 2000 --seed 0
    python -m nextnum.evaluate --images runs/pages/full --json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2

from _common import DATA  # also puts the repo on sys.path


def main(argv: list[str] | None = None) -> int:
    from nextnum.config import READ_SHRINK, Config, DataConfig
    from nextnum.data import load_mnist
    from nextnum.scenes import fixed_pages
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--data", default=str(DATA), help="MNIST root (t10k is used)")
    ap.add_argument("--data-config", default=None, help="JSON config whose 'data' section draws the pages")
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    cfg = Config.load(args.data_config).data if args.data_config else DataConfig()
    bank, out = load_mnist(args.data, train=False), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    labels = {}
    for sc in fixed_pages(bank, args.samples, cfg, args.seed, READ_SHRINK):  # the pages evaluate reads
        for page, text in zip(sc.images, sc.texts):
            name = f"{len(labels):05d}.png"
            cv2.imwrite(str(out / name), page)
            labels[name] = text
    (out / "labels.json").write_text(json.dumps(labels, indent=1) + "\n")
    print(json.dumps({"bench": "pages", "out": str(out), "pages": len(labels), "seed": args.seed,
                      "data_config": args.data_config}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
