"""Timing a call on this CPU: the median of its run times, as torch.utils.benchmark measures it."""
from __future__ import annotations

from collections.abc import Callable


def median_ms(fn: Callable[[], object], min_run_time: float = 0.5) -> float:
    """Median wall time of fn() in ms at one torch thread (torch.utils.benchmark.Timer: warmed up,
    timed in blocks for at least min_run_time seconds, torch's thread count put back after)."""
    from torch.utils.benchmark import Timer
    return Timer("fn()", globals={"fn": fn}, num_threads=1).blocked_autorange(min_run_time=min_run_time).median * 1000
