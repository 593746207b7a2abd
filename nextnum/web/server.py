"""Starting the web app: process settings (malloc arenas, threads, logging), command-line options, launch."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when used: this module is loaded before the malloc limit is set
    import gradio as gr

    from .checkpoints import Checkpoints
    from .training import TrainingSlot

ROOT = Path(__file__).resolve().parents[2]
# Gradio keeps ~200 KB per session (a copy of the page's config, and the State values) for the newest this
# many sessions; its default of 10,000 would let API callers, each call a new session, take 2 GB
SESSIONS = int(os.environ.get("NEXTNUM_SESSIONS", "1000"))
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


def options(argv: list[str] | None = None) -> argparse.Namespace:
    """The app's command line (defaults from the NEXTNUM_* environment)."""
    ap = argparse.ArgumentParser(description="NextNum web app")
    ap.add_argument("--checkpoint", help="checkpoint folder to start with (default: checkpoints/nextnum)")
    ap.add_argument("--checkpoints-dir", default=os.environ.get("NEXTNUM_CHECKPOINTS", str(ROOT / "checkpoints")),
                    help="folder of checkpoints the app lists and trains into (env NEXTNUM_CHECKPOINTS)")
    ap.add_argument("--data", default=os.environ.get("NEXTNUM_DATA", str(ROOT.parent / "shared" / "data")),
                    help="MNIST root for the Train tab (env NEXTNUM_DATA); without it the built-in sample is used")
    ap.add_argument("--corrections-dir", default=os.environ.get("NEXTNUM_CORRECTIONS"),
                    help="folder the Save correction buttons write to (env NEXTNUM_CORRECTIONS; "
                         "default: corrections/ beside the checkpoints folder)")
    ap.add_argument("--port", type=int, default=None, help="port (default: GRADIO_SERVER_PORT or 7860)")
    ap.add_argument("--share", action="store_true", help="also make a temporary public gradio.live link")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("NEXTNUM_THREADS", "1")),
                    help="PyTorch's threads (training, or reading without an exported graph); 1 is fastest for "
                         "this tiny model, especially beside a training run")
    return ap.parse_args(argv)


def main(build: Callable[..., gr.Blocks], argv: list[str] | None = None) -> None:
    """Parse the options, build the app with `build(checkpoints, training slot, data note, corrections)` and serve it
    until interrupted."""
    from .checkpoints import Checkpoints
    from .training import TrainingSlot, training_data
    args = options(argv)
    logging.basicConfig(level=os.environ.get("NEXTNUM_LOG", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's own startup checks
    # PyTorch (imported only to train, or to read when there is no exported graph) takes its thread count
    # from the environment when it is imported; onnxruntime reads on one thread (runtime.OnnxReader)
    os.environ["OMP_NUM_THREADS"] = str(max(1, args.threads))
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(max(1, args.threads))
    root = Path(args.checkpoints_dir)
    root.mkdir(parents=True, exist_ok=True)
    note, load = training_data(args.data, force_fixture=os.environ.get("NEXTNUM_TRAIN_DATA") == "fixture")
    from ..corrections import Corrections
    corrections = Corrections(args.corrections_dir or root.resolve().parent / "corrections")
    demo = build(Checkpoints(root, args.checkpoint), TrainingSlot(root, load), note, corrections)
    demo.queue(max_size=20, default_concurrency_limit=2)
    # no server_name: Gradio takes GRADIO_SERVER_NAME from the environment (127.0.0.1 when unset)
    demo.launch(server_port=args.port, share=args.share, max_file_size="5mb", prevent_thread_lock=True,
                ssr_mode=False, state_session_capacity=SESSIONS)
    if args.share and not demo.share_url:
        log.warning("--share: no public link could be made (no internet, or the share service is unreachable); "
                    "the app is still running locally at %s", demo.local_url)
    demo.block_thread()
