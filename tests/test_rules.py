"""Lined paper: the ruled lines are lifted before the digits are looked for, so a number written across a line
is boxed and drawn on the canvas without it, and nothing of the digits goes with the lines; one long stroke
or bold digits in a row are not taken for ruled lines."""
import cv2
import numpy as np
import pytest

from nextnum.ink import normalise, polarity
from nextnum.preprocess import preprocess
from nextnum.rules import Rules, find_rules, lift

HW = (56, 224)
PAGE = (480, 640)


def digits_layer(text: str = "4072", org: tuple[int, int] = (220, 260), scale: float = 2.0, thickness: int = 5) -> np.ndarray:
    """255 where the digits are (OpenCV's Hershey font), on a page-sized layer."""
    m = np.zeros(PAGE, np.uint8)
    cv2.putText(m, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thickness, cv2.LINE_AA)
    return m


def lines_layer(ys: list[int], tilt_px: int = 8, thickness: int = 2) -> np.ndarray:
    """255 on ruled lines across the whole page, each rising tilt_px from left to right."""
    m = np.zeros(PAGE, np.uint8)
    for y in ys:
        cv2.line(m, (0, y), (PAGE[1] - 1, y - tilt_px), 255, thickness, cv2.LINE_AA)
    return m


def photo(digits: np.ndarray, lines: np.ndarray | None, seed: int = 0) -> np.ndarray:
    """A webcam-like photo: paper lit unevenly, light blue-grey lines, dark blue ink, sensor noise, a little blur."""
    rng = np.random.default_rng(seed)
    paper = np.array([228, 226, 218], np.float32) * np.linspace(0.8, 1.0, PAGE[1], dtype=np.float32)[None, :, None]
    img = np.broadcast_to(paper, PAGE + (3,)).copy()
    if lines is not None:
        a = lines[..., None] / 255.0
        img = img * (1 - a) + np.array([150, 170, 205], np.float32) * a
    a = digits[..., None] / 255.0
    img = img * (1 - a) + np.array([30, 40, 120], np.float32) * a
    img = img + rng.normal(0, 3, img.shape)
    return cv2.GaussianBlur(np.clip(img, 0, 255).astype(np.uint8), (0, 0), 0.8)


def box(layer: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(layer > 127)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])


RULED = [120, 200, 250, 330, 410]  # the line at 250 runs through the digits (rows 200-260), 200 above them


def test_a_number_written_across_ruled_lines_is_boxed_and_drawn_without_them():
    digits = digits_layer()
    plain = preprocess(photo(digits, None), HW)
    ruled = preprocess(photo(digits, lines_layer(RULED)), HW)
    assert not ruled.empty, ruled.message
    # the box is the digits', not the width of the lines they touch
    assert np.abs(np.array(ruled.geometry.crop) - box(digits)).max() <= 8, ruled.geometry.crop
    # and the canvas is the one the same number makes on plain paper
    a, b = ruled.canvas > 0.3, plain.canvas > 0.3
    assert (a & b).sum() / (a | b).sum() > 0.85
    assert (ruled.canvas * ~cv2.dilate(b.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)).max() < 0.3


def test_no_ink_of_the_digits_goes_with_the_lines():
    digits = digits_layer()
    pre = preprocess(photo(digits, lines_layer(RULED)), HW)
    near = cv2.dilate(pre.canvas, np.ones((3, 3), np.uint8))
    ys, xs = np.nonzero(digits > 127)
    cx, cy = pre.geometry.to_canvas(np.stack([xs, ys], 1) + 0.5).T - 0.5
    v = near[np.clip(np.round(cy), 0, HW[0] - 1).astype(int), np.clip(np.round(cx), 0, HW[1] - 1).astype(int)]
    assert (v > 0.08).mean() >= 0.97


@pytest.mark.parametrize("thickness, pale", [(10, 0.35), (14, 1.0), (18, 0.35)])
def test_a_number_sitting_on_a_ruled_line_is_boxed_whole_without_it(thickness, pale):
    """Bold digits standing on a line merge with it along their band; the line is lifted all the same, and a
    lighter digit in the number (pale: its darkness against the others') keeps the digits after it."""
    scale = 3.5
    first = digits_layer("684", (60, 260), scale, thickness)
    w = cv2.getTextSize("684", cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)[0][0]
    light = digits_layer("3", (60 + w + 20, 260), scale, thickness)
    last = digits_layer("6", (60 + w + 140, 260), scale, thickness)
    img = photo(cv2.max(first, last), lines_layer([60, 140, 264, 340, 420], tilt_px=4)).astype(np.float32)
    a = light[..., None] / 255.0 * pale
    img = (img * (1 - a) + np.array([30, 40, 120], np.float32) * a).astype(np.uint8)
    pre = preprocess(img, HW)
    assert not pre.empty, pre.message
    assert np.abs(np.array(pre.geometry.crop) - box(cv2.max(cv2.max(first, last), light))).max() <= 8, pre.geometry.crop


def ink_of(gray: np.ndarray):
    return normalise(gray, polarity(gray))


@pytest.mark.parametrize("case", ["underlined", "underlined twice with a marker", "plain paper"])
def test_what_is_not_lined_paper_is_left_as_it_is(case):
    """One long thin line (an underline, a big seven's bar) is no lined paper, which has several; marker-thick
    lines are no sheet's print."""
    page = np.full(PAGE, 235, np.uint8)
    cv2.putText(page, "4072", (120, 260), cv2.FONT_HERSHEY_SIMPLEX, 3.0, 30, 6, cv2.LINE_AA)
    if case == "underlined":
        cv2.line(page, (60, 290), (600, 284), 60, 2)
    elif case == "underlined twice with a marker":
        cv2.line(page, (60, 290), (600, 284), 30, 12)
        cv2.line(page, (60, 320), (600, 314), 30, 12)
    work = cv2.resize(page, (320, 240), interpolation=cv2.INTER_AREA)
    assert find_rules(ink_of(work)) is None


def test_lined_paper_is_found_with_the_lines_thickness():
    work = cv2.resize(photo(np.zeros(PAGE, np.uint8), lines_layer(RULED)), (320, 240), interpolation=cv2.INTER_AREA)
    rules = find_rules(ink_of(cv2.cvtColor(work, cv2.COLOR_RGB2GRAY)))
    assert rules is not None and rules.thickness <= 2
    rows = np.nonzero(rules.mask[:, 160])[0]  # the bands cover each line where it crosses the middle
    for y in RULED:
        assert np.abs(rows - (y - 4) / 2).min() <= 1


def test_lifting_takes_the_line_and_keeps_a_stroke_crossing_it_whole():
    ink = np.zeros((60, 200), np.uint8)
    ink[30, :] = 90  # a ruled line, a pixel thick
    ink[10:50, 100:104] = 230  # a stroke crossing it
    mask = np.zeros_like(ink)
    mask[28:33, :] = 255
    out = lift(ink, Rules(mask, 1))
    assert out[30, :90].max() == 0 and out[30, 110:].max() == 0
    np.testing.assert_array_equal(out[10:50, 100:104], ink[10:50, 100:104])
