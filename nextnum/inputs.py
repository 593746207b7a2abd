"""Any image input (file, data URL, array, PIL image, sketchpad value) as the uint8 array every reader reads.

Every reader (the app, `python -m nextnum.read`, `evaluate --images`, Predictor.predict) goes
through `read_image`, so one file reads the same whichever way it comes in. Encoded images (files and
data URLs) are decoded by one decoder, `decode`: the size in the header is checked against a pixel and
memory budget before any pixel is decoded, EXIF orientation is applied, and the first frame of an
animation or the first page of a multi-page file is read.
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
# and larger than this in all (a 12 MP phone photo fits). PIL keeps at most 4 bytes a pixel whatever the
# file's sample type (float TIFF, 16-bit PNG: one band of 4 or 2 bytes), so a decode takes at most 64 MB
MAX_PIXELS = 16_000_000
MAX_FILE = 64 * 2**20  # bytes of an image file: larger ones are refused before they are read
# Larger images are read shrunk to this (longer side). With explain=True every map is drawn at the size
# of the image read: a 10,000 px upload took 9 s and 2.8 GB at full size, a fraction of a second shrunk,
# and the reading hardly changes (the digits are looked for on a copy of at most 800 px anyway).
READ_SIDE = 2000
MAX_DATA_URL = 8 * 2**20  # characters of base64 (6 MB of image file): larger images come as files
FORMATS = "PNG, JPEG, BMP, WebP, GIF or TIFF"
LIMITS = f"NextNum reads images of at most {MAX_PIXELS / 1e6:.0f} megapixels; the largest accepted side is {MAX_SIDE} px"
NOT_A_DRAWING = "expected a drawing sent as a data URL (data:image/png;base64,...)"


class ImageError(ValueError):
    """An input that is not an image NextNum can read (with a message meant for the user)."""


def read_image(image: Any) -> tuple[np.ndarray, float]:
    """Any supported input (see to_array) -> (uint8 array no larger than READ_SIDE, zoom), where zoom is
    the given image's pixels per pixel of the array (1.0 unless it was shrunk)."""
    arr, width = _load(image)
    small = downscale(arr, READ_SIDE)
    return small, width / small.shape[1]


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
    ({"composite": ...}). A large JPEG may come back decoded at 1/2, 1/4 or 1/8 of its size (never
    below READ_SIDE): read_image accounts for that.
    """
    return _load(image)[0]


def from_data_url(value: Any) -> np.ndarray:
    """An image a web client sent inline (the Draw tab's value) -> uint8 array, as to_array. Anything but a
    data URL string is refused with one message, whatever it names: a client never makes the server read
    one of its own files."""
    if not isinstance(value, str) or not value.startswith("data:"):
        raise ImageError(NOT_A_DRAWING)
    return _load(value)[0]


def _load(image: Any) -> tuple[np.ndarray, int]:
    """(to_array's array, width of the image as given: larger than the array's when decoded reduced)."""
    if isinstance(image, dict):
        if "composite" not in image:
            raise ImageError("expected a sketchpad value with a 'composite' image")
        image = image["composite"]
        if image is None:
            return np.full((8, 8), 255, np.uint8), 8  # an untouched sketchpad: blank
    if image is None:
        raise ImageError("no image was given")
    width = None
    if isinstance(image, str) and image.startswith("data:"):
        image, width = _read_data_url(image)
    elif isinstance(image, (str, Path)):
        image, width = _read_file(Path(image))
    elif hasattr(image, "convert") and hasattr(image, "mode"):  # PIL
        _check_size(image.size, image.mode, "the image")
        image = _pil_array(image)
    arr = _as_uint8(image)
    return arr, width or arr.shape[1]


def _as_uint8(image: Any) -> np.ndarray:
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
        raise ImageError(f"the image is {arr.shape[1]}x{arr.shape[0]} px; the largest accepted side is {MAX_SIDE} px")
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if arr.dtype.kind == "u" and arr.dtype.itemsize == 2:  # 16-bit, either byte order
        return (arr.astype(np.uint16) >> 8).astype(np.uint8)
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ImageError(f"unsupported pixel type {arr.dtype}")
    a = arr.astype(np.float32)  # float32, in place below: a float image's copies are its largest cost
    if not np.isfinite(a).all():
        raise ImageError("the image contains NaN or infinite values")
    lo, hi = float(a.min()), float(a.max())
    if np.issubdtype(arr.dtype, np.floating) and lo >= 0 and hi <= 1:
        a *= 255.0
    elif lo < 0 or hi > 255:  # some other range: stretch it
        a -= lo
        a *= 255.0 / (hi - lo) if hi > lo else 0.0
    np.rint(a, out=a)
    return np.clip(a, 0, 255, out=a).astype(np.uint8)


def _read_file(path: Path) -> tuple[np.ndarray, int]:
    if not path.is_file():
        raise ImageError(f"no such image file: {path.name}")
    size = path.stat().st_size
    if size > MAX_FILE:
        raise ImageError(f"{path.name} is {size / 2**20:.0f} MB; NextNum reads image files of at most "
                         f"{MAX_FILE // 2**20} MB")
    with open(path, "rb") as f:  # PIL reads the header first and only then the pixels it needs
        return decode(f, path.name)


def _read_data_url(url: str) -> tuple[np.ndarray, int]:
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
    return decode(io.BytesIO(data), "the image sent inline")


def decode(source: Any, name: str) -> tuple[np.ndarray, int]:
    """An encoded image (a binary file object) -> (array in RGB(A) or grey, its width as given).

    Only what PIL can read the header of is decoded, and only once that header passes _check_size; a
    JPEG larger than READ_SIDE is decoded at a reduced scale (PIL's draft), since it is read shrunk anyway."""
    from PIL import Image, ImageOps
    try:
        im = Image.open(source)
        im.seek(0)  # an animation's first frame, a multi-page file's first page
    except Image.DecompressionBombError:  # over twice PIL's own pixel limit: far over ours
        raise ImageError(f"{name} is over {2 * Image.MAX_IMAGE_PIXELS:,} pixels: {LIMITS}") from None
    except Exception:  # not an image, a truncated header, text chunks over PIL's limits, a PIL bomb
        raise ImageError(f"{name} is not an image NextNum can read ({FORMATS})") from None
    with im:
        _check_size(im.size, im.mode, name)
        try:
            w, h = im.size
            if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # EXIF says: turned a quarter
                w, h = h, w
            if im.format == "JPEG" and max(w, h) > READ_SIDE:
                f = READ_SIDE / max(w, h)
                im.draft(im.mode, (max(1, int(im.size[0] * f)), max(1, int(im.size[1] * f))))
            im.load()
            return _pil_array(ImageOps.exif_transpose(im)), w
        except Exception:  # broken pixel data, a truncated file
            raise ImageError(f"{name} is not an image NextNum can read ({FORMATS})") from None


def _check_size(size: tuple[int, int], mode: str, name: str) -> None:
    """Refuse an image whose header's size is over MAX_SIDE or MAX_PIXELS, before decoding."""
    w, h = size
    if max(w, h) > MAX_SIDE or w * h > MAX_PIXELS:
        raise ImageError(f"{name} is {w}x{h} px ({mode}): {LIMITS}")


def _pil_array(im: Any) -> np.ndarray:
    """A PIL image's pixels in a mode _as_uint8 takes (grey, RGB, RGBA, 16-bit, int or float)."""
    if im.mode not in ("1", "L", "RGB", "RGBA", "I;16", "I;16L", "I;16B", "I", "F"):
        im = im.convert("RGBA" if "A" in im.mode or "transparency" in im.info else "RGB")
    return np.asarray(im)
