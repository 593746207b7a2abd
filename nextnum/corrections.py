"""Corrections: images NextNum misread, saved with the right number, to score and fine-tune on.

A corrections folder has exactly the layout `python -m nextnum.evaluate --images DIR` reads: image files
plus labels.json ({"file.png": "4072", ...}). A file is named by its content, so the same image saved
again with another number replaces the number. Every write is atomic (atomic.write_atomic): an image is
written whole and only then listed in labels.json, which is itself replaced whole. A process killed at
any point leaves a valid labels.json that lists only complete images. Writers in one process take a
lock, writers in several processes a file lock on DIR/.lock (filelock: any OS).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import logging
import re
import threading
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np
from filelock import FileLock

from .atomic import write_atomic
from .inputs import ImageError, decode

log = logging.getLogger("nextnum.corrections")
LABELS = "labels.json"
MAX_BYTES = 5 * 1024 * 1024  # the app's upload limit
MAX_CORRECTIONS = 10_000
HELD_OUT = 5  # one correction in HELD_OUT is never trained on (chosen by its file name's hash)
NAME_HEX = 16  # hex digits of the content's SHA-1 in a file's name
LABEL_RE = re.compile(r"[0-9]{1,5}")
# what a saved file may be: the formats read_image accepts, by their first bytes
MAGIC = {b"\x89PNG": ".png", b"\xff\xd8\xff": ".jpg", b"BM": ".bmp", b"RIFF": ".webp", b"GIF8": ".gif"}

_locks: dict[Path, threading.Lock] = {}
_locks_guard = threading.Lock()


class CorrectionError(ValueError):
    """A correction that cannot be saved: a bad label, a bad or too large image, or a full folder."""


def check_label(text: Any) -> str:
    """The digits of a correction, stripped; CorrectionError unless they are 1-5 digits 0-9."""
    s = str(text if text is not None else "").strip()
    if not LABEL_RE.fullmatch(s):
        raise CorrectionError(f"a correction is the number as 1 to 5 digits 0-9 (like 4072), not {s[:20]!r}")
    return s


def encode(image: Any) -> tuple[bytes, str]:
    """(bytes, extension) of the image as it was read: a file's own bytes, an encoded image's bytes or a data
    URL's (the Draw tab keeps its drawing so), unchanged, or an array as PNG (lossless). CorrectionError for
    anything else, for more than MAX_BYTES, and for a file that NextNum's decoder refuses (its header's size
    is checked before it is decoded, as for a reading)."""
    if isinstance(image, str) and image.startswith("data:image/") and ";base64," in image:
        try:
            data = base64.b64decode(image.partition(",")[2], validate=True)
        except binascii.Error:
            raise CorrectionError("the image sent inline is not valid base64") from None
    elif isinstance(image, bytes):
        data = image
    elif isinstance(image, (str, Path)):
        p = Path(image)
        if not p.is_file():
            raise CorrectionError(f"no image file at {p.name}")
        if p.stat().st_size > MAX_BYTES:
            raise CorrectionError(f"the image is {p.stat().st_size / 2**20:.1f} MB; corrections take at most 5 MB")
        data = p.read_bytes()
    elif isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim in (2, 3) and image.size:
        rgb = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA if image.shape[2] == 4
                                                          else cv2.COLOR_RGB2BGR)
        ok, buf = cv2.imencode(".png", rgb)
        if not ok:
            raise CorrectionError("the image could not be encoded")
        data = buf.tobytes()
    else:
        raise CorrectionError("there is no image to save: draw, upload or capture one first")
    ext = next((e for magic, e in MAGIC.items() if data.startswith(magic)), None)
    if ext is None:
        raise CorrectionError("that file is not an image NextNum can read (PNG, JPEG, BMP, WebP or GIF)")
    try:
        decode(io.BytesIO(data), "the image")
    except ImageError as e:
        raise CorrectionError(str(e)) from None
    if len(data) > MAX_BYTES:
        raise CorrectionError(f"the image is {len(data) / 2**20:.1f} MB; corrections take at most 5 MB")
    return data, ext


def is_held_out(name: str) -> bool:
    """Whether a correction is kept out of training, fixed by its file name (so by its content)."""
    return int(hashlib.sha1(name.encode()).hexdigest(), 16) % HELD_OUT == 0


@dataclass
class Saved:
    name: str
    label: str
    count: int  # corrections in the folder, this one included


class Corrections:
    """A corrections folder: save, list, score, zip. max_bytes: the most its images may take on disk (None:
    no limit but MAX_CORRECTIONS)."""

    def __init__(self, root: str | Path, max_bytes: int | None = None) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes

    def labels(self) -> dict[str, str]:
        """file -> digits, oldest first; {} for a folder with no corrections yet."""
        try:
            d = json.loads((self.root / LABELS).read_text())
        except FileNotFoundError:
            return {}
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CorrectionError(f"{self.root / LABELS} is not valid JSON ({e})") from None
        return {str(k): str(v) for k, v in d.items()} if isinstance(d, dict) else {}

    def __len__(self) -> int:
        return len(self.labels())

    def save(self, image: Any, text: Any) -> Saved:
        """Save one correction atomically; CorrectionError (nothing saved) for a bad label or image, or a full
        folder. An image saved before (the same bytes) keeps one entry, with the newest number."""
        label = check_label(text)
        data, ext = encode(image)
        self.root.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha1(data).hexdigest()
        name = f"{digest[:NAME_HEX]}{ext}"
        with self._locked():
            labels = self.labels()
            again = [k for k in labels if k == name or k.startswith(f"{digest[:12]}-")]  # also older "<hash>-<label>"
            if not again:
                self._check_room(labels, len(data))
            for k in again:
                labels.pop(k)
            if not (self.root / name).exists():
                write_atomic(self.root / name, data)
            labels[name] = label  # the newest label wins, listed last
            write_atomic(self.root / LABELS, (json.dumps(labels, indent=1) + "\n").encode())
            for k in again:
                if k != name:
                    (self.root / k).unlink(missing_ok=True)
        return Saved(name, label, len(labels))

    def _check_room(self, labels: dict[str, str], size: int) -> None:
        if len(labels) >= MAX_CORRECTIONS:
            raise CorrectionError(f"the corrections folder is full ({MAX_CORRECTIONS:,}); download and clear it first")
        if self.max_bytes is not None:
            used = sum((self.root / k).stat().st_size for k in labels if (self.root / k).is_file())
            if used + size > self.max_bytes:
                raise CorrectionError(f"the corrections folder is full ({self.max_bytes / 2**20:.0f} MB); "
                                      "thank you all the same")

    def latest(self, n: int = 12) -> list[tuple[Path, str]]:
        """The n newest corrections, newest first: (image path, digits)."""
        items = list(self.labels().items())[-n:][::-1]
        return [(self.root / k, v) for k, v in items]

    def split(self) -> tuple[dict[str, str], dict[str, str]]:
        """(trained on, held out): a fixed part (about 1 in HELD_OUT) is never trained on."""
        labels = self.labels()
        held = {k: v for k, v in labels.items() if is_held_out(k)}
        return {k: v for k, v in labels.items() if k not in held}, held

    def zip_to(self, path: str | Path) -> None:
        """Every listed image and labels.json as one zip file at path, in the evaluate --images layout; written
        as it goes, so the zip is never held in memory."""
        labels = {k: v for k, v in self.labels().items() if (self.root / k).is_file()}
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:  # images are compressed already
            for name in labels:
                z.write(self.root / name, f"corrections/{name}")
            z.writestr(f"corrections/{LABELS}", json.dumps(labels, indent=1) + "\n")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with _locks_guard:
            lock = _locks.setdefault(self.root.resolve(), threading.Lock())
        with lock, FileLock(self.root / ".lock"):
            yield
