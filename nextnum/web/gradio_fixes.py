"""Workarounds for Gradio behaviour the app cannot live with, installed once by install()."""
from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..checkpoint import write_atomic

log = logging.getLogger("nextnum.app")


def save_pil_to_cache(img: Any, cache_dir: str, name: str = "image", format: str = "webp") -> str:
    """gradio.processing_utils.save_pil_to_cache, but a picture already in the cache is kept as it is, and a
    new one is written under a temporary name and renamed into place.

    Gradio 6.31 saves every image an event returns (gr.Image, gr.Gallery) to
    <cache_dir>/<hash of its bytes>/<name>.<format> with Path.write_bytes: the file is truncated and
    rewritten in place even when it already exists. Two requests that return the same picture at once
    (two webcam users showing the same number) write the same path, so the file route can serve one of
    them a file that the other has just truncated ("Too little data for declared Content-Length";
    17 of 240 requests under 8 concurrent clients). Renamed into place, the path always holds a whole
    file. The path is named by the hash of the bytes, so a file already there holds these bytes: it is
    only touched, as Gradio does for cached uploads, so that delete_cache (which ages files by ctime)
    keeps it. Renaming over it would make ext4 write it to disk first (auto_da_alloc), which took 9% of
    the app's time under 8 users sending photos it had read before.
    """
    from gradio import processing_utils
    data = processing_utils.encode_pil_to_bytes(img, format)
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    folder.mkdir(exist_ok=True, parents=True)
    path = folder / f"{name}.{format}"
    try:
        os.utime(path)
    except FileNotFoundError:
        write_atomic(path, data)
    return str(path.resolve())


def refuse_undecodable(decode: Callable[..., Any]) -> Callable[..., Any]:
    """Gradio's image decoding (arguments: the payload first, then its own), but an image it cannot decode
    is refused with NextNum's own message, as an upload is.

    gr.Image and gr.Sketchpad decode what the browser or an API client sends before any event function
    runs, and a file that is no image (a text file named .png, a truncated PNG) makes them raise a bare
    exception: the client gets Gradio's generic error, which is also what a crash in NextNum looks like.
    NextNum's reader (inputs.read_image) says what is wrong with the file, so that is what is raised."""
    @functools.wraps(decode)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return decode(*args, **kwargs)
        except Exception as failure:
            import gradio as gr

            from ..inputs import ImageError, read_image
            payload = next((a for a in args if hasattr(a, "path")), None)  # the FileData (after self)
            if isinstance(failure, gr.Error) or payload is None or not payload.path:
                raise
            try:
                read_image(str(payload.path))
            except ImageError as e:
                log.info("refused an image: %s", e)
                raise gr.Error(str(e), print_exception=False) from None
            raise
    return wrapper


def install() -> None:
    """Put the workarounds in place. gr.Image and gr.Gallery look save_pil_to_cache up in
    gradio.processing_utils at call time, so replacing it there is enough; likewise gr.Image's decoding
    in gradio.image_utils, and gr.Sketchpad's is a method of gr.ImageEditor."""
    import gradio as gr
    from gradio import image_utils, processing_utils
    processing_utils.save_pil_to_cache = save_pil_to_cache
    if not hasattr(image_utils.preprocess_image, "__wrapped__"):  # once, however often install() runs
        image_utils.preprocess_image = refuse_undecodable(image_utils.preprocess_image)
        gr.ImageEditor.convert_and_format_image = refuse_undecodable(gr.ImageEditor.convert_and_format_image)
