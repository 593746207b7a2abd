"""The app's corrections: save what a reading got wrong, show and score them, hand them out as a zip."""
from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import gradio as gr

from ..corrections import CorrectionError, Corrections
from ..scoring import score_corrections

log = logging.getLogger("nextnum.app")


def image_of(value: Any) -> Any:
    """The image a reading was made from, as its tab holds it: a sketchpad dict (its composite), a file
    path (its own bytes are saved), a webcam session's state (its last frame), or an array."""
    if isinstance(value, dict):
        if "composite" in value:
            return value["composite"]
        return value.get("frame")  # the webcam state
    return value


class RateLimit:
    """At most n events per client in any window of `seconds` (a public deployment's corrections): a client
    is its address, or the first address a proxy forwarded it for (as on a Hugging Face Space)."""

    def __init__(self, n: int, seconds: float, clients: int = 10_000) -> None:
        self.n, self.seconds, self.clients = n, seconds, clients
        self._seen: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def client(request: Any) -> str:
        forwarded = request.headers.get("x-forwarded-for", "") if request is not None else ""
        host = getattr(getattr(request, "client", None), "host", None)
        return forwarded.split(",")[0].strip() or host or "?"

    def allow(self, key: str, now: float | None = None) -> bool:
        """Count one event of key; False (not counted) when key already had n in the window."""
        now = time.monotonic() if now is None else now
        with self._lock:
            times = [t for t in self._seen.pop(key, []) if now - t < self.seconds]
            ok = len(times) < self.n
            self._seen[key] = times + [now] if ok else times  # re-inserted: the dict stays oldest-first
            while len(self._seen) > self.clients:
                self._seen.pop(next(iter(self._seen)))
        return ok


def save(store: Corrections, image: Any, text: str) -> str:
    """Save one correction; a gr.Error with the reason (nothing saved) when it cannot be."""
    try:
        saved = store.save(image_of(image), text)
    except CorrectionError as e:
        log.info("correction refused: %s", e)
        raise gr.Error(str(e), print_exception=False) from None
    log.info("saved correction %s as %s (%d in all)", saved.name, saved.label, saved.count)
    return f"Saved as **{saved.label}**, thank you: {saved.count:,} correction{'s' * (saved.count != 1)} so far."


def overview(store: Corrections, n: int = 12) -> tuple[str, list[tuple[str, str]]]:
    """(how many there are, the newest n as a gallery of (image, caption)); n=0 shows none (in public)."""
    try:
        labels = store.labels()
    except CorrectionError as e:
        log.warning("%s", e)
        return "**The corrections folder cannot be read** (see the app's log).", []
    train, held = store.split()
    count = (f"**{len(labels):,} corrections** ({len(held)} held out of training, to score a fine-tune "
             f"fairly)." if labels else "No corrections yet.")
    return count, [(str(p), label) for p, label in store.latest(n)] if n else []


class ZipFolder:
    """Where the download button's zips are written: one private folder, removed when the app exits. A new
    zip removes the ones before it, which Gradio has copied into its own cache (cleaned by delete_cache)."""

    def __init__(self) -> None:
        self._root: Path | None = None
        self._lock = threading.Lock()

    def write(self, store: Corrections) -> str:
        """A zip of every correction and labels.json, for the download button."""
        if not len(store):
            raise gr.Error("there are no corrections to download yet", print_exception=False)
        with self._lock:
            if self._root is None:
                self._root = Path(tempfile.mkdtemp(prefix="nextnum-zips-"))
                atexit.register(shutil.rmtree, self._root, True)
            for old in self._root.glob("*.zip"):
                old.unlink(missing_ok=True)
            path = self._root / f"corrections-{time.strftime('%Y%m%d-%H%M%S')}.zip"
            store.zip_to(path)
        return str(path)


def accuracy(predictor, name: str | None, store: Corrections) -> str:
    """The live model's sequence accuracy on all the corrections and on the held-out part."""
    res = score_corrections(predictor, store.root)
    if res is None:
        return "No corrections to score yet."
    held = score_corrections(predictor, store.root, held_out_only=True)
    line = f"**{name}** reads {res['sequence_accuracy']:.1%} of the {res['samples']} corrections right"
    if held is not None:
        line += f" ({held['sequence_accuracy']:.1%} of the {held['samples']} held out of training)"
    return line + "."
