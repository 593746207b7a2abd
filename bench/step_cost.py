"""Training step cost per config: drawing the canvases vs forward + backward + optimizer step, in CPU seconds.

    python bench/step_cost.py --configs configs/compare-today.json configs/compare-strip.json configs/compare-wide.json --json
    python bench/step_cost.py --quick --json     # configs/smoke.json, 3 steps (the tests)

One thread. Each figure is the median over --steps steps (after one warm-up step) of this process's CPU
time (time.process_time), which a job on the other core disturbs less than wall time; wall time is
given too. Canvases come from the committed digit sample: the cost does not depend on which digits.
Prints a table and, with --json, one line of JSON last.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from _common import emit_json, machine  # also puts the repo on sys.path

ROOT = Path(__file__).resolve().parent.parent


def step_cost(config: str | Path, steps: int, batch: int | None = None) -> dict:
    """Median CPU and wall seconds of drawing one batch and of one training step on it."""
    import torch
    from nextnum.config import Config
    from nextnum.data import load_fixture, render
    from nextnum.model import NextNum
    from nextnum.losses import batch_loss as _loss
    from nextnum.train import _optimizer
    cfg = Config.load(config)
    m, bs = cfg.model, batch or cfg.train.batch
    torch.manual_seed(0)
    net = NextNum(m).train()
    opt, bank, gen = _optimizer(net, cfg.train), load_fixture(), torch.Generator().manual_seed(0)
    rows = []
    for i in range(steps + 1):
        c0, w0 = time.process_time(), time.perf_counter()
        b = render(bank, bs, cfg.data, (m.img_h, m.img_w), gen, match_strokes=m.match_strokes)
        c1 = time.process_time()
        loss, _ = _loss(net, b, cfg, torch.device("cpu"))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        c2, w2 = time.process_time(), time.perf_counter()
        if i:  # the first step warms the allocator and the kernels up
            rows.append((c1 - c0, c2 - c1, w2 - w0))
    draw, learn, wall = (statistics.median(r[k] for r in rows) for k in range(3))
    gh, gw = m.grid
    return {"config": str(config), "tokens": gh * gw, "grid": [gh, gw], "parameters": net.num_params(), "batch": bs,
            "draw_cpu_ms": round(draw * 1000, 1), "learn_cpu_ms": round(learn * 1000, 1),
            "samples_per_cpu_s": round(bs / (draw + learn), 1), "samples_per_wall_s": round(bs / wall, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", nargs="+", default=["configs/full.json"])
    ap.add_argument("--steps", type=int, default=9)
    ap.add_argument("--batch", type=int, default=None, help="override train.batch")
    ap.add_argument("--quick", action="store_true", help="configs/smoke.json, 3 steps")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    if args.quick:
        args.configs, args.steps = [str(ROOT / "configs" / "smoke.json")], 3
    rows = [step_cost(c, args.steps, args.batch) for c in args.configs]
    print(f"{'config':<32} {'tokens':>6} {'params':>8} {'draw ms':>8} {'learn ms':>9} {'samples/CPU-s':>14} {'samples/s':>10}")
    for r in rows:
        print(f"{Path(r['config']).name:<32} {r['tokens']:>6} {r['parameters']:>8,} {r['draw_cpu_ms']:>8} "
              f"{r['learn_cpu_ms']:>9} {r['samples_per_cpu_s']:>14} {r['samples_per_wall_s']:>10}")
    if args.json:
        emit_json({"rows": rows, "steps": args.steps, "threads": 1, "machine": machine()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
