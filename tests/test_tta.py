"""Test-time views: a view's geometry maps the original where the view moves the canvas, the vote, and a
doubtful reading read again on every view in one batch, shown as the winning view read it."""
import numpy as np
import pytest

from drawings import typed
from nextnum import tta
from nextnum.geometry import Geometry
from nextnum.predictor import _readings

GEOM = Geometry(src_hw=(300, 900), canvas_hw=(56, 224), crop=(100.0, 50.0, 700.0, 250.0), scale=0.25, offset=(12.0, 3.0))


def centre(m: np.ndarray) -> np.ndarray:
    ys, xs = np.indices(m.shape)
    return np.array([(xs * m).sum(), (ys * m).sum()]) / m.sum()


@pytest.mark.parametrize("view", tta.VIEWS)
def test_a_view_geometry_maps_the_original_where_the_view_moves_the_canvas(view):
    pts = np.array([[150.0, 80.0], [400.0, 200.0], [690.0, 240.0]])
    m = tta.matrix(view, GEOM.canvas_hw)
    moved = GEOM.to_canvas(pts) @ m[:, :2].T + m[:, 2]
    np.testing.assert_allclose(tta.geometry(GEOM, view).to_canvas(pts), moved, atol=1e-9)


@pytest.mark.parametrize("view", tta.VIEWS)
def test_a_map_over_a_view_lands_on_the_original_where_the_canvas_map_does(view):
    canvas = np.zeros(GEOM.canvas_hw, np.float32)
    canvas[20:27, 60:67] = 1.0
    seen = tta.geometry(GEOM, view).warp_to_original(tta.warp(canvas, view))
    np.testing.assert_allclose(centre(seen), centre(GEOM.warp_to_original(canvas)), atol=1 / GEOM.scale)  # a canvas px


def test_the_canvas_is_its_own_first_view():
    canvas = np.random.default_rng(0).random(GEOM.canvas_hw).astype(np.float32)
    np.testing.assert_array_equal(tta.warp(canvas, tta.SELF), canvas)
    assert tta.SELF not in tta.VIEWS and len(set(tta.VIEWS)) == len(tta.VIEWS)


def test_the_text_with_most_probability_wins_shown_by_its_surest_view():
    assert tta.vote([("12", 0.6), ("72", 0.5), ("72", 0.55)]) == (2, pytest.approx(1.05 / 3))
    assert tta.vote([("12", 0.9)]) == (0, 0.9)


def test_a_tie_goes_to_the_canvas_reading():
    assert tta.vote([("12", 0.5), ("72", 0.5)]) == (0, 0.25)


def _calls(predictor, monkeypatch) -> list[int]:
    sizes, read = [], predictor.read
    monkeypatch.setattr(predictor, "read", lambda x, attention=False: sizes.append(len(x)) or read(x, attention))
    return sizes


def test_a_sure_reading_is_read_once(predictor, monkeypatch):
    monkeypatch.setattr(predictor.config.model, "views_below", 0.0)
    sizes = _calls(predictor, monkeypatch)
    pred = predictor.predict(typed("4072"), explain=False)
    assert sizes == [1] and "reread" not in pred.timings_ms


def test_a_doubtful_reading_is_what_every_view_read_alone_votes_for(predictor, monkeypatch):
    monkeypatch.setattr(predictor.config.model, "views_below", 1.0)
    image = typed("4072")
    pre = predictor.preprocess(image)
    alone = [_readings(predictor.read(tta.warp(pre.canvas, v)[None, None])) for v in (tta.SELF, *tta.VIEWS)]
    best, conf = tta.vote([(text, p) for text, _, p in alone])
    sizes = _calls(predictor, monkeypatch)
    pred = predictor.predict(image)
    assert sizes == [1, len(tta.VIEWS)] and "reread" in pred.timings_ms
    assert pred.agree == (sum(text == pred.text for text, _, _ in alone), 1 + len(tta.VIEWS))
    view = (tta.SELF, *tta.VIEWS)[best]
    assert pred.text == alone[best][0] and pred.confidence == pytest.approx(conf, abs=1e-5)
    assert [d.digit for d in pred.digits] == list(pred.text)
    np.testing.assert_allclose(pred.canvas, tta.warp(pre.canvas, view), atol=1e-6)
    assert pred.geometry == (pre.geometry if view == tta.SELF else tta.geometry(pre.geometry, view))
    assert len(pred.attention.heat) == len(pred.text)
