"""The app's corrections: save what a reading got wrong, show and score them, hand them out as a zip."""
from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import gradio as gr

from ..corrections import CorrectionError, Corrections, score

log = logging.getLogger("nextnum.app")


def image_of(value: Any) -> Any:
    """The image a reading was made from, as its tab holds it: a sketchpad dict (its composite), a file
    path (its own bytes are saved), a webcam session's state (its last frame), or an array."""
    if isinstance(value, dict):
        if "composite" in value:
            return value["composite"]
        return value.get("frame")  # the webcam state
    return value


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
    """(how many there are, the newest n as a gallery of (image, caption))."""
    try:
        labels = store.labels()
    except CorrectionError as e:
        return f"**{e}**", []
    train, held = store.split()
    count = (f"**{len(labels):,} corrections** in `{store.root}` ({len(held)} held out of training, "
             f"to score a fine-tune fairly)." if labels else f"No corrections yet (they are saved in `{store.root}`).")
    return count, [(str(p), label) for p, label in store.latest(n)]


def zip_file(store: Corrections) -> str:
    """A zip of every correction and labels.json, written to a temporary file for the download button."""
    if not len(store):
        raise gr.Error("there are no corrections to download yet", print_exception=False)
    path = Path(tempfile.mkdtemp(prefix="nextnum-")) / f"corrections-{time.strftime('%Y%m%d-%H%M%S')}.zip"
    path.write_bytes(store.zip())
    return str(path)


def accuracy(predictor, name: str | None, store: Corrections) -> str:
    """The live model's sequence accuracy on all the corrections and on the held-out part."""
    res = score(predictor, store.root)
    if res is None:
        return "No corrections to score yet."
    held = score(predictor, store.root, held_out_only=True)
    line = f"**{name}** reads {res['sequence_accuracy']:.1%} of the {res['samples']} corrections right"
    if held is not None:
        line += f" ({held['sequence_accuracy']:.1%} of the {held['samples']} held out of training)"
    return line + "."
