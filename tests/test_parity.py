"""onnxruntime and PyTorch read alike with the shipped model: the same digits, confidences within 1e-4 and
every attention map within 1e-4 (max abs), on the examples, webcam-like photos, sketchpad composites of
MNIST handwriting and mouse-drawn numbers."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from appserver import shipped_available
from drawings import stroke_number
from nextnum import runtime as R
from conftest import ROOT

pytestmark = [pytest.mark.skipif(not shipped_available(), reason="needs checkpoints/nextnum"),
              pytest.mark.skipif(not R.has_onnxruntime(), reason="needs onnxruntime")]
ATOL = 1e-4
DRAWN = ("4072", "17", "385", "90", "61854", "3")  # drawn with the mouse, stroke by stroke


def inputs() -> list[tuple[str, object]]:
    from nextnum.data import load_fixture
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import _common as C
    finally:
        sys.path.remove(str(ROOT / "bench"))
    bank = load_fixture()
    rng = np.random.default_rng(0)
    drawn = [stroke_number(t, rng)[0] for t in DRAWN]
    return ([(p.name, str(p)) for p in sorted((ROOT / "examples").glob("*.png"))]
            + [(f"photo {t}", img) for img, t in C.photos(6, 3, bank)]
            + [(f"sketch {t}", {"background": None, "layers": [], "composite": img}) for img, t in C.sketches(6, 3, bank)]
            + [(f"drawn {t}", layer) for t, layer in zip(DRAWN, drawn)])


@pytest.fixture(scope="module")
def readers():
    from nextnum import Predictor
    fast, slow = Predictor.load(), Predictor.load(runtime="torch")
    assert fast.reads_with == "onnxruntime", "no shipped graph: run `python -m nextnum.export --cache`"
    assert slow.reads_with == "torch"
    return fast, slow


def test_onnxruntime_and_pytorch_give_the_same_readings_and_maps(readers):
    fast, slow = readers
    texts = set()
    for name, image in inputs():
        o, t = fast.predict(image), slow.predict(image)
        assert o.text == t.text, name
        if not t.text:
            continue
        texts.add(t.text)
        assert abs(o.confidence - t.confidence) < ATOL, name
        for x, y in zip(o.digits, t.digits):
            assert [d for d, _ in x.top3] == [d for d, _ in y.top3], name
            np.testing.assert_allclose([p for _, p in x.top3], [p for _, p in y.top3], atol=ATOL, err_msg=name)
        a, b = o.attention, t.attention
        for what in ("cross", "rollout", "encoder"):  # the token maps every picture is drawn from
            np.testing.assert_allclose(getattr(a, what), getattr(b, what), atol=ATOL, rtol=0, err_msg=f"{name}: {what}")
        for ha, hb in zip(a.heat, b.heat):  # and the per-digit maps over the image, normalised to max 1
            np.testing.assert_allclose(ha, hb, atol=ATOL, rtol=0, err_msg=f"{name}: heat")
    assert len(texts) > 10, texts


def test_the_fast_reading_matches_the_reading_with_pictures(readers):
    """explain=False leaves the maps out, not the digits: the same text and confidence as explain=True."""
    fast, _ = readers
    for name, image in inputs()[:8]:
        a, b = fast.predict(image, explain=False), fast.predict(image)
        assert a.text == b.text and a.confidence == pytest.approx(b.confidence, abs=1e-6), name
        assert a.attention is None and b.attention is not None
