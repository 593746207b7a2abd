"""What the shipped model reads on mouse-drawn sketches, and that each digit's map lies on that digit.

The grid and the drawn numbers come from tests/sketch_checks.py, which bench/product_checks.py also uses
to choose between checkpoints; the bars here are the product's.
"""
from __future__ import annotations

import numpy as np
import pytest

from drawings import HANDS, SKETCH_HW, gap_middle, one_seven, stroke_number, thin_one_far_seven
from sketch_checks import (MAP_SHARE, by_hand, centre_x, drawn_large, drawn_numbers, hands, on_ink, one_seven_grid,
                          side_shares, summary)
from nextnum import Predictor


@pytest.fixture(scope="module")
def shipped() -> Predictor:
    return Predictor.load()


@pytest.fixture(scope="module")
def grid(shipped):
    return one_seven_grid(shipped)


@pytest.fixture(scope="module")
def drawn(shipped):
    return drawn_numbers(shipped, 200)


# ---------------------------------------------------------------- the measures, on maps with known answers


def test_side_shares_measure_each_digit_on_its_own_side():
    h = np.zeros((10, 20))
    first, second = h.copy(), h.copy()
    first[:, 2:6] = 1  # all left of x = 10
    second[:, 8:12] = 1  # half on each side
    assert side_shares([first, second], 10) == [1.0, 0.5]


def test_a_map_on_ink_keeps_what_lies_on_the_strokes_and_near_them():
    layer = np.zeros((10, 40, 4), np.uint8)
    layer[2:8, 5, 3] = 255  # a one-pixel stroke at x = 5
    heat = np.ones((10, 40))
    (kept,) = on_ink([heat], layer, reach=2)
    assert kept[:, 3:8].sum() == heat[:, 3:8].sum()  # the stroke's column, 2 px either side, kept whole
    assert kept[:, :3].sum() == 0 and kept[:, 8:].sum() == 0  # farther off the stroke: nothing


def test_centre_x_is_the_centre_of_mass():
    h = np.zeros((4, 10))
    h[:, 2], h[:, 8] = 1, 3
    assert centre_x(h) == pytest.approx((2 * 1 + 8 * 3) / 4)


def test_summary_counts_centres_only_of_numbers_read_right():
    grid = [{"order": "17", "read": "17", "passed": True, "passed_on_ink": True},
            {"order": "71", "read": "7", "passed": False, "passed_on_ink": False}]
    drawn = [{"text": "12", "read": "12", "centres_inside": [True, False]},
             {"text": "3", "read": "8", "centres_inside": None}]
    s = summary(grid, drawn)
    assert s == {"grid_pass": 0.5, "grid_pass_on_ink": 0.5, "grid_read": 0.5, "drawn_read": 0.5,
                 "drawn_centres_inside": 0.5}


# ---------------------------------------------------------------- the drawings say where their digits are


@pytest.mark.parametrize("order", ["17", "71"])
def test_one_seven_spans_hold_the_ink_and_the_gap_middle_lies_between(order):
    img, spans, mid = one_seven(order, width=14, gap=0.4, height=180)
    ink = img[..., 3].max(0) > 0  # columns with ink
    (a0, a1), (b0, b1) = spans
    assert a1 < mid < b0
    assert not ink[:a0 - 1].any() and not ink[a1 + 2:b0 - 1].any() and not ink[b1 + 2:].any()
    assert ink[a0 + 1:a1 - 1].all() and ink[b0 + 1:b1 - 1].any()


def test_stroke_numbers_have_ordered_spans_over_their_ink():
    rng = np.random.default_rng(1)
    for text in ("4072", "15987", "9", "11"):
        img, spans = stroke_number(text, rng)
        assert img.shape == (*SKETCH_HW, 4) and len(spans) == len(text)
        ink = img[..., 3].max(0) > 0
        inside = np.zeros_like(ink)
        for x0, x1 in spans:
            inside[max(x0 - 1, 0):x1 + 2] = True
            assert ink[x0:x1].any()
        assert not (ink & ~inside).any()  # no ink outside the spans
        assert all(a[1] < b[0] for a, b in zip(spans, spans[1:]))  # left to right, apart


def test_each_hand_draws_its_own_variant_of_its_digit():
    """A variant changes the ink of its digit alone: the same seed gives other ink with it, the same ink
    for a number without that digit."""
    for hand, (digit, _) in HANDS.items():
        other = "0" if digit != "0" else "2"
        plain = stroke_number(digit + other, np.random.default_rng(0))[0][..., 3]
        drawn = stroke_number(digit + other, np.random.default_rng(0), hand=hand)[0][..., 3]
        assert np.array_equal(plain, drawn) == (hand in ("7 plain", "4 open")), hand  # those two are the templates
        free = stroke_number(other * 2, np.random.default_rng(0), hand=hand)[0]
        assert np.array_equal(free, stroke_number(other * 2, np.random.default_rng(0))[0]), hand


