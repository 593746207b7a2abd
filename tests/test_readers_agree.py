"""Every reader reads a file alike: the app's /predict, `python -m nextnum.read --json`,
`python -m nextnum.evaluate --images` and Predictor.predict(path) give the same digits and the same
confidence (within 0.01) with the shipped model, on a 4000x3000 JPEG photo (read shrunk to READ_SIDE
by all of them) and on sketchpad PNGs (transparent, black ink)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from appserver import shipped_available
from drawings import thin_one_far_seven, typed
from nextnum.inputs import READ_SIDE
from conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not shipped_available(), reason="needs checkpoints/nextnum")]
TOLERANCE = 0.01


def photo(text: str = "4072", hw: tuple[int, int] = (3000, 4000), seed: int = 0) -> np.ndarray:
    """A phone photo of a number written large on paper: uneven light, sensor noise, BGR."""
    rng = np.random.default_rng(seed)
    ink = typed(text, hw, org=(450, 2000), scale=28.0, thickness=110)
    light = np.linspace(215, 170, hw[1], dtype=np.float32)[None, :] * np.linspace(1.0, 0.9, hw[0])[:, None]
    grey = np.where(ink < 128, 45.0, light) + rng.normal(0, 6, hw)
    bgr = np.clip(np.dstack([grey * 0.97, grey, grey * 1.03]), 0, 255).astype(np.uint8)
    return cv2.GaussianBlur(bgr, (5, 5), 0)


def sketch_layer(gray: np.ndarray) -> np.ndarray:
    """A sketchpad layer of a drawing: black ink whose alpha is the ink's darkness, transparent elsewhere."""
    out = np.zeros((*gray.shape, 4), np.uint8)
    out[..., 3] = 255 - gray
    return out


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("readers")
    assert cv2.imwrite(str(d / "photo.jpg"), photo(), [cv2.IMWRITE_JPEG_QUALITY, 90])
    cv2.imwrite(str(d / "thin-one-far-seven.png"), cv2.cvtColor(thin_one_far_seven(), cv2.COLOR_RGBA2BGRA))
    cv2.imwrite(str(d / "sketch-385.png"), sketch_layer(typed("385")))
    shutil.copy(ROOT / "examples" / "2026.png", d / "example-2026.png")
    labels = {"photo.jpg": "4072", "thin-one-far-seven.png": "17", "sketch-385.png": "385", "example-2026.png": "2026"}
    (d / "labels.json").write_text(json.dumps(labels))
    return d


@pytest.fixture(scope="module")
def predictor():
    from nextnum import Predictor
    return Predictor.load()


@pytest.fixture(scope="module")
def readings(folder, predictor):
    """name -> (text, confidence, box) from the Predictor, explain=False as the command lines read."""
    out = {}
    for name in json.loads((folder / "labels.json").read_text()):
        p = predictor.predict(folder / name, explain=False)
        out[name] = (p.text, p.confidence, p.as_dict()["box"])
    return out


def agree(name: str, text: str, confidence: float, readings: dict) -> None:
    want, conf, _ = readings[name]
    assert text == want, (name, text, want)
    assert abs(confidence - conf) <= TOLERANCE, (name, confidence, conf)


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_the_photo_is_read_shrunk_and_reported_in_its_own_pixels(folder, predictor, readings):
    p = predictor.predict(folder / "photo.jpg", explain=True)
    assert max(p.geometry.src_hw) == max(p.stages["original"].shape[:2]) == READ_SIDE and p.geometry.zoom == 2.0
    assert p.text == readings["photo.jpg"][0] and p.text.isdigit()
    assert abs(p.confidence - readings["photo.jpg"][1]) <= TOLERANCE  # with and without the pictures
    x0, y0, x1, y1 = readings["photo.jpg"][2]
    assert 300 < x0 < x1 < 4000 and 900 < y0 < y1 < 2300, readings["photo.jpg"][2]  # the 4000x3000 photo's pixels
    small = predictor.predict(folder / "sketch-385.png", explain=False)
    assert small.geometry.zoom == 1.0 and small.geometry.src_hw == (300, 900)


def test_the_predict_command_line_reads_as_the_predictor(folder, readings):
    r = run("nextnum.read", "--json", *(str(folder / n) for n in readings))
    assert r.returncode == 0, r.stderr
    for line in r.stdout.strip().splitlines():
        got = json.loads(line)
        name = got["file"].rsplit("/", 1)[-1]
        agree(name, got["text"], got["confidence"], readings)
        assert got["box"] == readings[name][2], name


def test_evaluate_images_reads_as_the_predictor(folder, readings):
    r = run("nextnum.evaluate", "--images", str(folder), "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert {row["file"] for row in res["readings"]} == set(readings)
    for row in res["readings"]:
        agree(row["file"], row["pred"], row["confidence"], readings)


def test_the_app_reads_as_the_predictor(folder, readings, app_server):
    gradio_client = pytest.importorskip("gradio_client")
    assert app_server.start_with == "nextnum"  # a new client reads with the shipped model
    client = gradio_client.Client(app_server.url, verbose=False, download_files=False)
    for name in readings:
        out = client.predict(gradio_client.handle_file(str(folder / name)), api_name="/predict")
        info = out[-1]
        assert out[0] == info["text"]
        agree(name, info["text"], info["confidence"], readings)
        assert info["box"] == readings[name][2], name
