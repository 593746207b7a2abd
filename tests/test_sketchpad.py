"""The Draw tab's sketchpad: its drawing comes as a PNG data URL and reads exactly as the file with those bytes,
bad data is refused with a message, a cleared pad empties the results, and the page reads the pad by its own
change event (drawing, Undo, Clear, an example) without any event setting it from outside."""
import base64

import cv2
import numpy as np
import pytest

from drawings import one_seven, typed
from nextnum import inputs
from nextnum.inputs import ImageError, read_image, to_array
from nextnum.web import sketchpad, views


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def png(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def test_a_drawing_sent_as_a_data_url_reads_as_the_file_with_those_bytes(tmp_path):
    rgba = np.dstack([np.full((300, 900, 3), 255, np.uint8), np.full((300, 900), 255, np.uint8)])
    rgba[..., :3] = typed("4072", hw=(300, 900))[..., None]  # what a canvas's PNG holds: opaque RGBA
    for img in (rgba, typed("17")):
        data = png(img)
        (tmp_path / "drawing.png").write_bytes(data)
        from_file, zoom = read_image(tmp_path / "drawing.png")
        from_url, zoom_url = read_image(data_url(data))
        assert from_url.dtype == np.uint8 and zoom == zoom_url == 1.0
        np.testing.assert_array_equal(from_url, from_file)


def test_data_urls_that_hold_no_readable_image_are_refused_with_a_message(monkeypatch):
    bad = {
        "data:text/plain;base64,aGVsbG8=": "expected an image file, an array or a data URL",
        "data:image/png,rawbytes": "expected an image file, an array or a data URL",
        "data:image/png;base64,not base64!": "not valid base64",
        data_url(b"this is text, not a picture"): "the image sent inline is not an image NextNum can read",
        data_url(png(np.zeros((1, inputs.MAX_SIDE + 1), np.uint8))): "the largest accepted side is",
    }
    for url, message in bad.items():
        with pytest.raises(ImageError, match=message):
            to_array(url)
    monkeypatch.setattr(inputs, "MAX_DATA_URL", 100)
    with pytest.raises(ImageError, match="send it as a file"):
        to_array(data_url(png(typed("4072"))))


def test_the_draw_tab_reads_the_pad_keeps_the_drawing_and_empties_the_results_when_cleared(predictor, reading_handlers):
    import gradio as gr
    ev = reading_handlers
    img = typed("27")
    url = data_url(png(img))
    got = ev.read_pad(url, "m", "rollout", "mean", False)
    want = ev.read(img, "m", "rollout", "mean", False)
    same = lambda d: {k: v for k, v in d.items() if k != "timings_ms"}
    assert got[0] == want[0] and same(got[-2]) == same(want[-1])  # the same reading
    assert got[-1] == url  # kept, as sent, for the selectors, the stages and a correction
    assert ev.read_pad("", "m", "rollout", "mean", False) == (*views.empty_views(), None)
    assert ev.read_pad(None, "m", "rollout", "mean", False) == (*views.empty_views(), None)
    with pytest.raises(gr.Error, match="not valid base64"):
        ev.read_pad("data:image/png;base64,???", "m", "rollout", "mean", False)


def test_the_page_and_the_api_read_a_drawing_through_the_pads_own_events(built_app):
    """The pad shows only what was drawn on it (or an example it was handed in the page): an event that set
    its value would leave the canvas showing something else than what is read. API clients read a drawing
    through the pad's own event (/read_sketch, a data URL): there is no second way in, and no image editor."""
    demo = built_app
    cfg = demo.get_config_file()
    comps = {c["id"]: c for c in cfg["components"]}
    pad = next(i for i, c in comps.items() if c.get("props", {}).get("elem_id") == "sketch")
    assert comps[pad]["type"] == "html"
    readers = [d for d in cfg["dependencies"] if pad in d["inputs"]]
    # the pad's change, Read again, and the encoder selectors (which redraw the pad's reading)
    assert {comps[t[0]]["type"] if t[0] is not None else None for d in readers for t in d["targets"]} == \
        {"html", "button", "dropdown"}
    assert all(d["backend_fn"] and d["inputs"][0] == pad for d in readers)  # read by Python, as drawn
    assert [d["api_name"] for d in readers if d["api_name"] and not d["api_name"].startswith("false")] == ["read_sketch"]
    assert not [d for d in cfg["dependencies"] if pad in d["outputs"]]
    assert not [c for c in comps.values() if c["type"] in ("sketchpad", "imageeditor")]


def test_the_pad_draws_at_the_size_and_stroke_width_the_readings_were_checked_on():
    layer, spans, _ = one_seven()  # tests/drawings.py's sketchpad strokes (reading-quality tests use them)
    assert layer.shape[:2] == (sketchpad.HEIGHT, sketchpad.WIDTH)
    assert spans[0][1] - spans[0][0] == sketchpad.BRUSH  # the 1's ink span: one stroke width
    # that the page sends its drawing at this size, whatever the screen, is checked in a browser
    # (tests/e2e/test_browser.py: a phone at devicePixelRatio 2 sends 900 x 300 PNGs)
