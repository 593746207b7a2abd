"""Scoring on hand-made (predicted, true) pairs, and the glue that turns a model's readings into pairs."""
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from nextnum.config import Config
from nextnum.data import fixed_batches, load_fixture
from nextnum.evaluate import evaluate_images, predict_batches, score
from nextnum.model import NextNum
from conftest import SMOKE



def test_score_exact_figures():
    pairs = [("12", "12"),  # right
             ("13", "12"),  # one digit wrong
             ("1", "12"),  # dropped the last digit
             ("345", "345"),  # right
             ("", "7"),  # read nothing
             ("99", "9"),  # added a digit: the true one is still in place
             ("2345", "12345")]  # dropped the first digit: every later digit is out of place
    res = score(pairs)
    assert res["samples"] == 7
    assert res["sequence_accuracy"] == pytest.approx(2 / 7)
    assert res["digit_accuracy"] == 8 / 16  # (2 + 1 + 1 + 3 + 0 + 1 + 0) / (2 + 2 + 2 + 3 + 1 + 1 + 5)
    assert res["by_length"] == pytest.approx({"1": 0.0, "2": 1 / 3, "3": 1.0, "5": 0.0})
    assert res["by_length_count"] == {"1": 2, "2": 3, "3": 1, "5": 1}
    assert list(res["by_length"]) == ["1", "2", "3", "5"]
    assert res["errors"] == {"wrong_length": 4, "wrong_digit": 1}


def test_score_perfect_and_empty():
    assert score([("4072", "4072")])["sequence_accuracy"] == score([("4072", "4072")])["digit_accuracy"] == 1.0
    empty = score([])
    assert empty["samples"] == 0 and empty["sequence_accuracy"] == empty["digit_accuracy"] == 0.0
    assert empty["by_length"] == {}
    assert score(iter([("1", "1")]))["samples"] == 1  # any iterable, not only lists


def test_predict_batches_pairs_readings_with_truths():
    cfg = Config.load(SMOKE)
    torch.manual_seed(0)
    model = NextNum(cfg.model)
    batches = fixed_batches(load_fixture(), 10, cfg.data, (cfg.model.img_h, cfg.model.img_w), seed=0, batch=4)
    pairs = predict_batches(model, batches)
    assert [len(b.texts) for b in batches] == [4, 4, 2]
    assert [t for _, t in pairs] == [t for b in batches for t in b.texts]
    assert all(1 <= len(p) <= model.cfg.max_digits and p.isdigit() for p, _ in pairs)
    assert not model.training


class FakePredictor:
    def __init__(self, readings):
        self.readings = readings

    def predict(self, path, explain=True):
        return SimpleNamespace(text=self.readings[path.name], confidence=0.5)


def test_evaluate_images_scores_a_labelled_folder(tmp_path):
    (tmp_path / "labels.json").write_text(json.dumps({"a.png": "12", "b.png": 7}))
    res, rows = evaluate_images(FakePredictor({"a.png": "12", "b.png": "1"}), tmp_path)
    assert [(r["file"], r["pred"], r["true"]) for r in rows] == [("a.png", "12", "12"), ("b.png", "1", "7")]
    assert res["sequence_accuracy"] == 0.5 and res["digit_accuracy"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("labels, error", [(None, FileNotFoundError), ("[]", ValueError), ("{}", ValueError)])
def test_evaluate_images_rejects_a_bad_labels_file(tmp_path, labels, error):
    if labels is not None:
        (tmp_path / "labels.json").write_text(labels)
    with pytest.raises(error, match="labels.json"):
        evaluate_images(FakePredictor({}), tmp_path)


def fake_mnist(root: Path) -> Path:
    """The committed digit sample written as torchvision's raw MNIST files (both splits), so the
    synthetic evaluation runs end to end without ../shared."""
    import numpy as np
    with np.load(Path(__file__).parent / "fixtures" / "mnist_sample.npz") as f:
        images, labels = f["images"].astype(np.uint8), f["labels"].astype(np.uint8)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split in ("train", "t10k"):
        n = len(images)
        (raw / f"{split}-images-idx3-ubyte").write_bytes(
            np.array([2051, n, 28, 28], ">i4").tobytes() + images.tobytes())
        (raw / f"{split}-labels-idx1-ubyte").write_bytes(np.array([2049, n], ">i4").tobytes() + labels.tobytes())
    return root


def test_synthetic_evaluation_cli_with_another_canvas_complexity(tmp_path, capsys):
    from nextnum.evaluate import main
    root = fake_mnist(tmp_path / "data")
    ROOT = SMOKE.parent.parent
    outs = {}
    for extra in ([], ["--data-config", str(ROOT / "configs" / "clean.json")]):
        assert main(["--data", str(root), "--samples", "24", "--seed", "3", "--json"] + extra) == 0
        res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert res["samples"] == 24 and sum(res["by_length_count"].values()) == 24
        assert 0 <= res["sequence_accuracy"] <= res["digit_accuracy"] <= 1
        outs[bool(extra)] = res
    assert outs[True]["data_config"].endswith("clean.json")
    assert "own" in outs[False]["data_config"]
    bad = tmp_path / "bad.json"
    bad.write_text('{"data": {"max_len": 9}}')
    assert main(["--data", str(root), "--samples", "4", "--data-config", str(bad)]) == 2
    assert "max_len" in capsys.readouterr().err


def test_the_app_path_reads_the_same_pages_whatever_the_models_canvas(monkeypatch):
    import nextnum.evaluate as E
    from nextnum import Predictor
    monkeypatch.setattr(E, "load_mnist", lambda root, train: load_fixture())
    seen = {}
    for name in ("compare-today", "compare-strip"):
        cfg = Config.load(f"configs/{name}.json")
        torch.manual_seed(0)
        pred = Predictor(NextNum(cfg.model), cfg)
        drawn, read = [], []
        real = pred.predict

        def spy(image, explain=True, roi=None):
            drawn.append(image.copy())
            out = real(image, explain=explain)
            read.append(out.canvas.shape)
            return out
        monkeypatch.setattr(pred, "predict", spy)
        res = E.evaluate_app(pred, None, 6, 0, cfg.data)
        assert res["samples"] == 6 and all(d.ndim == 2 and d.dtype.name == "uint8" for d in drawn)
        assert set(read) == {(cfg.model.img_h, cfg.model.img_w)}  # each model reads at its own canvas
        seen[name] = drawn
    assert all((a == b).all() for a, b in zip(*seen.values()))  # the same pictures for both
