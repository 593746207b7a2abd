"""One limit, for the whole app process, on the work that takes memory and CPU: decoding and reading images.

Gradio's concurrency limits count per event (or per concurrency_id), so six large files sent to three
endpoints at once were decoded six at a time. Every decode and every reading in the app passes through
`heavy()`, whichever event it serves; the rest wait their turn (the queue bounds how many may wait).
"""
from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

AT_ONCE = max(1, int(os.environ.get("NEXTNUM_HEAVY", "2")))  # one per core of a 2-vCPU Space
# process-wide on purpose: the memory it protects is the process's
_slots = threading.BoundedSemaphore(AT_ONCE)


@contextmanager
def heavy() -> Iterator[None]:
    """Hold one of the AT_ONCE slots for heavy work."""
    with _slots:
        yield
