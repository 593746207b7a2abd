"""Pictures drawn at the size the page shows them: maps on a frame are the full-size maps shrunk, every
picture the reading tabs send fits its view, and the stage pictures are sent only while their
accordion is open or an API caller asks for them."""
import dataclasses
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from drawings import typed
from nextnum import attention as A
from nextnum.web import views, webcam


@pytest.fixture(scope="module")
def big(predictor):
    """A reading of a 1500x3000 photo-sized drawing (read at the 2,000 px every reader reads at most)."""
    img = cv2.resize(typed("4072", hw=(240, 640), org=(60, 170)), (3000, 1500), interpolation=cv2.INTER_AREA)
    return predictor.predict(np.dstack([img] * 3))


def test_rollout_importance_is_the_mean_row_of_the_rollout():
    a = torch.rand(3, 4, 21, 21).softmax(-1)
    np.testing.assert_allclose(A.rollout_importance(a), A.token_importance(A.rollout(a)), atol=1e-9)


def test_frames_fit_their_box_and_never_enlarge():
    f = A.Window.fit((1000, 2000), (100, 50, 1100, 550), (640, 240))
    assert f.rect == (100, 50, 1100, 550) and f.size == (480, 240)
    assert A.Window.fit((100, 200), None, (640, 240)).size == (200, 100)
    assert A.Window.fit((100, 200), (-5, -5, 500, 500)).rect == (0, 0, 200, 100)
    assert f.picture(np.zeros((1000, 2000, 3), np.uint8)).shape == (240, 480, 3)


