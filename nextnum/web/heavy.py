"""One limit, for the whole app process, on the work that takes memory and CPU: decoding and reading images.

Gradio's concurrency limits count per event (or per concurrency_id), so six large files sent to three
endpoints at once were decoded six at a time. Every decode and every reading in the app passes through
`heavy()`, whichever event it serves; the rest wait their turn (the queue bounds how many may wait).
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

# process-wide on purpose: the memory it protects is the process's (Settings.heavy; server.main sets it)
_slots = threading.BoundedSemaphore(2)


def configure(at_once: int) -> None:
    """Allow at_once heavy jobs at a time (before the app serves anything)."""
    global _slots
    _slots = threading.BoundedSemaphore(max(1, at_once))


@contextmanager
def heavy() -> Iterator[None]:
    """Hold one of the slots for heavy work."""
    with _slots:
        yield
