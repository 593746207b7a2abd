"""Workarounds for Gradio behaviour the app cannot live with, installed once by install()."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..checkpoint import write_atomic


def save_pil_to_cache(img: Any, cache_dir: str, name: str = "image", format: str = "webp") -> str:
    """gradio.processing_utils.save_pil_to_cache, but written under a temporary name and renamed into place.

    Gradio 6.31 saves every image an event returns (gr.Image, gr.Gallery) to
    <cache_dir>/<hash of its bytes>/<name>.<format> with Path.write_bytes: the file is truncated and
    rewritten in place even when it already exists. Two requests that return the same picture at once
    (two webcam users showing the same number) write the same path, so the file route can serve one of
    them a file that the other has just truncated ("Too little data for declared Content-Length";
    17 of 240 requests under 8 concurrent clients). Renamed into place, the path always holds a whole
    file: the old one or the new one, with the same bytes.
    """
    from gradio import processing_utils
    data = processing_utils.encode_pil_to_bytes(img, format)
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    folder.mkdir(exist_ok=True, parents=True)
    path = folder / f"{name}.{format}"
    write_atomic(path, data)
    return str(path.resolve())


def install() -> None:
    """Put the workarounds in place. gr.Image and gr.Gallery look save_pil_to_cache up in
    gradio.processing_utils at call time, so replacing it there is enough."""
    from gradio import processing_utils
    processing_utils.save_pil_to_cache = save_pil_to_cache
