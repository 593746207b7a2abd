"""Confidence calibration: fit the decoder's softmax temperature on validation canvases, measure calibration error.

    python -m nextnum.calibrate --checkpoint checkpoints/nextnum --data ../shared/data --write   # fit, store
    python -m nextnum.calibrate --checkpoint checkpoints/nextnum --data ../shared/data --t10k \\
        --data-config configs/full.json --plot docs/reliability_diagram.png --json                 # measure

The temperature is fitted on canvases of the train-split digits held out for validation (never t10k),
by the likelihood of the true next token at every step whose digits so far were read right (Guo et al.
2017, "On Calibration of Modern Neural Networks"). --write stores it as model.temperature in the
checkpoint's config.json (and how it was fitted in metrics.json); NextNum.step_probs applies it in PyTorch and in the exported graph. The
confidences measured are the ones a reading shows: each digit's probability, and the whole reading's
(its digits' and the stop's probabilities multiplied).
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from .atomic import write_atomic
from .config import EOS, READ_SHRINK, Config
from .data import fixed_batches, load_mnist
from .model import NextNum, tokens_text

BINS = 15


@dataclass
class Decoded:
    """Greedy readings of many canvases: tokens (B, S), probabilities (B, S, VOCAB) at temperature t, truths."""
    tokens: np.ndarray
    probs: np.ndarray
    t: float
    truths: list[str]


@torch.inference_mode()
def decode(model: NextNum, batches: list, device: str | torch.device = "cpu") -> Decoded:
    """Greedy-read every canvas of the batches at the model's own temperature."""
    model.eval()
    S = model.cfg.max_digits + 1
    toks, probs, truths = [], [], []
    for b in batches:
        g = model.generate(b.images.to(device))
        pad = S - g.tokens.shape[1]  # generate stops early when every row has ended
        toks.append(np.pad(g.tokens.cpu().numpy(), ((0, 0), (0, pad)), constant_values=EOS + 1))
        probs.append(np.pad(g.probs.float().cpu().numpy(), ((0, 0), (0, pad), (0, 0))))
        truths += b.texts
    return Decoded(np.concatenate(toks), np.concatenate(probs), model.cfg.temperature, truths)


def retemper(probs: np.ndarray, t_from: float, t_to: float) -> np.ndarray:
    """Probabilities softmax(z / t_from) turned into softmax(z / t_to): log p is z / t_from less a constant
    per row, and a constant does not change a softmax. Masked entries (p = 0) stay 0."""
    with np.errstate(divide="ignore"):
        z = np.log(probs) * (t_from / t_to)
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def confidences(d: Decoded, t: float) -> dict[str, np.ndarray]:
    """At temperature t, what a reading shows and whether it is right (counted()): each digit's probability,
    and the whole reading's (the product of its digits' and the stop's probabilities, as Predictor reports)."""
    p = retemper(d.probs, d.t, t) if t != d.t else d.probs

    def rows():
        for row, probs, true in zip(d.tokens.tolist(), p, d.truths):
            text = tokens_text(row)
            yield (text, [probs[i, int(ch)] for i, ch in enumerate(text)],
                   float(np.prod([probs[i, tok] for i, tok in enumerate(row[:len(text) + 1])])), true)
    return counted(rows())


def counted(readings: Iterable[tuple[str, list[float], float, str]]) -> dict[str, np.ndarray]:
    """(text read, its digits' probabilities, the whole reading's, true text) -> the confidences and whether
    each is right: a digit when the true number has it at that place, a whole reading when all of it is."""
    dc, dok, wc, wok = [], [], [], []
    for text, probs, whole, true in readings:
        for i, (ch, prob) in enumerate(zip(text, probs)):
            dc.append(prob)
            dok.append(i < len(true) and true[i] == ch)
        wc.append(whole)
        wok.append(text == true)
    return {"digit_conf": np.array(dc), "digit_ok": np.array(dok), "whole_conf": np.array(wc), "whole_ok": np.array(wok)}


def ece(conf: np.ndarray, ok: np.ndarray, bins: int = BINS) -> float:
    """Expected calibration error: |accuracy - mean confidence| per equal-width bin, weighted by its share."""
    return float(sum(r["count"] * abs(r["accuracy"] - r["confidence"]) for r in reliability(conf, ok, bins)) / max(len(conf), 1))