def test_the_hands_set_holds_its_variant_in_every_number_and_scores_each_variant():
    class Blank:  # reads nothing
        def predict(self, img, explain=True):
            return type("Reading", (), {"text": ""})()
    rows = hands(Blank(), 5)
    assert len(rows) == 5 * len(HANDS) and all(r["read"] == "" for r in rows)
    assert all(HANDS[r["hand"]][0] in r["text"] and 1 <= len(r["text"]) <= 4 for r in rows)
    ones_as_sevens = by_hand([{**r, "read": r["text"].replace("1", "7")} for r in rows])
    assert list(ones_as_sevens) == list(HANDS)
    assert [h for h, v in ones_as_sevens.items() if v == 0.0] == [h for h in HANDS if h.startswith("1 ")]
    for h, v in ones_as_sevens.items():  # right exactly where no "1" was drawn
        assert v == np.mean(["1" not in r["text"] for r in rows if r["hand"] == h]), h


# ---------------------------------------------------------------- the shipped model


def test_shipped_model_reads_a_thin_one_and_a_far_seven(shipped):
    """A thin "1", then a "7" half a digit height away: once read as "1" alone, stopping after it."""
    assert shipped.predict(thin_one_far_seven(), explain=False).text == "17"


def test_shipped_model_looks_at_the_far_seven_it_reads(shipped):
    pred = shipped.predict(thin_one_far_seven())
    heat = pred.attention.heat[1]  # the second digit's map over the drawing
    assert pred.text == "17" and heat[:, gap_middle():].sum() / heat.sum() > 0.9  # right of the gap's middle


@pytest.mark.parametrize("order,width,gap,height", [("17", 14, 0.5, 180), ("17", 12, 0.2, 180)])
def test_the_seven_map_does_not_depend_on_where_the_drawing_sits(shipped, order, width, gap, height):
    """The same drawing moved 0-9 px sideways (the stem samples every 4 canvas px, about 12 sketch px): without
    the encoder's blur the "7" map fell back onto the "1" at some of these shifts."""
    img, _, mid = one_seven(order, width, gap, height)
    for dx in range(0, 12, 3):
        pred = shipped.predict(np.roll(img, dx, axis=1))
        assert pred.text == order, dx
        assert side_shares(pred.attention.heat, mid + dx)[1] >= MAP_SHARE, dx


def test_one_seven_grid_reads_right_with_each_map_on_its_own_digit(grid):
    """Both orders x brushes of 10-18 px x gaps of 0.2-0.6 digit heights x heights of 150-210 px; the bar
    allows one misread of the 150 (the shipped model misreads a "17" of the thinnest brush, gap 0.4, 210 px)."""
    failed = [r for r in grid if not r["passed"]]
    assert len(grid) == 150
    wrong = [r for r in grid if r["read"] != r["order"]]
    assert len(wrong) <= 1, wrong
    assert len(failed) <= 0.05 * len(grid), f"{len(failed)} of {len(grid)} below {MAP_SHARE:.0%}: {failed}"


def test_drawn_numbers_put_each_digit_map_on_its_digit(drawn):
    inside = [c for r in drawn if r["centres_inside"] for c in r["centres_inside"]]
    assert len(inside) > 400  # about 3 digits a number, most numbers read right
    assert np.mean(inside) >= 0.99, [r for r in drawn if r["centres_inside"] and not all(r["centres_inside"])]


def test_drawn_numbers_read_right(drawn):
    """The shipped model reads all 200 (bench/product_checks.py); the bar allows two misreads."""
    assert np.mean([r["read"] == r["text"] for r in drawn]) >= 0.99


def test_numbers_drawn_as_tall_as_the_pad_read_right(shipped):
    """Drawn to the pad's top and bottom edges with the page's brush up to a marker, a number is read whole
    (a digit the edge cut was taken for a desk lying along it: 85 of 100 read); the bar allows five misreads."""
    rows = drawn_large(shipped)
    assert np.mean([r["read"] == r["text"] for r in rows]) >= 0.95, [r for r in rows if r["read"] != r["text"]]


def test_shipped_model_reads_every_hand(shipped):
    """Numbers with a flag "1", a crossed "7", a closed or open "4", a straight "9" and their plain forms
    (tests/drawings.HANDS): each variant read right in at least 9 of 10 numbers (bench/hands.py: 40 each)."""
    rates = by_hand(hands(shipped, 20, seed=1))
    assert min(rates.values()) >= 0.9, rates


@pytest.mark.parametrize("view", [(1.1, 0, 0), (0.9, 2, 1)])
def test_maps_of_a_reading_a_view_won_land_on_their_digits(view, monkeypatch):
    """Every reading reread on the views, and the given view made to win the vote: its maps, over its canvas,
    are mapped back to the drawing by the view's geometry and still sit on their digits."""
    from nextnum import tta
    reread = Predictor.load()
    monkeypatch.setattr(reread.config.model, "views_below", 1.0)
    monkeypatch.setattr(tta, "vote", lambda readings: (1 + tta.VIEWS.index(view), readings[0][1]))
    rows = drawn_numbers(reread, 40)
    inside = [c for r in rows if r["centres_inside"] for c in r["centres_inside"]]
    assert len(inside) > 80 and np.mean(inside) >= 0.99, [r for r in rows if r["centres_inside"] and not all(r["centres_inside"])]
