"""ONNX export: onnxruntime reads the same digits as PyTorch, with probabilities and attention within 1e-4."""

import numpy as np
import pytest
import torch

from nextnum.config import BOS, EOS, PAD, Config
from nextnum.data import fixed_batches, load_fixture
from nextnum import export as E
from nextnum.export import GreedyLoop, cached_export, compare, export
from nextnum.model import NextNum
from conftest import ROOT, SHIPPED

pytest.importorskip("onnxruntime")


def random_smoke_model() -> NextNum:
    """The smoke design with large random weights, so that readings differ between canvases."""
    torch.manual_seed(0)
    model = NextNum(Config.load(ROOT / "configs" / "smoke.json").model).eval()
    for p in model.parameters():
        p.data.normal_(0, 0.3)
    return model


@pytest.mark.parametrize("name", ["smoke", "shipped"])
def test_onnx_matches_pytorch(tmp_path, name):
    """A fresh export of a random smoke model, and the shipped model's kept graph (what the app reads with;
    exported again only when the model's code changed it)."""
    if name == "smoke":
        model, cfg = random_smoke_model(), Config.load(ROOT / "configs" / "smoke.json")
        path = export(model, tmp_path / "m.onnx")
    else:
        from nextnum.checkpoint import load
        model, cfg, _ = load(SHIPPED)
        path = tmp_path / "m.onnx"
        path.write_bytes(cached_export(model, beside=SHIPPED))
    canvases = fixed_batches(load_fixture(), 16, cfg.data, (cfg.model.img_h, cfg.model.img_w), seed=0)[0].images
    assert not model.training, "export must leave the model in the mode it found it in"
    res = compare(model, path, canvases)
    assert res["tokens_equal"] == 1.0
    assert res["max_prob_diff"] < 1e-4
    assert res["max_cross_attn_diff"] < 1e-4 and res["max_enc_attn_diff"] < 1e-4
    # the unrolled loop decides exactly as generate() does, and returns the same attention for the steps run
    tokens, probs, cross, enc = GreedyLoop(model)(canvases)
    gen = model.generate(canvases, return_attn=True)
    S = gen.tokens.shape[1]
    assert torch.equal(tokens[:, :S], gen.tokens) and (tokens[:, S:] == PAD).all()
    assert torch.equal(probs[:, :S], gen.probs) and torch.equal(cross[:, :S], gen.cross_attn)
    assert torch.equal(enc, gen.enc_attn)


def test_generate_and_the_graph_share_one_set_of_step_masks():
    """The rules of a reading (never BOS or PAD, at least one digit, at most max_digits) are one mask table:
    changing it changes generate() and the exported loop alike."""
    cfg = Config.load(ROOT / "configs" / "smoke.json")
    torch.manual_seed(0)
    model = NextNum(cfg.model).eval()
    canvases = fixed_batches(load_fixture(), 4, cfg.data, (cfg.model.img_h, cfg.model.img_w), seed=0)[0].images
    model.step_mask[:, :EOS] = float("-inf")  # only EOS allowed (after the first step, which has no choice)
    model.step_mask[0] = 0.0
    model.step_mask[0, [BOS, EOS, PAD]] = float("-inf")
    model.step_mask[0, :3] = float("-inf")  # the first digit may not be 0, 1 or 2
    gen = model.generate(canvases)
    tokens = GreedyLoop(model)(canvases)[0]
    assert (gen.tokens[:, 0] >= 3).all() and (gen.tokens[:, 1] == EOS).all() and gen.tokens.shape[1] == 2
    assert torch.equal(tokens[:, :2], gen.tokens)


def test_predictor_onnx_runtime_reads_as_pytorch_does():
    """Predictor(runtime="onnx") runs every reading in onnxruntime: the same text, probabilities and maps."""
    from nextnum import Predictor
    slow, fast = Predictor.load(runtime="torch"), Predictor.load(runtime="onnx")  # the shipped model
    assert fast.runtime == "onnx" and slow.runtime == "torch" and fast.reads_with == "onnxruntime"
    texts = set()
    for path in sorted((ROOT / "examples").glob("*.png")):
        a, o = slow.predict(path, explain=False), fast.predict(path, explain=False)
        assert a.text == o.text and len(a.digits) == len(o.digits), path
        assert abs(a.confidence - o.confidence) < 1e-4, path
        for x, y in zip(a.digits, o.digits):
            assert x.top3 == [(d, pytest.approx(q, abs=1e-4)) for d, q in y.top3], path
        texts.add(a.text)
    assert len(texts) > 3, texts
    for _ in range(2):  # the same maps each time: nothing a reading does changes the next
        a, o = slow.predict(path), fast.predict(path)
        assert o.attention is not None and a.text == o.text
        np.testing.assert_allclose(o.attention.heat[0], a.attention.heat[0], atol=1e-4)
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