def reliability(conf: np.ndarray, ok: np.ndarray, bins: int = BINS) -> list[dict[str, float]]:
    """The non-empty equal-width confidence bins: each one's range, count, mean confidence and accuracy."""
    idx = np.minimum((conf * bins).astype(int), bins - 1)
    return [{"lo": k / bins, "hi": (k + 1) / bins, "count": int((idx == k).sum()),
             "confidence": float(conf[idx == k].mean()), "accuracy": float(ok[idx == k].mean())}
            for k in range(bins) if (idx == k).any()]


def true_token_nll(d: Decoded, t: float) -> float:
    """Mean -log p(true next token) at temperature t, over the steps whose digits so far were read right
    (there the decoder saw the true prefix, so the true next token is defined): the digits, then the stop."""
    p = retemper(d.probs, d.t, t) if t != d.t else d.probs
    nll = []
    for row, probs, true in zip(d.tokens.tolist(), p, d.truths):
        want = [int(c) for c in true] + [EOS]
        for i, tok in enumerate(want[:len(row)]):
            nll.append(-np.log(max(probs[i, tok], 1e-12)))
            if row[i] != tok:
                break
    return float(np.mean(nll))


def fit_temperature(d: Decoded, lo: float = 0.05, hi: float = 5.0) -> float:
    """The temperature in [lo, hi] that minimises true_token_nll (a golden-section search on log t: the
    likelihood is smooth and has one minimum in t, and no optimiser we depend on does a bounded 1-D search)."""
    a, b = np.log(lo), np.log(hi)
    g = (np.sqrt(5) - 1) / 2
    c, e = b - g * (b - a), a + g * (b - a)
    fc, fe = true_token_nll(d, float(np.exp(c))), true_token_nll(d, float(np.exp(e)))
    while b - a > 1e-3:
        if fc < fe:
            b, e, fe = e, c, fc
            c = b - g * (b - a)
            fc = true_token_nll(d, float(np.exp(c)))
        else:
            a, c, fc = c, e, fe
            e = a + g * (b - a)
            fe = true_token_nll(d, float(np.exp(e)))
    return round(float(np.exp((a + b) / 2)), 4)


def shown(readings: Iterable[tuple[Any, str]]) -> dict[str, np.ndarray]:
    """(Prediction, true text) pairs -> what the app shows and whether it is right, counted() as greedy
    readings are: the Predictor's own probabilities, those of the views' vote included (Predictor._reread)."""
    return counted((pred.text, [d.prob for d in pred.digits], pred.confidence, true) for pred, true in readings)


def report(d: Decoded | dict[str, np.ndarray], t: float) -> dict[str, Any]:
    """Calibration at temperature t: ECE, mean confidence and accuracy, per digit and per whole reading, of
    greedy readings (Decoded, retempered to t) or of confidences already shown (shown(), read at t)."""
    c = confidences(d, t) if isinstance(d, Decoded) else d
    out: dict[str, Any] = {"temperature": t}
    for k in ("digit", "whole"):
        conf, ok = c[f"{k}_conf"], c[f"{k}_ok"]
        out[k] = {"ece": round(ece(conf, ok), 4), "mean_confidence": round(float(conf.mean()), 4),
                  "accuracy": round(float(ok.mean()), 4), "count": int(len(conf)), "bins": reliability(conf, ok)}
    return out


