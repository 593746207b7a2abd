"""What a reading card says: the 5-digit note only where the reading may be cut short, the whole reading's
confidence with what it is, and an empty card in the words of its tab."""

import cv2
import pytest

from appserver import shipped_available
from drawings import typed
from nextnum.predictor import LIMIT_NOTE
from nextnum.web import views
from conftest import ROOT

NOTE = LIMIT_NOTE.format(n=5)


@pytest.fixture(scope="module")
def shipped():
    if not shipped_available():
        pytest.skip("needs the shipped checkpoint")
    from nextnum import Predictor
    return Predictor.load(runtime="torch")


def test_the_five_digit_note_shows_only_where_the_reading_may_be_cut_short(shipped):
    right = [typed("12345", scale=3.5, org=(60, 200)), typed("90817", scale=3.5, org=(60, 200)),
             cv2.imread(str(ROOT / "examples" / "61854.png"), 0)]
    for img in right:  # read right, all five digits: the note would say the reading is wrong
        pred = shipped.predict(img)
        assert len(pred.text) == 5 and NOTE in pred.message  # the API's message keeps the note
        assert NOTE not in views.reading_html(pred), pred.text
    longer = shipped.predict(typed("1234567", scale=3.5, org=(40, 200)))  # ink runs on past the fifth digit
    assert len(longer.text) == 5 and NOTE in views.reading_html(longer)
    # a webcam's light frames have no maps: the ink's runs of columns alone tell
    assert NOTE not in views.reading_html(shipped.predict(right[0], explain=False))
    assert NOTE in views.reading_html(shipped.predict(typed("1234567", scale=3.5, org=(40, 200)), explain=False))


def test_the_whole_readings_confidence_says_what_it_is(shipped):
    html = views.reading_html(shipped.predict(typed("2026")))
    assert "whole reading" in html and views.CONFIDENCE_HINT in html


def test_an_empty_card_speaks_of_its_own_tab():
    assert "Upload a picture" in views.reading_html(None)  # read() of no file: the Upload tab, /predict
    assert "Draw a number" in views.empty_views()[1]  # a cleared sketchpad
    assert "no camera frame yet" in views.reading_html(None, "no camera frame yet")


def test_a_reading_read_again_says_how_many_views_agree(predictor, monkeypatch):
    """A doubtful reading read on the views says so on its card and in its details; a sure one says nothing."""
    monkeypatch.setattr(predictor.config.model, "views_below", 1.0)
    pred = predictor.predict(typed("4072"))
    agree, n = pred.agree
    assert n == 9 and 1 <= agree <= n and pred.as_dict()["views_agree"] == [agree, n]
    assert f"read again: {agree} of 9 views agree" in views.reading_html(pred)
    monkeypatch.setattr(predictor.config.model, "views_below", 0.0)
    pred = predictor.predict(typed("4072"))
    assert pred.agree is None and pred.as_dict()["views_agree"] is None and "read again" not in views.reading_html(pred)