def test_maps_on_a_frame_are_the_full_size_maps_shrunk(big):
    att = big.attention
    h, w = att.original.shape[:2]
    rect = views.roi_box((h, w), views.ink_roi(big))
    frame = att.window(rect, (400, 150))
    x0, y0, x1, y1 = frame.rect
    for small, full in zip(att.heat_maps(frame), att.heat):
        assert small.shape == frame.size[::-1] and small.dtype == np.float32 and small.max() == pytest.approx(1)
        want = cv2.resize(full[y0:y1, x0:x1], frame.size, interpolation=cv2.INTER_AREA)
        want /= want.max()
        diff = np.abs(small - want)
        assert diff.mean() < 0.02
        # where the canvas ends the maps drop to zero, a pixel apart at most: compare inside that edge
        inside = cv2.erode((want > 0).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        assert inside.mean() > 0.2 and np.percentile(diff[inside], 99) < 0.1
    assert att.heat_maps(frame) is att.heat_maps(frame), "each frame's maps are drawn once"


def test_maps_on_ink_lie_on_the_strokes_the_model_read(big):
    att = big.attention
    on = dataclasses.replace(att, cfg=dataclasses.replace(att.cfg, maps_on_ink=True), _heat={}, _pictures={})
    near = att.geometry.warp_to_original(A.ink_near(att.canvas))
    assert 0.01 < (near > 0).mean() < 0.5
    for raw, inked in zip(att.heat, on.heat):
        assert (raw[near == 0] > 0.05).any(), "the attention itself reaches the paper too"
        assert inked[near == 0].max() == 0 and inked.max() == pytest.approx(1)
        np.testing.assert_allclose(inked, A.normalise_map(raw * near), atol=1e-6)
    frame = att.window(None, (400, 150))
    near = att.geometry.warp_to_original(A.ink_near(att.canvas), frame.rect, frame.size)
    assert all(m[near == 0].max() == 0 for m in on.heat_maps(frame))


def test_ink_near_reaches_its_distance_from_the_ink():
    canvas = np.zeros((9, 9), np.float32)
    canvas[4, 4], canvas[0, 0] = 0.5, 0.05  # ink, and a level below ink
    near = A.ink_near(canvas, reach=1)
    assert near[3:6, 3:6].all() and near.sum() == 9


def test_every_picture_a_reading_sends_fits_its_view(big):
    text, html, per, comb, enc, stages, info = views.reading_views(big, "m", "layer 2", "head 3", stages=False)
    assert len(per) == len(big.text) and stages == [] and info["text"] == text == big.text
    fits = lambda img, box: img.shape[1] <= box[0] and img.shape[0] <= box[1] and max(img.shape[:2]) >= min(box)
    assert all(fits(img, views.DIGITS_BOX) for img, _ in per) and fits(comb, views.DIGITS_BOX)
    assert fits(enc, views.ENCODER_BOX) and enc.shape[2] == 3
    assert fits(views.encoder_view(big, "rollout", "mean"), views.ENCODER_BOX)
    stages = views.reading_views(big, "m", "rollout", "mean")[5]
    assert [name for _, name in stages] == list(big.stages)
    assert all(img.shape[1] <= views.STAGE_BOX[0] and img.shape[0] <= views.STAGE_BOX[1] for img, _ in stages)


def test_the_webcam_tint_is_drawn_at_a_quarter_size(predictor):
    frame = np.dstack([cv2.resize(typed("385"), (640, 480))] * 3)
    colour, alpha = webcam.heat_tint(predictor.predict(frame).attention)
    assert colour.shape == (120, 160, 3) and alpha.shape == (120, 160) and 0 < alpha.max() <= 0.7


def test_stage_pictures_follow_the_accordion_or_the_api_callers_request(predictor, reading_handlers, monkeypatch):
    ev = reading_handlers
    img = typed("27")
    assert ev.read(img, "m", "rollout", "mean", False)[5] == []  # a page with the accordion closed
    assert len(ev.read(img, "m", "rollout", "mean", True)[5]) == 6  # ... and open
    assert ev.read(img, "m", "rollout", "mean", False, False)[5] == []  # an API caller, by default
    assert len(ev.read(img, "m", "rollout", "mean", False, True)[5]) == 6  # an API caller asking for them
    want = views.stage_gallery(predictor.predict(img))
    reads, read = [], predictor.read
    monkeypatch.setattr(predictor, "read", lambda *a, **k: reads.append(1) or read(*a, **k))
    gallery, shown = ev.stages(img, "m")  # the accordion opens: the pictures of the image shown now
    assert shown is True and [n for _, n in gallery] == [n for _, n in want]
    assert all(np.array_equal(a, b) for (a, _), (b, _) in zip(gallery, want))
    assert reads == [], "opening the stages reads the image again: its preprocessing is all they need"
    assert ev.stages(None, "m") == ([], True)


def test_the_app_fills_the_stages_when_their_accordion_opens(built_app):
    demo = built_app
    cfg = demo.get_config_file()
    deps = [SimpleNamespace(**d) for d in cfg["dependencies"]]
    kinds = {c["id"]: c.get("type") for c in cfg["components"]}
    opened = [d for d in deps if any(t[1] == "expand" for t in d.targets)]
    assert len(opened) == 2 and all(kinds[o] in ("gallery", "state") for d in opened for o in d.outputs)
    assert len([d for d in deps if any(t[1] == "collapse" for t in d.targets)]) == 2


def test_every_digit_map_of_a_reading_has_a_numeric_height(built_app):
    """A numeric height, since with height "auto" Gradio keeps the gallery at least 450 px high on wide windows,
    most of it empty under the maps; the webcam's five side by side. (That the maps of a reading are in view
    beside the pad is checked in a browser: tests/e2e/test_browser.py.)"""
    from nextnum.config import ModelConfig
    maps = [c["props"] for c in built_app.get_config_file()["components"]
            if c.get("type") == "gallery" and c["props"].get("label") == "Where it looked for each digit"]
    assert len(maps) == 3  # Draw, Webcam, Upload
    assert all(isinstance(m["height"], (int, float)) for m in maps)
    assert [m["columns"] for m in maps if m["elem_id"] == "cam_maps"] == [ModelConfig().max_digits]
