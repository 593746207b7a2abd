"""ONNX export: onnxruntime reads the same digits as PyTorch, with probabilities within 1e-4."""
from pathlib import Path

import pytest
import torch

from nextnum.config import Config
from nextnum.data import fixed_batches, load_fixture
from nextnum import export as E
from nextnum.export import GreedyLoop, cached_export, compare, export
from nextnum.model import NextNum

pytest.importorskip("onnxruntime")
ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", ["smoke", "default"])
def test_onnx_matches_pytorch(tmp_path, name):
    cfg = Config.load(ROOT / "configs" / f"{name}.json")
    torch.manual_seed(0)
    model = NextNum(cfg.model).eval()
    for p in model.parameters():  # larger random weights, so readings differ between canvases
        p.data.normal_(0, 0.3)
    canvases = fixed_batches(load_fixture(), 16, cfg.data, (cfg.model.img_h, cfg.model.img_w), seed=0)[0].images
    path = export(model, tmp_path / "m.onnx")
    assert not model.training, "export must leave the model in the mode it found it in"
    res = compare(model, path, canvases)
    assert res["tokens_equal"] == 1.0
    assert res["max_prob_diff"] < 1e-4
    # the unrolled loop decides exactly as generate() does
    tokens, _ = GreedyLoop(model)(canvases)
    gen = model.generate(canvases)
    S = gen.tokens.shape[1]
    assert torch.equal(tokens[:, :S], gen.tokens)


def test_predictor_onnx_runtime_reads_as_pytorch_does():
    """Predictor(runtime="onnx") runs explain=False readings in onnxruntime: the same text and probabilities."""
    from nextnum import Predictor
    slow, fast = Predictor.load(runtime="torch"), Predictor.load(runtime="onnx")  # the shipped model
    assert fast.runtime == "onnx" and slow.runtime == "torch"
    texts = set()
    for path in sorted((ROOT / "examples").glob("*.png")):
        a, o = slow.predict(path, explain=False), fast.predict(path, explain=False)
        assert a.text == o.text and len(a.digits) == len(o.digits), path
        assert abs(a.confidence - o.confidence) < 1e-4, path
        for x, y in zip(a.digits, o.digits):
            assert x.top3 == [(d, pytest.approx(q, abs=1e-4)) for d, q in y.top3], path
        texts.add(a.text)
    assert len(texts) > 3, texts
    # pictures still come from PyTorch, from the same model in eval mode (exporting once left it training:
    # BatchNorm then read batch statistics and changed its running ones, so explain=True readings drifted)
    assert not fast.model.training
    for _ in range(2):
        a, o = slow.predict(path), fast.predict(path)
        assert o.attention is not None and a.text == o.text
        assert torch.equal(torch.from_numpy(a.attention.heat[0]), torch.from_numpy(o.attention.heat[0]))
    with pytest.raises(ValueError, match="runtime"):
        Predictor(slow.model, slow.config, runtime="tensorrt")


def test_the_export_is_kept_once_per_weights(tmp_path, monkeypatch):
    """OnnxReader's graph is exported on the first load of a model's weights, then read from the cache."""
    made = []

    def fake_export(model, out):
        made.append(1)
        out.write(f"graph {len(made)}".encode())
        return out
    monkeypatch.setattr(E, "export", fake_export)
    model = NextNum(Config.load(ROOT / "configs" / "smoke.json").model)
    first = cached_export(model, tmp_path)
    assert cached_export(model, tmp_path) == first and len(made) == 1
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no partial files left
    with torch.no_grad():
        model.head.bias.add_(1)  # other weights: another graph
    assert cached_export(model, tmp_path) != first and len(made) == 2
    assert len(list(tmp_path.glob("*.onnx"))) == 2