def plot(reports: list[dict[str, Any]], path: str | Path, title: str) -> None:
    """Reliability diagram: accuracy against confidence per bin, one line per temperature, digits | wholes."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for ax, k, name in zip(axes, ("digit", "whole"), ("each digit", "whole reading")):
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
        for r in reports:
            bins = [b for b in r[k]["bins"] if b["count"] >= 5]
            ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-", ms=3,
                    label=f"{r.get('label', 'T = %g' % r['temperature'])}: ECE {r[k]['ece']:.3f}")
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence shown", ylabel="share read right", title=name)
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def shown_on_pages(checkpoint: str | Path, data: str | Path, samples: int, data_cfg) -> dict[str, np.ndarray]:
    """The t10k pages nextnum.evaluate scores (seed 0), each read as the app reads an image: shown()."""
    from .predictor import Predictor
    from .scenes import fixed_pages
    pred = Predictor.load(checkpoint)
    return shown((pred.predict(page, explain=False), true) for sc in fixed_pages(load_mnist(data, train=False), samples,
                 data_cfg, 0, READ_SHRINK) for page, true in zip(sc.images, sc.texts))


def main(argv: list[str] | None = None) -> int:
    from . import checkpoint
    ap = argparse.ArgumentParser(prog="python -m nextnum.calibrate", description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default=str(checkpoint.SHIPPED))
    ap.add_argument("--data", default="../shared/data", help="MNIST root (torchvision layout)")
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=101, help="seed of the validation canvases the temperature is fitted on")
    ap.add_argument("--write", action="store_true", help="fit on validation canvases and store model.temperature")
    ap.add_argument("--t10k", action="store_true", help="measure on t10k canvases (seed 0) instead: never fitted on")
    ap.add_argument("--data-config", default=None, help="config whose 'data' section draws the canvases")
    ap.add_argument("--plot", default=None, help="PNG for the reliability diagram (with --t10k: raw and stored T)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    model, cfg, metrics = checkpoint.load(args.checkpoint)
    data_cfg = Config.load(args.data_config).data if args.data_config else cfg.data
    hw = (cfg.model.img_h, cfg.model.img_w)
    if args.t10k:
        batches = fixed_batches(load_mnist(args.data, train=False), args.samples, data_cfg, hw, seed=0,
                                match_strokes=cfg.model.match_strokes)
        where = f"{args.samples} t10k canvases, seed 0"
    else:
        _, val_bank = load_mnist(args.data, train=True).split(cfg.data.val_holdout)
        batches = fixed_batches(val_bank, args.samples, data_cfg, hw, seed=args.seed, match_strokes=cfg.model.match_strokes)
        where = f"{args.samples} validation canvases (held-out train-split digits), seed {args.seed}"
    d = decode(model, batches)
    res: dict[str, Any] = {"checkpoint": args.checkpoint, "canvases": where}
    if args.t10k:
        res["raw"], res["stored"] = report(d, 1.0), report(d, cfg.model.temperature)
        res["app"] = report(shown_on_pages(args.checkpoint, args.data, args.samples, data_cfg), cfg.model.temperature)
        res["app"]["label"] = f"as the app shows, T = {cfg.model.temperature:g}, views voting"
    else:
        t = fit_temperature(d)
        res["fitted_temperature"], res["raw"], res["fitted"] = t, report(d, 1.0), report(d, t)
        if args.write:
            cfg.model.temperature = t
            write_atomic(Path(args.checkpoint) / checkpoint.CONFIG,
                                    (json.dumps(cfg.to_dict(), indent=2) + "\n").encode())
            metrics["calibration"] = {"temperature": t, "fitted_on": where, "command": "python -m nextnum.calibrate "
                                      + " ".join(argv if argv is not None else sys.argv[1:]),
                                      **{f"{k}_ece_{n}": res[n][k]["ece"] for n in ("raw", "fitted") for k in ("digit", "whole")}}
            write_atomic(Path(args.checkpoint) / checkpoint.METRICS, (json.dumps(metrics, indent=2) + "\n").encode())
    if args.plot:
        plot([res["raw"], res.get("stored", res.get("fitted"))] + ([res["app"]] if "app" in res else []), args.plot,
             f"{Path(args.checkpoint).name}: {where}")
    for name in ("raw", "stored", "fitted", "app"):
        if name in res:
            r = res[name]
            print(f"{name:<7}T = {r['temperature']:<7g} per digit: ECE {r['digit']['ece']:.4f} (confidence {r['digit']['mean_confidence']:.4f}, "
                  f"right {r['digit']['accuracy']:.4f})   whole: ECE {r['whole']['ece']:.4f} "
                  f"(confidence {r['whole']['mean_confidence']:.4f}, right {r['whole']['accuracy']:.4f})")
    if args.json:
        print(json.dumps({k: v for k, v in res.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
