"""Workarounds for Gradio behaviour the app cannot live with, installed once by install()."""
from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..atomic import write_atomic

log = logging.getLogger("nextnum.app")
MAX_UPLOAD = 8 * 2**20  # bytes of one upload request, all its files together (the per-file limit is 5 MB)
MAX_BODY = 12 * 2**20  # bytes of any other request (a drawing sent inline as a data URL travels in one)


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


def decode_with_nextnum(decode: Callable[..., Any]) -> Callable[..., Any]:
    """gr.Image's decoding (gradio.image_utils.preprocess_image), but a picture wanted as an array (the
    webcam's frames) is decoded by NextNum's own decoder, inside the app's heavy-work limit.

    Gradio decodes a sent picture whole with PIL before any event function runs, with no check of its
    size, and raises a bare exception for one it cannot decode. NextNum's decoder (inputs.decode) checks
    the header's size first, applies EXIF orientation, and says what is wrong with a bad file."""
    @functools.wraps(decode)
    def wrapper(payload: Any, cache_dir: str, format: str, image_mode: Any, type: str) -> Any:
        if payload is None or type != "numpy":
            return decode(payload, cache_dir, format, image_mode, type)
        import gradio as gr

        from .. import inputs
        from .heavy import heavy
        source = payload.url if payload.url and payload.url.startswith("data:") else payload.path
        if not source:
            raise gr.Error("no image was sent", print_exception=False)
        try:
            with heavy():
                arr = inputs.to_array(source if source.startswith("data:") else Path(source))
        except inputs.ImageError as e:
            log.info("refused an image: %s", e)
            raise gr.Error(str(e), print_exception=False) from None
        if image_mode == "RGB" and arr.ndim == 2:
            arr = arr[..., None].repeat(3, axis=2)
        return arr[..., :3] if image_mode == "RGB" else arr
    return wrapper


class BodyLimit:
    """ASGI middleware: a request whose body is over MAX_UPLOAD (uploads) or MAX_BODY (anything else) is
    answered 413. Gradio's max_file_size counts each file of an upload alone, so one request of 40 files
    of 4.9 MB each wrote 196 MB to disk."""

    def __init__(self, app: Any, upload: int = MAX_UPLOAD, body: int = MAX_BODY) -> None:
        self.app, self.upload, self.body = app, upload, body

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        limit = self.upload if scope["path"].rstrip("/").endswith("/upload") else self.body
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return await _too_large(send, limit)
        seen = 0

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:  # a body sent without its length: stop reading it
                return {"type": "http.disconnect"}
            return message
        await self.app(scope, counted, send)


async def _too_large(send: Callable, limit: int) -> None:
    body = f"request body over {limit // 2**20} MB".encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def install() -> None:
    """Put the workarounds in place. gr.Image and gr.Gallery look save_pil_to_cache up in
    gradio.processing_utils at call time, so replacing it there is enough; likewise gr.Image's decoding
    in gradio.image_utils. BodyLimit goes in through launch(app_kwargs=...) (server.main)."""
    from gradio import image_utils, processing_utils
    processing_utils.save_pil_to_cache = save_pil_to_cache
    if not hasattr(image_utils.preprocess_image, "__wrapped__"):  # once, however often install() runs
        image_utils.preprocess_image = decode_with_nextnum(image_utils.preprocess_image)
