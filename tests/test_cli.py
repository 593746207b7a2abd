"""The command lines: `python -m nextnum.read` and `python -m nextnum.evaluate --images DIR --json`
on a small labelled folder of MNIST handwriting drawn large, as on a sketchpad."""
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from nextnum import checkpoint, evaluate
from nextnum import read
from nextnum.config import Config
from nextnum.model import NextNum
from conftest import ROOT, SHIPPED

HAS_SHIPPED = (SHIPPED / "model.safetensors").exists()
LABELS = ["7", "42", "305", "1896", "0", "63", "518", "2749", "90", "4"]
# The shipped model reads all ten of these (sequence accuracy 1.0, measured with `python -m nextnum.evaluate
# --images` on this folder); the bar allows one miss.
SHIPPED_ACCURACY = 1.0 - 0.1


def sketch(text: str, digits: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """MNIST digits of `text`, 6x as large, black on a white 900x300 sketchpad."""
    img = np.full((300, 900), 255, np.uint8)
    x = 60
    for ch in text:
        d = digits[rng.choice(np.flatnonzero(labels == int(ch)))]
        big = cv2.resize(d, None, fx=6, fy=6, interpolation=cv2.INTER_CUBIC)  # 168 x 168
        y = 60 + int(rng.integers(-10, 10))
        img[y:y + 168, x:x + 168] = np.minimum(img[y:y + 168, x:x + 168], 255 - big)
        x += 140 + int(rng.integers(0, 40))
    return img


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("labelled")
    with np.load(ROOT / "tests" / "fixtures" / "mnist_sample.npz") as f:
        digits, labels = f["images"], f["labels"]
    rng = np.random.default_rng(0)
    for i, text in enumerate(LABELS):
        cv2.imwrite(str(d / f"{i:02d}.png"), sketch(text, digits, labels, rng))
    (d / "labels.json").write_text(json.dumps({f"{i:02d}.png": t for i, t in enumerate(LABELS)}))
    return d


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """The shipped model when there is one, else a randomly initialised one saved like it."""
    if HAS_SHIPPED:
        return SHIPPED
    torch.manual_seed(0)
    cfg = Config.load(ROOT / "configs" / "default.json")
    path = tmp_path_factory.mktemp("ck") / "random"
    checkpoint.save(path, NextNum(cfg.model).eval(), cfg)
    return path


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_predict_cli_prints_one_json_object_per_image(folder, ckpt, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    r = run("nextnum.read", str(folder / "01.png"), str(bad), "--json", "--checkpoint", str(ckpt))
    assert r.returncode == 0, r.stderr
    good, err = [json.loads(line) for line in r.stdout.strip().splitlines()]
    assert good["file"].endswith("01.png") and good["text"].isdigit()
    assert {"confidence", "digits", "message", "timings_ms"} <= set(good)
    assert err["file"].endswith("notes.png") and "not an image" in err["error"]


def test_predict_cli_saves_the_pictures(folder, ckpt, tmp_path, capsys):
    assert read.main([str(folder / "02.png"), "--save-viz", str(tmp_path / "viz"), "--checkpoint", str(ckpt)]) == 0
    names = {p.name for p in (tmp_path / "viz").iterdir()}
    assert {"02.stage0_original.png", "02.stage5_canvas.png", "02.combined.png", "02.rollout.png"} <= names
    assert any(n.startswith("02.digit0_") for n in names)
    assert "02.png:" in capsys.readouterr().out


def test_predict_cli_exits_1_when_nothing_reads(folder, ckpt, tmp_path, capsys):
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((300, 900), 255, np.uint8))
    assert read.main([str(blank), "--checkpoint", str(ckpt)]) == 1  # read fine, but no digits: like grep
    out, err = capsys.readouterr()
    assert "blank.png: (none)" in out and "no digits found: the image looks blank" in out
    assert err.strip() == "nothing read: no digits found in the image"
    assert read.main([str(blank), str(tmp_path / "missing.png"), "--checkpoint", str(ckpt)]) == 1
    assert "no digits found in any of the 2 images" in capsys.readouterr().err
    assert read.main([str(blank), str(folder / "02.png"), "--checkpoint", str(ckpt)]) == 0  # one image read
    assert capsys.readouterr().err == ""
    assert read.main([str(folder / "02.png"), "--checkpoint", str(tmp_path / "no-such-ck")]) == 2
    assert "exit status: 0 digits were read" in " ".join(run("nextnum.read", "--help").stdout.split())


def test_evaluate_images_json(folder, ckpt):
    r = run("nextnum.evaluate", "--images", str(folder), "--json", "--checkpoint", str(ckpt))
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert {"sequence_accuracy", "digit_accuracy", "by_length", "samples", "checkpoint"} <= set(res)
    assert res["samples"] == len(LABELS) and set(res["by_length"]) == {"1", "2", "3", "4"}
    assert 0 <= res["sequence_accuracy"] <= 1 and 0 <= res["digit_accuracy"] <= 1
    if HAS_SHIPPED:  # real handwriting drawn large
        assert res["sequence_accuracy"] >= SHIPPED_ACCURACY, res


def test_evaluate_images_without_labels_fails_clearly(tmp_path, ckpt, capsys):
    assert evaluate.main(["--images", str(tmp_path), "--json", "--checkpoint", str(ckpt)]) == 2
    assert "labels.json" in capsys.readouterr().err


def test_predict_cli_roi_restricts_the_search(folder, ckpt, capsys):
    assert read.main([str(folder / "03.png"), "--json", "--roi", "0.5,0,1,1", "--checkpoint", str(ckpt)]) == 0
    half = json.loads(capsys.readouterr().out)
    assert read.main([str(folder / "03.png"), "--json", "--checkpoint", str(ckpt)]) == 0
    whole = json.loads(capsys.readouterr().out)
    assert half["box"][0] >= 450 and whole["box"][0] < 200, (half["box"], whole["box"])  # the image is 900 wide
    with pytest.raises(SystemExit):
        read.main([str(folder / "03.png"), "--roi", "0.5,0,0.2,1"])
