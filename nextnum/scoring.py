"""Scoring readings against the truth: exact-match and per-digit accuracy (no PyTorch: serving scores too)."""
from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .corrections import Corrections
from .inputs import ImageError

log = logging.getLogger("nextnum.scoring")


def score(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Exact-match and per-digit accuracy of (predicted, true) strings, overall and by true length.

    A digit counts as right when the prediction has the same digit at the same position, so a
    reading that drops or adds a digit loses the digits after it.
    """
    n = seq = dig = ndig = wrong_len = 0
    by: dict[str, list[int]] = {}
    for pred, true in pairs:
        ok = pred == true
        n, seq = n + 1, seq + ok
        wrong_len += len(pred) != len(true)
        dig += sum(a == b for a, b in zip(pred, true))
        ndig += len(true)
        b = by.setdefault(str(len(true)), [0, 0])
        b[0], b[1] = b[0] + ok, b[1] + 1
    return {"sequence_accuracy": seq / max(n, 1), "digit_accuracy": dig / max(ndig, 1),
            "by_length": {k: v[0] / v[1] for k, v in sorted(by.items())},
            "by_length_count": {k: v[1] for k, v in sorted(by.items())}, "samples": n,
            # misread numbers: a digit dropped or added, or the right length with some digit wrong
            "errors": {"wrong_length": wrong_len, "wrong_digit": n - seq - wrong_len}}


def score_corrections(predictor, root: str | Path, held_out_only: bool = False) -> dict[str, Any] | None:
    """Sequence accuracy of a Predictor on the corrections (or on the held-out part); None when there are none."""
    c = Corrections(root)
    labels = c.split()[1] if held_out_only else c.labels()
    if not labels:
        return None
    pairs = []
    for k, v in labels.items():
        try:
            pairs.append((predictor.predict(c.root / k, explain=False).text, v))
        except ImageError as e:  # a file that is not (or no longer) readable spoils no one's score
            log.warning("corrections: skipped %s: %s", k, e)
    return score(pairs) if pairs else None
