"""Bad input through the Python API: every input a public demo gets either reads, or comes back empty
with a message, or raises ImageError with a message; nothing else escapes, and the Predictor keeps
reading afterwards. Also: the package logs instead of printing. (test_app_bad_input.py sends the
same inputs through the running app.)"""
from __future__ import annotations

import ast
import logging
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from drawings import typed
from nextnum import NextNum, Predictor
from nextnum import preprocess as P
from nextnum.config import EOS
from nextnum.predictor import LIMIT_NOTE
from nextnum.web.views import reading_html
from nextnum.inputs import MAX_SIDE, READ_SIDE, ImageError
from conftest import ROOT



def png_claiming(w: int, h: int) -> bytes:
    """A PNG whose header says w x h but whose pixel data is a few bytes: what a decompression bomb's
    header looks like, without writing gigabytes to make one."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def write_bad_files(d: Path) -> dict[str, Path]:
    """The bad files of the issue, shared with the app tests."""
    ref = typed()
    png = cv2.imencode(".png", ref)[1].tobytes()
    files = {}

    def put(name: str, data: bytes) -> None:
        files[name] = d / name
        files[name].write_bytes(data)
    put("digits.png", png)
    put("truncated.png", png[:len(png) // 2])
    flipped = bytearray(png)
    flipped[len(png) // 2:len(png) // 2 + 64] = bytes(255 - b for b in flipped[len(png) // 2:len(png) // 2 + 64])
    put("corrupt-idat.png", bytes(flipped))
    put("header-only.png", png[:33])
    put("text.png", b"this is a text file, renamed\n")
    put("empty.png", b"")
    sh = Path("/bin/sh")
    put("program.png", sh.resolve().read_bytes()[:4096] if sh.exists() else b"\x7fELF" + bytes(4092))
    put("huge-header.png", png_claiming(12_000, 100))  # over MAX_SIDE
    put("bomb.png", png_claiming(30_000, 30_000))  # 900 Mpx: over PIL's own limit as well
    put("16bit.png", cv2.imencode(".png", ref.astype(np.uint16) * 257)[1].tobytes())
    put("16bit-rgba.png", cv2.imencode(".png", np.dstack([ref.astype(np.uint16) * 257] * 3
                                                         + [np.full(ref.shape, 65535, np.uint16)]))[1].tobytes())
    put("float.tiff", cv2.imencode(".tiff", ref.astype(np.float32) / 255)[1].tobytes())
    nan = ref.astype(np.float32) / 255
    nan[0, 0] = np.nan
    put("nan.tiff", cv2.imencode(".tiff", nan)[1].tobytes())
    return files


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    return write_bad_files(tmp_path_factory.mktemp("bad"))


@pytest.fixture(scope="module")
def reference(predictor):
    return predictor.predict(typed(), explain=False)


def dot(base: np.ndarray | None = None, at: tuple[int, int] = (450, 150), r: int = 7) -> np.ndarray:
    img = np.full((300, 900), 255, np.uint8) if base is None else base.copy()
    cv2.circle(img, at, r, 0, -1)  # one tap of the 14 px sketchpad brush
    return img


def sketch(img):
    return {"background": None, "layers": [], "composite": img}


def wide_or_tall(tall: bool) -> np.ndarray:
    img = np.full((30, 10_000), 255, np.uint8)
    cv2.putText(img, "7", (5_000, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 0, 2)
    return np.ascontiguousarray(img.T) if tall else img


transparent = np.zeros((300, 900, 4), np.uint8)
transparent_white = np.dstack([np.full((300, 900, 3), 255, np.uint8), np.zeros((300, 900), np.uint8)])

BLANK = {  # name -> (input, start of the message)
    "empty sketch": (sketch(None), "no digits found: the image looks blank"),
    "all white": (np.full((300, 900), 255, np.uint8), "no digits found: the image looks blank"),
    "all black": (np.zeros((300, 900), np.uint8), "no digits found: the image looks blank"),
    "one pixel": (np.zeros((1, 1), np.uint8), "no digits found: the image looks blank"),
    "one pixel RGB": (np.full((1, 1, 3), 40, np.uint8), "no digits found: the image looks blank"),
    "10000x10000 white": (np.full((10_000, 10_000), 255, np.uint8), "no digits found: the image looks blank"),
    "RGBA fully transparent (black)": (transparent, "no digits found: the image looks blank"),
    "RGBA fully transparent (white)": (transparent_white, "no digits found: the image looks blank"),
    "sketch of one stray dot": (sketch(dot()), "no digits found: only a dot"),
    "big blot": (dot(r=60), "no digits found: only a dot"),
    "photo of one dot": (np.dstack([dot()] * 3) // 2 + 100, "no digits found"),  # faint: blank, or a dot
}


@pytest.mark.parametrize("name", list(BLANK))
def test_blank_input_reads_nothing_and_says_why(predictor, name):
    image, message = BLANK[name]
    pred = predictor.predict(image, explain=True)
    assert pred.text == "" and pred.digits == [] and pred.attention is None
    assert pred.message.startswith(message), pred.message


ERRORS = {  # name -> (input or file name, words the message must contain)
    "NaN pixel": (np.where(typed() > 0, 1.0, np.nan), "NaN"),
    "+inf": (np.full((20, 20), np.inf), "infinite"),
    "-inf pixel": (np.where(typed() > 0, 0.0, -np.inf), "infinite"),
    "float16 NaN": (np.full((20, 20), np.nan, np.float16), "NaN"),
    "NaN in a float TIFF": ("nan.tiff", "NaN"),
    "webcam frame None": (None, "no image was given"),
    "side over the limit": (np.zeros((2, MAX_SIDE + 1), np.uint8), "largest accepted side"),
    "corrupt PNG (truncated)": ("truncated.png", "not an image NextNum can read"),
    "corrupt PNG (bad pixel data)": ("corrupt-idat.png", "not an image NextNum can read"),
    "corrupt PNG (header only)": ("header-only.png", "not an image NextNum can read"),
    "text file renamed .png": ("text.png", "not an image NextNum can read"),
    "empty file": ("empty.png", "not an image NextNum can read"),
    "a program, named .png": ("program.png", "not an image NextNum can read"),
    "PNG header over the side limit": ("huge-header.png", "largest accepted side"),
    "decompression bomb": ("bomb.png", "largest accepted side"),
    "a folder": (".", "no such image file"),
    "ragged list": ([[0, 1], [2]], "not an image"),
    "complex pixels": (np.zeros((4, 4), np.complex64), "unsupported pixel type"),
    "string pixels": (np.array([["a", "b"]]), "unsupported pixel type"),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_unreadable_input_raises_image_error_with_a_message(predictor, files, name, monkeypatch):
    image, words = ERRORS[name]
    if isinstance(image, str):
        image = files[image] if image in files else Path(image)
    if name in ("PNG header over the side limit", "decompression bomb"):  # refused from the header alone
        monkeypatch.setattr(P.cv2, "imdecode", lambda *a: pytest.fail("decoded a file whose header is too big"))
    with pytest.raises(ImageError, match=words) as e:
        predictor.predict(image, explain=True)
    assert len(str(e.value)) > 15


def test_other_bit_depths_and_formats_read_like_the_8bit_image(predictor, files, reference):
    ref = typed()
    kinds = {
        "16-bit PNG": files["16bit.png"], "16-bit RGBA PNG": files["16bit-rgba.png"],
        "float32 TIFF": files["float.tiff"], "float16 array": (ref / 255).astype(np.float16),
        "float in -1..1": ref / 127.5 - 1, "int32 0..255000": ref.astype(np.int32) * 1000,
        "PIL palette": Image.fromarray(ref).convert("P"), "PIL LA": Image.fromarray(ref).convert("LA"),
        "PIL CMYK": Image.fromarray(ref).convert("CMYK"), "PIL I;16": Image.fromarray(ref.astype(np.uint16) * 257),
        "sketch RGBA": sketch(np.dstack([ref] * 3 + [np.full_like(ref, 255)])),
    }
    for name, image in kinds.items():
        pred = predictor.predict(image, explain=False)
        assert pred.text == reference.text, name
        np.testing.assert_allclose(pred.canvas, reference.canvas, atol=2 / 255, err_msg=name)


def test_huge_wide_and_tall_images(predictor):
    big = np.full((10_000, 10_000), 255, np.uint8)
    big[4_000:7_000, 500:9_500] = cv2.resize(typed(), (9_000, 3_000))
    pred = predictor.predict(big, explain=False)
    assert pred.text.isdigit()
    for tall in (False, True):  # the 7 is 20 px in 10,000: too small to read, or read; never an exception
        pred = predictor.predict(wide_or_tall(tall), explain=True)
        assert pred.text.isdigit() or pred.message.startswith("no digits found"), (tall, pred.message)
    # every reader reads it shrunk to READ_SIDE (explain=True draws every map at the size of the image read:
    # 9 s and 2.8 GB at full size); the time is bench/read_latency.py's to measure, not a test's
    pred = predictor.predict(big, explain=True)
    assert pred.text.isdigit()
    assert max(pred.geometry.src_hw) == max(pred.stages["original"].shape[:2]) == READ_SIDE
    assert max(pred.as_dict()["box"]) > READ_SIDE  # reported in the pixels of the image as given


def test_stray_dot_beside_the_digits_is_ignored(predictor, reference):
    for at in ((850, 30), (60, 280)):  # a brush tap in a corner
        pred = predictor.predict(sketch(dot(typed(), at)), explain=False)
        assert pred.text == reference.text
        np.testing.assert_allclose(pred.canvas, reference.canvas, atol=1e-6)


def test_more_than_five_digits_reads_five_and_says_so(predictor):
    cfg = predictor.config
    seven = typed("1234567", org=(40, 200), scale=3.5)
    never_stops, always_stops = NextNum(cfg.model), NextNum(cfg.model)
    with torch.no_grad():  # a model that never chooses EOS runs into the decoder's limit; one that always does, not
        never_stops.head.bias[EOS] = -1e4
        always_stops.head.bias[EOS] = 1e4
    pred = Predictor(never_stops, cfg).predict(seven)
    assert len(pred.text) == cfg.model.max_digits == 5 and pred.message == LIMIT_NOTE.format(n=5)
    assert "most NextNum reads" in reading_html(pred)  # shown under the digits
    pred = Predictor(always_stops, cfg).predict(seven)
    assert len(pred.text) == 1 and pred.message == ""
    pred = predictor.predict(seven, explain=False)
    assert len(pred.text) <= 5 and (LIMIT_NOTE.format(n=5) in pred.message) == (len(pred.text) == 5)


def test_a_valid_image_still_reads_the_same_after_all_that(predictor, reference):
    pred = predictor.predict(typed(), explain=False)
    assert pred.text == reference.text and pred.confidence == pytest.approx(reference.confidence, abs=1e-6)


def test_each_reading_logs_its_timings(predictor, caplog):
    with caplog.at_level(logging.DEBUG, logger="nextnum.predictor"):
        predictor.predict(typed(), explain=False)
    assert any(r.name == "nextnum.predictor" and " ms" in r.getMessage() for r in caplog.records)


# Prints are for the command lines (`python -m nextnum.<tool>` main()); the library logs.
PRINT_ALLOWED = {("sweep.py", "run")}  # the sweep's per-variant result line, only reached from its main()


def test_the_package_logs_instead_of_printing():
    found = []
    for f in sorted((ROOT / "nextnum").rglob("*.py")):
        tree = ast.parse(f.read_text())
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and fn.name != "main":
                for node in ast.walk(fn):
                    if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print" \
                            and (f.name, fn.name) not in PRINT_ALLOWED:
                        found.append(f"{f.name}:{node.lineno} in {fn.name}()")
        top = [n for n in tree.body if isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)
               and getattr(n.value.func, "id", None) == "print"]
        found += [f"{f.name}:{n.lineno} at module level" for n in top]
    assert not found, found
