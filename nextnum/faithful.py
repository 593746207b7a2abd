"""Whether the maps show what the reading rests on: blank what a digit's map points at, and read again."""
from __future__ import annotations

from typing import Any

import numpy as np

from . import attention as A
from .predictor import Predictor, _readings


def faithfulness(predictor: Predictor, image: Any, frac: float = 0.1,
                 roi: tuple[float, float, float, float] | None = None) -> list[dict[str, Any]]:
    """For each digit read, blank the canvas under its most-attended `frac` of tokens and read again.

    If the attention is faithful, the digit's probability should drop far more than when as many
    other tokens over ink, picked at random, are blanked (tokens over empty canvas would be no test).
    Returns one dict per digit: its probability, and the reading and that digit's probability with
    the top tokens masked and with the random ones masked.
    """
    pred = predictor.predict(image, explain=True, roi=roi)
    if not pred.text:
        return []
    cfg = predictor.config.model
    rng = np.random.default_rng(0)
    gh, gw = cfg.grid
    f, k = cfg.field, cfg.cell
    inked = np.array([pred.canvas[r * k:r * k + f, c * k:c * k + f].max() > 0.1
                      for r in range(gh) for c in range(gw)])  # (N,) tokens with ink under them
    out = []
    for i, d in enumerate(pred.digits):
        m = pred.attention.cross[i].mean((0, 1)).reshape(-1)  # (N,)
        top = A.top_tokens(m, frac)
        rest = np.setdiff1d(np.flatnonzero(inked), top)
        if rest.size < top.size:
            rest = np.setdiff1d(np.arange(m.size), top)
        rand = rng.choice(rest, size=min(top.size, rest.size), replace=False)
        row = {"position": i, "digit": d.digit, "prob": d.prob}
        for name, toks in (("top", top), ("random", rand)):
            g = predictor.read(A.mask_tokens(pred.canvas, toks, cfg)[None, None])
            text, _, _ = _readings(g)
            p = float(g.probs[0, i, int(d.digit)]) if i <= len(text) else 0.0  # no step after the stop
            row[f"{name}_masked_text"], row[f"{name}_masked_prob"] = text, p
        out.append(row)
    return out
