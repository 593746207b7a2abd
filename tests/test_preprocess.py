"""Preprocessing invariants: every input kind and polarity gives the same canvas, light and specks do
not matter, the geometry maps canvas and original onto each other, bad input fails clearly."""
from functools import partial

import cv2
import numpy as np
import pytest
from PIL import Image

from drawings import typed
from nextnum.inputs import ImageError, to_array
from nextnum.preprocess import preprocess

HW = (84, 168)
# black digits on white, hard-edged (so bool and thresholded copies of it are the same drawing)
drawing = partial(typed, hw=(300, 800), org=(120, 210), scale=5.0, thickness=16, line=cv2.LINE_8)


def ink_box(gray: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(gray < 128)
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


def canvas(image, **kw) -> np.ndarray:
    pre = preprocess(image, HW, **kw)
    assert not pre.empty, pre.message
    return pre.canvas


@pytest.fixture(scope="module")
def gray():
    return drawing()


@pytest.fixture(scope="module")
def base(gray):
    return canvas(gray)


def test_canvas_is_well_formed(base):
    assert base.shape == HW and base.dtype == np.float32
    assert base.min() >= 0 and base.max() <= 1 and base.max() > 0.99
    assert base[0].max() == 0 and base[-1].max() == 0, "the ink should be centred with a margin"


def test_every_input_kind_gives_the_same_canvas(gray, base, tmp_path):
    rgb = np.dstack([gray] * 3)
    ink = 255 - gray
    transparent = np.dstack([np.zeros_like(gray)] * 3 + [ink])  # a stroke layer: black ink, clear elsewhere
    cv2.imwrite(str(tmp_path / "d.png"), gray)
    cv2.imwrite(str(tmp_path / "rgba.png"), cv2.cvtColor(transparent, cv2.COLOR_RGBA2BGRA))
    kinds = {
        "sketchpad": {"composite": gray, "background": None, "layers": []},
        "sketchpad rgba": {"composite": np.dstack([rgb, np.full_like(gray, 255)])},
        "rgb frame": rgb,
        "rgba transparent": transparent,
        "grey (H, W, 1)": gray[..., None],
        "uint16": gray.astype(np.uint16) * 257,
        "float 0-1": gray / 255.0,
        "float 0-255": gray.astype(np.float32),
        "bool": gray > 127,
        "PIL L": Image.fromarray(gray),
        "PIL RGB": Image.fromarray(rgb),
        "PIL RGBA": Image.fromarray(transparent, "RGBA"),
        "PNG path": str(tmp_path / "d.png"),
        "RGBA PNG path": tmp_path / "rgba.png",
    }
    for name, image in kinds.items():
        np.testing.assert_allclose(canvas(image), base, atol=1e-6, err_msg=name)


def test_untouched_sketchpad_is_blank():
    pre = preprocess({"composite": None}, HW)
    assert pre.empty and "no digits" in pre.message and pre.canvas.max() == 0


def test_inverted_polarity_gives_the_same_canvas(gray, base):
    np.testing.assert_allclose(canvas(255 - gray), base, atol=1e-6)
    np.testing.assert_allclose(canvas(np.dstack([255 - gray] * 3)), base, atol=1e-6)


def test_uneven_light_noise_and_coloured_ink_give_nearly_the_same_canvas(gray, base):
    rng = np.random.default_rng(0)
    h, w = gray.shape
    light = np.linspace(0.4, 1.0, w)[None, :] * np.linspace(1.0, 0.8, h)[:, None]  # dim left, dimmer bottom
    paper = np.where(gray[..., None] < 128, np.array([30, 50, 150]), np.array([235, 230, 215]))  # blue ink
    photo = paper * light[..., None] + rng.normal(0, 4, (h, w, 3))
    photo = cv2.GaussianBlur(np.clip(photo, 0, 255).astype(np.uint8), (0, 0), 1.0)
    c = canvas(photo)
    a, b = c > 0.5, base > 0.5
    iou = (a & b).sum() / (a | b).sum()
    assert iou > 0.75, f"canvas IoU {iou:.2f} under uneven light"


def test_geometry_maps_the_ink_box_onto_the_canvas_and_back(gray):
    pre = preprocess(gray, HW)
    g = pre.geometry
    x0, y0, x1, y1 = ink_box(gray)
    n = 2  # the 800 px drawing is searched at half size: the box is found to within a work pixel
    assert np.allclose(g.crop, (x0, y0, x1, y1), atol=n), (g.crop, (x0, y0, x1, y1))
    corners = g.to_canvas(np.array([g.crop[:2], g.crop[2:]]))
    ink = np.argwhere(pre.canvas > 0.3)  # (y, x)
    assert np.allclose(corners[0], ink.min(0)[::-1], atol=2) and np.allclose(corners[1], ink.max(0)[::-1] + 1, atol=2)
    pts = np.random.default_rng(0).uniform(0, 800, (20, 2))
    np.testing.assert_allclose(g.to_original(g.to_canvas(pts)), pts, atol=1e-9)
    # ink pixels of the original land on ink of the canvas
    ys, xs = np.nonzero(cv2.erode(255 - gray, np.ones((9, 9), np.uint8)))  # stroke centres
    cx, cy = g.to_canvas(np.stack([xs + 0.5, ys + 0.5], 1)).T
    assert (pre.canvas[cy.astype(int), cx.astype(int)] > 0.5).mean() > 0.95


def test_warp_to_original_puts_a_canvas_spot_at_its_original_place(gray):
    g = preprocess(gray, HW).geometry
    m = np.zeros(HW, np.float32)
    m[40, 100] = 1.0
    big = g.warp_to_original(cv2.GaussianBlur(m, (0, 0), 2))
    assert big.shape == gray.shape
    y, x = np.unravel_index(big.argmax(), big.shape)
    assert np.allclose(g.to_canvas([x + 0.5, y + 0.5]), [100.5, 40.5], atol=1.0)
    x0, y0, x1, y1 = g.canvas_rect()
    assert big[:y0].max(initial=0) == 0 and big[y1:].max(initial=0) == 0, "nothing outside the canvas's rectangle"


def test_roi_restricts_the_search():
    img = np.full((300, 800), 255, np.uint8)
    cv2.putText(img, "17", (20, 200), cv2.FONT_HERSHEY_SIMPLEX, 5.0, 0, 16, cv2.LINE_8)  # left: outside
    cv2.putText(img, "5", (560, 200), cv2.FONT_HERSHEY_SIMPLEX, 5.0, 0, 16, cv2.LINE_8)  # right: inside
    pre = preprocess(img, HW, roi=(0.5, 0.0, 1.0, 1.0))
    assert pre.geometry.crop[0] >= 400 and pre.geometry.roi == (400.0, 0.0, 800.0, 300.0)
    np.testing.assert_allclose(pre.canvas, canvas(img[:, 400:]), atol=1e-6)
    with pytest.raises(ValueError):
        preprocess(img, HW, roi=(0.6, 0.0, 0.5, 1.0))


def test_specks_and_stray_marks_far_away_are_ignored(gray, base):
    specks = gray.copy()
    for x, y in ((770, 30), (30, 280), (400, 20)):
        cv2.circle(specks, (x, y), 4, 0, -1)
    pre = preprocess(specks, HW)
    np.testing.assert_allclose(pre.canvas, base, atol=1e-6)
    blob = gray.copy()
    cv2.circle(blob, (770, 40), 16, 0, -1)  # big enough to be a mark, too far right and up to be a digit
    pre = preprocess(blob, HW)
    np.testing.assert_allclose(pre.canvas, base, atol=1e-6)
    assert pre.message == "ignored 1 stray mark away from the digits"


@pytest.mark.parametrize("image", [
    np.full((200, 300), 255, np.uint8), np.zeros((200, 300), np.uint8), np.full((50, 50, 3), 128, np.uint8),
    np.zeros((1, 1), np.uint8), np.full((1, 1, 3), 255, np.uint8), np.eye(3, dtype=bool),
    np.pad(np.zeros((1, 1), np.uint8), 40, constant_values=255),  # one black pixel
], ids=["white", "black", "grey", "1px black", "1px white", "3x3 diagonal", "one dot"])
def test_blank_input_is_empty_with_a_message(image):
    pre = preprocess(image, HW)
    assert pre.empty and pre.geometry is None
    assert pre.message.startswith("no digits found") and pre.canvas.max() == 0


def test_bad_input_raises_image_error_saying_what_is_wrong(tmp_path):
    nan = np.full((20, 20), np.nan)
    (tmp_path / "text.png").write_text("not a picture\n")
    (tmp_path / "noise.png").write_bytes(np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8).tobytes())
    not_an_image = "is not an image NextNum can read (PNG, JPEG, BMP, WebP, GIF or TIFF)"
    cases = {  # input -> what the message must say: what is wrong, naming the file or the shape it got
        "NaN": (nan, "the image contains NaN or infinite values"),
        "text renamed .png": (tmp_path / "text.png", f"text.png {not_an_image}"),
        "random bytes": (tmp_path / "noise.png", f"noise.png {not_an_image}"),
        "missing file": (tmp_path / "none.png", "no such image file: none.png"),
        "5 channels": (np.zeros((5, 5, 5), np.uint8), "expected 1, 3 or 4 channels, got 5"),
        "1-d": (np.zeros(10), "expected an image array (H, W) or (H, W, C), got shape (10,) of float64"),
        "empty": (np.zeros((0, 10), np.uint8), "the image is empty (zero width or height)"),
        "None": (None, "no image was given"),
        "dict without composite": ({"background": None}, "expected a sketchpad value with a 'composite' image"),
        "object": (np.array([None, 1], dtype=object), "got shape (2,) of object"),
    }
    for name, (image, says) in cases.items():
        with pytest.raises(ImageError) as e:
            preprocess(image, HW)
        assert says in str(e.value), name
    assert "NaN" in str(pytest.raises(ImageError, to_array, nan).value)


def test_stages_are_named_images_in_order(gray):
    pre = preprocess(gray, HW, stages=True)
    assert list(pre.stages) == ["original", "grayscale", "normalised", "binary", "ink box", "canvas"]
    assert pre.stages["original"].shape == gray.shape + (3,) and pre.stages["canvas"].shape == HW
    assert all(v.dtype == np.uint8 for v in pre.stages.values())
    assert preprocess(gray, HW).stages == {}


def test_transparent_original_is_shown_over_white(gray):
    layer = np.dstack([np.zeros_like(gray)] * 3 + [255 - gray])  # black strokes on a clear layer
    shown = preprocess(layer, HW, stages=True).stages["original"]
    assert shown.shape == gray.shape + (3,)
    np.testing.assert_array_equal(shown[..., 0], gray)


def test_a_digit_touching_the_border_is_kept(gray):
    x0, y0, x1, y1 = ink_box(gray)
    cut = gray[:, : x1 - 10]  # the last digit runs off the right edge
    pre = preprocess(cut, HW)
    assert pre.geometry.crop[2] == cut.shape[1] and abs(pre.geometry.crop[0] - x0) <= 2
