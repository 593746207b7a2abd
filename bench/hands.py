"""Many hands: numbers drawn with the other ways people write 1, 4, 7 and 9, read by each checkpoint.

    python bench/hands.py --checkpoints checkpoints/nextnum [more ...] [--n 40] [--seed 0] [--json]

Each variant in tests/drawings.py HANDS (a plain "1", a "1" with a long flag, with a flag and a foot,
with a short flat flag, with a flag reaching two thirds of its height, a plain and a crossed "7", an
open and a closed "4", a "9" with a straight and with a curved tail) draws n numbers of 1-4 digits
from mouse strokes (tests/sketch_checks.py hands: random size, slant, brush and wobble), each holding
that digit at least once, every copy of it in that variant; the other digits in the Draw tab's usual
templates. Each is read as the app reads a drawing (Predictor.predict). Prints the share read right
per variant and checkpoint, and what the misread ones were read as; --json adds one JSON line last.
"""
from __future__ import annotations

import argparse
import collections
from pathlib import Path
from typing import Any

from _common import emit_json, machine, table  # also puts the repo and tests/ on sys.path


def score(ckpt: Path, n: int, seed: int) -> dict[str, Any]:
    import torch
    from nextnum import Predictor
    from sketch_checks import by_hand, hands
    torch.set_num_threads(1)
    rows = hands(Predictor.load(ckpt), n, seed)
    wrong = collections.defaultdict(collections.Counter)
    for r in rows:
        if r["read"] != r["text"]:
            wrong[r["hand"]][f"{r['text']}->{r['read'] or '(nothing)'}"] += 1
    return {"checkpoint": str(ckpt), "read_right": by_hand(rows),
            "misread": {h: [k for k, _ in c.most_common(3)] for h, c in wrong.items()}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoints", nargs="+", default=["checkpoints/nextnum"])
    ap.add_argument("--n", type=int, default=40, help="numbers per variant")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    res = {"bench": "hands", "machine": machine(), "n": args.n, "seed": args.seed,
           "checkpoints": [score(Path(c), args.n, args.seed) for c in args.checkpoints]}
    hands = list(res["checkpoints"][0]["read_right"])
    print(f"Numbers drawn in other hands, {args.n} per variant, seed {args.seed}: share read right\n")
    print(table(["variant"] + [Path(c["checkpoint"]).name for c in res["checkpoints"]],
                [[h] + [f"{c['read_right'][h]:.0%}" for c in res["checkpoints"]] for h in hands]))
    for c in res["checkpoints"]:
        for h, examples in c["misread"].items():
            print(f"{Path(c['checkpoint']).name}, {h}: {', '.join(examples)}")
    if args.json:
        emit_json(res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
