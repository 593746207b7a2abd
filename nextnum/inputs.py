"""Any image input (file, data URL, array, PIL image, sketchpad value) as the uint8 array every reader reads.

Every reader (the app, `python -m nextnum.predict`, `evaluate --images`, Predictor.predict) goes
through `read_image`, so one file reads the same whichever way it comes in.
"""
from __future__ import annotations

import base64
import binascii
import io
from pathlib import Path
from typing import Any

import cv2
import numpy as np

MAX_SIDE = 10_000  # refuse images larger than this (either side)
# Larger images are read shrunk to this (longer side). With explain=True every map is drawn at the size
# of the image read: a 10,000 px upload took 9 s and 2.8 GB at full size, a fraction of a second shrunk,
# and the reading hardly changes (the digits are looked for on a copy of at most 800 px anyway).
READ_SIDE = 2000
MAX_DATA_URL = 20 * 2**20  # characters of base64 (15 MB of image file): larger images come as files


class ImageError(ValueError):
    """An input that is not an image NextNum can read (with a message meant for the user)."""


def read_image(image: Any) -> tuple[np.ndarray, float]:
    """Any supported input (see to_array) -> (uint8 array no larger than READ_SIDE, zoom), where zoom is
    the given image's pixels per pixel of the array (1.0 unless it was shrunk)."""
    arr = to_array(image)
    small = downscale(arr, READ_SIDE)
    return small, arr.shape[1] / small.shape[1]


def downscale(img: np.ndarray, max_side: int) -> np.ndarray:
    """img shrunk (area-averaged) so that its longer side is at most max_side; as it is if it already fits."""
    h, w = img.shape[:2]
    f = max_side / max(h, w)
    if f >= 1:
        return img
    return cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)


def roi_box(shape: tuple[int, int], roi: tuple[float, float, float, float] | None) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) pixels (ends exclusive, at least one pixel) of an image of shape (h, w); roi is
    given as fractions of width and height (None: the whole image)."""
    h, w = shape[:2]
    if roi is None:
        return 0, 0, w, h
    fx0, fy0, fx1, fy1 = (float(v) for v in roi)
    if not (0 <= fx0 < fx1 <= 1 and 0 <= fy0 < fy1 <= 1):
        raise ValueError(f"roi must be fractions 0 <= x0 < x1 <= 1, 0 <= y0 < y1 <= 1; got {roi}")
    x0, y0 = int(fx0 * w), int(fy0 * h)
    return x0, y0, max(x0 + 1, int(round(fx1 * w))), max(y0 + 1, int(round(fy1 * h)))


def to_array(image: Any) -> np.ndarray:
    """Any supported input -> uint8 array (H, W), (H, W, 3) RGB or (H, W, 4) RGBA.

    Accepts numpy arrays (uint8, uint16, bool, other ints, float in [0, 1] or [0, 255]), PIL images,
    file paths, images as data URLs (the Draw tab's sketchpad) and Gradio's sketchpad/image-editor value
    ({"composite": ...}).
    """
    if isinstance(image, dict):
        if "composite" not in image:
            raise ImageError("expected a sketchpad value with a 'composite' image")
        image = image["composite"]
        if image is None:
            return np.full((8, 8), 255, np.uint8)  # an untouched sketchpad: blank
    if image is None:
        raise ImageError("no image was given")
    if isinstance(image, str) and image.startswith("data:"):
        image = _read_data_url(image)
    elif isinstance(image, (str, Path)):
        image = _read_file(Path(image))
    if hasattr(image, "convert") and hasattr(image, "mode"):  # PIL
        if image.mode not in ("1", "L", "RGB", "RGBA", "I;16", "I", "F"):
            image = image.convert("RGBA" if "A" in image.mode or "transparency" in image.info else "RGB")
        image = np.asarray(image)
    try:
        arr = np.asarray(image)
    except Exception as e:  # ragged lists and other things numpy cannot hold
        raise ImageError(f"not an image: {type(image).__name__} ({e})") from None
    if arr.dtype == object or arr.ndim not in (2, 3):
        raise ImageError(f"expected an image array (H, W) or (H, W, C), got shape {arr.shape} of {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] not in (1, 3, 4):
        raise ImageError(f"expected 1, 3 or 4 channels, got {arr.shape[2]}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if min(arr.shape[:2]) < 1:
        raise ImageError("the image is empty (zero width or height)")
    if max(arr.shape[:2]) > MAX_SIDE:
        raise ImageError(f"image is {arr.shape[1]}x{arr.shape[0]}; the largest accepted side is {MAX_SIDE} px")
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if arr.dtype == np.uint16:
        return (arr >> 8).astype(np.uint8)
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ImageError(f"unsupported pixel type {arr.dtype}")
    a = arr.astype(np.float64)
    if not np.isfinite(a).all():
        raise ImageError("the image contains NaN or infinite values")
    lo, hi = float(a.min()), float(a.max())
    if np.issubdtype(arr.dtype, np.floating) and lo >= 0 and hi <= 1:
        a = a * 255.0
    elif lo < 0 or hi > 255:  # some other range: stretch it
        a = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def _read_file(path: Path) -> np.ndarray:
    if not path.is_file():
        raise ImageError(f"no such image file: {path}")
    return _decode(np.fromfile(str(path), dtype=np.uint8), path.name, path)


def _read_data_url(url: str) -> np.ndarray:
    """An image sent inline as "data:image/<type>;base64,<bytes>" (the Draw tab's sketchpad sends PNGs so),
    decoded as a file with those bytes is."""
    head, _, body = url.partition(",")
    if not (head.startswith("data:image/") and head.endswith(";base64")):
        raise ImageError("expected an image file, an array or a data URL (data:image/png;base64,...)")
    if len(body) > MAX_DATA_URL:
        raise ImageError(f"the image sent inline is over {MAX_DATA_URL * 3 // 4 // 2**20} MB; send it as a file")
    try:
        data = base64.b64decode(body, validate=True)
    except binascii.Error:
        raise ImageError("the image sent inline is not valid base64") from None
    return _decode(np.frombuffer(data, np.uint8), "the image sent inline", io.BytesIO(data))


def _decode(data: np.ndarray, name: str, source: Path | io.BytesIO) -> np.ndarray:
    """Encoded image bytes (source: the same, for reading the header) -> uint8 array, RGB(A) channel order."""
    hw = _header_size(source, name)
    if hw is not None and max(hw) > MAX_SIDE:  # before decoding: a small PNG can hold a gigapixel
        raise ImageError(f"image is {hw[1]}x{hw[0]}; the largest accepted side is {MAX_SIDE} px")
    try:
        arr = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except cv2.error:
        arr = None
    if arr is None:
        raise ImageError(f"{name} is not an image NextNum can read (PNG, JPEG, BMP, WebP, TIFF)")
    if arr.ndim == 3:  # OpenCV decodes to BGR(A)
        arr = cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA if arr.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    return arr


def _header_size(source: Path | io.BytesIO, name: str) -> tuple[int, int] | None:
    """(height, width) from the image's header without decoding it; None if PIL cannot tell."""
    from PIL import Image
    try:
        with Image.open(source) as im:  # reads the header only
            return im.size[::-1]
    except Image.DecompressionBombError:  # over twice PIL's pixel limit, so over MAX_SIDE squared
        raise ImageError(f"{name} is over {2 * Image.MAX_IMAGE_PIXELS:,} pixels; "
                         f"the largest accepted side is {MAX_SIDE} px") from None
    except Exception:  # not something PIL reads: OpenCV decides below
        return None
