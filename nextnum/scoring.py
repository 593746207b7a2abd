"""Scoring readings against the truth: exact-match and per-digit accuracy (no PyTorch: serving scores too)."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any


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
