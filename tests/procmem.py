"""A process's memory from Linux's /proc, read one way by the app tests and by bench/."""
from __future__ import annotations

from pathlib import Path

FIELDS = ("VmRSS", "VmHWM", "RssAnon")  # resident now, peak resident, private (not shared library pages)


def memory_mb(pid: int | str = "self") -> dict[str, float]:
    """VmRSS, VmHWM and RssAnon of a process (default: this one), in MB."""
    vals = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in FIELDS:
            vals[key] = int(rest.split()[0]) / 1024
    return vals
