"""Starting the web app: process settings (malloc arenas, threads, logging), command-line options, launch."""
from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from . import settings

if TYPE_CHECKING:  # imported when used: this module is loaded before the malloc limit is set
    import gradio as gr

    from .models import Checkpoints
    from .train_runs import TrainingSlot

log = logging.getLogger("nextnum.app")


def limit_malloc_arenas(n: int = 2) -> None:
    """Ask glibc for at most n malloc arenas (as MALLOC_ARENA_MAX=n would), before any thread starts.

    By default each of the server's worker threads may get an arena of its own, and freed memory stays
    in them: the app's resident memory grew by ~160 MB under 8 concurrent users (bench/memory.py).
    An explicit MALLOC_ARENA_MAX in the environment wins."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").mallopt(-8, n)  # -8 = M_ARENA_MAX
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to do
        pass


def trim_memory_when_idle(every_s: float = 15.0) -> None:
    """Every every_s seconds, hand the memory glibc's malloc holds free back to the system (malloc_trim).

    Requests come and go in worker threads; what they freed stays in malloc's arenas, so the app's resident
    memory kept its peak after a burst of requests (+87 MB after 16 clients for a minute). No library
    does this for a Python process; it costs a few milliseconds."""
    try:
        import ctypes
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return
    import threading

    def loop() -> None:
        while True:
            time.sleep(every_s)
            trim(0)
    threading.Thread(target=loop, name="malloc-trim", daemon=True).start()


def main(build: Callable[..., gr.Blocks], argv: list[str] | None = None) -> None:
    """Parse the settings once, build the app with `build(checkpoints, training slot, data note, corrections,
    settings)` and serve it until interrupted."""
    from ..corrections import Corrections
    from . import heavy
    from .models import Checkpoints
    from .train_runs import TrainingSlot, training_data
    s = settings.parse(argv)
    logging.basicConfig(level=s.log, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's own startup checks
    # PyTorch (imported only to train, or to read when there is no exported graph) takes its thread count
    # from the environment when it is imported; onnxruntime reads on one thread (runtime.OnnxReader)
    os.environ["OMP_NUM_THREADS"] = str(s.threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(s.threads)
    heavy.configure(s.heavy)
    root = Path(s.checkpoints_dir)
    root.mkdir(parents=True, exist_ok=True)
    note, load = training_data(s.data, force_fixture=s.train_on_fixture)
    corrections = Corrections(s.corrections_root, max_bytes=s.corrections_mb * 2**20 if s.public else None)
    demo = build(Checkpoints(root, s.checkpoint), TrainingSlot(root, load), note, corrections, s)
    demo.queue(max_size=s.queue, default_concurrency_limit=2)
    trim_memory_when_idle()
    from starlette.middleware import Middleware

    from .gradio_fixes import BodyLimit
    # no server_name: Gradio takes GRADIO_SERVER_NAME from the environment (127.0.0.1 when unset)
    # run_history=False: Gradio would otherwise keep every event's inputs and outputs in the visitor's
    # localStorage, rewritten whole at each event: a drawing's data URL per stroke made the page about 150 KB
    # heavier and each reading slower with every number drawn (and kept people's drawings in their browser)
    demo.launch(server_port=s.port, share=s.share, max_file_size="5mb", prevent_thread_lock=True,
                ssr_mode=False, state_session_capacity=s.sessions, run_history=False,
                app_kwargs={"middleware": [Middleware(BodyLimit)]})
    if s.share and not demo.share_url:
        log.warning("--share: no public link could be made (no internet, or the share service is unreachable); "
                    "the app is still running locally at %s", demo.local_url)
    demo.block_thread()
