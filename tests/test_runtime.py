"""How readings run: onnxruntime by default with the same tokens as PyTorch, PyTorch when onnxruntime is
missing or fails (one log line), and one exported graph per weights, never an old one."""
import logging
import shutil
import warnings

import numpy as np
import pytest
import torch

from drawings import typed
from nextnum import Predictor
from nextnum import export as E
from nextnum import predictor
from nextnum import runtime as R
from nextnum.checkpoint import SHIPPED, save
from nextnum.config import Config
from nextnum.model import NextNum
from conftest import ROOT

DRAWN = [typed(t, hw=(240, 640), org=(60, 170)) for t in ("4072", "17", "385", "9", "26")]


@pytest.fixture
def smoke(tmp_path, monkeypatch):
    """A small random model saved as a checkpoint, with the user cache in tmp_path."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # the user cache: tmp_path/nextnum
    cfg = Config.load(ROOT / "configs" / "smoke.json")
    torch.manual_seed(0)
    model = NextNum(cfg.model)
    save(tmp_path / "ckpt", model, cfg)
    return tmp_path / "ckpt", cfg


@pytest.fixture
def fake_export(monkeypatch):
    """Exports that cost nothing: the n-th export is the bytes b"graph n"; a reader of a graph reads with
    PyTorch and remembers which graph it was given."""
    made, given = [], []

    def export(model, out):
        made.append(model)
        out.write(f"graph {len(made)}".encode())
        return out

    def reader(data):
        given.append(data)
        return lambda x, attention=False: made[-1].generate(torch.from_numpy(x), return_attn=attention).numpy()
    monkeypatch.setattr(E, "export", export)
    monkeypatch.setattr(E, "load_reader", reader)
    monkeypatch.setattr(R, "load_reader", reader)
    return made, given


@pytest.mark.skipif(not (SHIPPED / "model.safetensors").is_file(), reason="no shipped model")
def test_the_shipped_model_reads_through_onnxruntime_by_default_with_pytorchs_tokens():
    pytest.importorskip("onnxruntime")
    fast, slow = Predictor.load(), Predictor.load(runtime="torch")
    if fast.reads_with != "onnxruntime":  # the model or its code changed since its graph was committed
        warnings.warn("checkpoints/nextnum/.onnx/ holds no graph for these weights and this code, so the first "
                      "reading without pictures exports one (tens of seconds of CPU): run "
                      "`python -m nextnum.export --cache` and commit the new graph (git add -f)")
        assert fast.wait_fast(900), "the export failed"
    assert slow.reads_with == "torch"
    images = sorted((ROOT / "examples").glob("*.png")) + DRAWN
    texts = set()
    for image in images:
        a, o = slow.predict(image, explain=False), fast.predict(image, explain=False)
        assert a.text == o.text and abs(a.confidence - o.confidence) < 1e-4
        for x, y in zip(a.digits, o.digits):
            assert [d for d, _ in x.top3] == [d for d, _ in y.top3]
            np.testing.assert_allclose([p for _, p in x.top3], [p for _, p in y.top3], atol=1e-4)
        texts.add(a.text)
    assert len(texts) > 5, texts


def test_without_onnxruntime_pytorch_reads_and_says_so_once(smoke, monkeypatch, caplog):
    monkeypatch.setattr(R, "has_onnxruntime", lambda: False)
    with caplog.at_level(logging.INFO, logger="nextnum"):
        p = Predictor.load(smoke[0])
        texts = {p.predict(img, explain=False).text for img in DRAWN[:2]}
    assert p.reads_with == "torch" and not p.wait_fast(1) and all(t.isdigit() for t in texts)
    assert [r.getMessage() for r in caplog.records if "onnxruntime" in r.getMessage()] == \
        ["onnxruntime is not installed: readings run in PyTorch"]


def test_a_failing_onnxruntime_hands_the_readings_back_to_pytorch(smoke, caplog):
    p = Predictor.load(smoke[0], runtime="torch")
    want = [p.predict(img, explain=False).text for img in DRAWN[:3]]

    def broken(x, attention=False):
        raise RuntimeError("onnxruntime broke")
    p._use_fast(broken)
    assert p.reads_with == "onnxruntime"
    with caplog.at_level(logging.WARNING, logger="nextnum"):
        assert [p.predict(img, explain=False).text for img in DRAWN[:3]] == want
        assert p.predict(DRAWN[0]).attention is not None  # and the readings with pictures
    assert p.reads_with == "torch"
    assert len([r for r in caplog.records if "onnxruntime failed" in r.getMessage()]) == 1


def test_the_graph_is_exported_once_per_weights_in_the_background_and_never_reused_for_others(
        smoke, fake_export, monkeypatch):
    made, given = fake_export
    ckpt, cfg = smoke
    monkeypatch.setattr(predictor, "EXPORT_AFTER", 3)
    p = Predictor.load(ckpt)
    assert p.runtime == "auto" and p.reads_with == "torch"
    p.predict(DRAWN[0])  # readings with pictures and without both count
    p.predict(DRAWN[0], explain=False)
    assert made == [], "a few readings are not worth an export"
    p.predict(DRAWN[0])  # the third starts it in the background; PyTorch reads meanwhile
    assert p.wait_fast(60) and p.reads_with == "onnxruntime" and len(made) == 1 and given == [b"graph 1"]
    assert made[0] is not p.model, "the export works on a copy: the live model is never touched"
    kept = sorted((ckpt / E.GRAPH_DIR).glob("*.onnx"))
    assert len(kept) == 1 and kept[0].read_bytes() == b"graph 1"  # beside the weights

    again = Predictor.load(ckpt)  # found at load: no second export
    assert again.reads_with == "onnxruntime" and len(made) == 1 and given[-1] == b"graph 1"

    # new weights in the same folder, with the old graph left beside them: it must not be used
    model = NextNum(cfg.model)
    with torch.no_grad():
        model.head.bias.add_(1)
    shutil.copytree(ckpt / E.GRAPH_DIR, ckpt.parent / "old-graphs")
    save(ckpt, model, cfg)
    shutil.copytree(ckpt.parent / "old-graphs", ckpt / E.GRAPH_DIR, dirs_exist_ok=True)
    new = Predictor.load(ckpt)
    assert new.reads_with == "torch"
    assert new.wait_fast(60) and len(made) == 2 and given[-1] == b"graph 2"
    assert len(list((ckpt / E.GRAPH_DIR).glob("*.onnx"))) == 2


def test_a_checkpoint_folder_that_cannot_be_written_keeps_its_graph_in_the_user_cache(smoke, fake_export):
    ckpt, _ = smoke
    (ckpt / E.GRAPH_DIR).write_text("a file where the graphs' folder would go")  # mkdir fails, even as root
    p = Predictor.load(ckpt)
    assert p.wait_fast(60)
    cached = list((ckpt.parent / "nextnum").glob("greedy-*.onnx"))
    assert [f.read_bytes() for f in cached] == [b"graph 1"]
    assert Predictor.load(ckpt).reads_with == "onnxruntime" and len(fake_export[0]) == 1


def test_a_failing_export_leaves_pytorch_reading(smoke, monkeypatch, caplog):
    def export(model, out):
        raise RuntimeError("the exporter broke")
    monkeypatch.setattr(E, "export", export)
    p = Predictor.load(smoke[0])
    with caplog.at_level(logging.WARNING, logger="nextnum"):
        assert not p.wait_fast(60)
    assert p.reads_with == "torch" and p.predict(DRAWN[1], explain=False).text.isdigit()
    assert len([r for r in caplog.records if "export failed" in r.getMessage()]) == 1


def test_the_graph_key_follows_weights_buffers_and_config(smoke):
    ckpt, cfg = smoke
    model = Predictor.load(ckpt, runtime="torch").model
    key = E.graph_key(model)
    assert E.graph_key(model) == key
    with torch.no_grad():
        next(b for n, b in model.named_buffers() if "running_mean" in n).add_(0.5)  # BatchNorm statistics
    assert E.graph_key(model) != key
    other = NextNum(Config.load(ROOT / "configs" / "smoke.json").model)
    other.load_state_dict(model.state_dict())
    other.cfg.max_digits = 4  # the loop's length is baked into the graph
    assert E.graph_key(other) != E.graph_key(model)
    other.cfg.max_digits = model.cfg.max_digits
    same = E.graph_key(other)
    other.cfg.maps_on_ink = not model.cfg.maps_on_ink  # how maps are drawn: not in the graph
    assert E.graph_key(other) == same
