"""The Gradio cache-writer workaround: a returned picture is renamed into place, so whoever reads the cached
file (the file route serving it) always gets the whole of it, even while another request saves it again."""
import os
import threading
import time

import numpy as np
import pytest
from PIL import Image

from nextnum.web import gradio_fixes

processing_utils = pytest.importorskip("gradio.processing_utils")


@pytest.fixture
def picture():
    gradio_fixes.install()  # what app.py does on import
    return Image.fromarray(np.random.default_rng(0).integers(0, 256, (96, 96, 3), np.uint8))


def test_saving_the_same_picture_again_keeps_the_cached_file_and_refreshes_its_age(tmp_path, picture):
    path = processing_utils.save_pil_to_cache(picture, str(tmp_path), format="png")  # as gr.Gallery calls it
    whole, first = open(path, "rb").read(), os.stat(path)
    os.utime(path, (first.st_atime - 3600, first.st_mtime - 3600))  # cached an hour ago
    with open(path, "rb") as served:  # a response still being sent
        again = processing_utils.save_img_array_to_cache(np.asarray(picture), str(tmp_path), format="png")  # gr.Image
        assert again == path
        assert os.stat(path).st_ino == first.st_ino, "written again"
        assert served.read() == whole
    assert os.stat(path).st_mtime > first.st_mtime - 60, "left to age: delete_cache could remove it while in use"
    assert open(path, "rb").read() == whole
    assert os.listdir(os.path.dirname(path)) == ["image.png"]  # no temporary files left


def test_a_reader_never_sees_a_truncated_file_while_others_save_it(tmp_path, picture):
    path = processing_utils.save_pil_to_cache(picture, str(tmp_path), format="png")
    size, stop, short = os.path.getsize(path), threading.Event(), []

    def save() -> None:
        while not stop.is_set():
            processing_utils.save_pil_to_cache(picture, str(tmp_path), format="png")
    writers = [threading.Thread(target=save) for _ in range(2)]
    for w in writers:
        w.start()
    try:
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            with open(path, "rb") as f:
                n = len(f.read())
            if n != size:
                short.append(n)
    finally:
        stop.set()
        for w in writers:
            w.join()
    assert not short, f"{len(short)} reads of a partly written file (sizes {sorted(set(short))[:5]} of {size})"


def test_the_webcam_image_is_decoded_by_nextnums_decoder(tmp_path):
    """gr.Image (the webcam) decodes through inputs.decode: a bad file gets NextNum's message, a header over
    the size limit is refused before any pixel is decoded, and a frame sent inline reads as the file does."""
    import base64

    import gradio as gr
    from gradio.data_classes import FileData, ImageData
    from PIL import ImageFile

    from nextnum import inputs
    gradio_fixes.install()
    cam = gr.Image(sources=["webcam"], streaming=True, type="numpy")
    (tmp_path / "notes.png").write_text("this is text, not a picture")
    Image.fromarray(np.full((40, 60), 200, np.uint8)).save(tmp_path / "whole.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "whole.png").read_bytes()[:60])
    for bad in ("notes.png", "cut.png"):
        with pytest.raises(gr.Error, match=f"{bad} is not an image NextNum can read"):
            cam.preprocess(FileData(path=str(tmp_path / bad), orig_name=bad))
    Image.new("L", (inputs.MAX_SIDE + 1, 10)).save(tmp_path / "wide.png")
    loads = []
    real_load = ImageFile.ImageFile.load
    ImageFile.ImageFile.load = lambda self: loads.append(1) or real_load(self)
    try:
        with pytest.raises(gr.Error, match="largest accepted side"):
            cam.preprocess(FileData(path=str(tmp_path / "wide.png"), orig_name="wide.png"))
    finally:
        ImageFile.ImageFile.load = real_load
    assert not loads, "decoded before its size was checked"
    got = cam.preprocess(FileData(path=str(tmp_path / "whole.png"), orig_name="whole.png"))
    assert got.shape == (40, 60, 3) and got.dtype == np.uint8  # the camera's RGB
    url = "data:image/png;base64," + base64.b64encode((tmp_path / "whole.png").read_bytes()).decode()
    np.testing.assert_array_equal(cam.preprocess(ImageData(url=url)), got)


def test_every_tab_sits_in_one_tab_bar(built_app):
    """A component placed beside the tabs rather than inside one splits Gradio's tab bar: the tabs after it
    show in a second bar, with their content on the page at the same time as the chosen tab's."""
    cfg = built_app.get_config_file()
    kinds = {c["id"]: c.get("type") for c in cfg["components"]}

    def find(node, kind):
        found = [node] if kinds.get(node["id"]) == kind else []
        return found + [n for child in node.get("children", []) for n in find(child, kind)]
    bars = find(cfg["layout"], "tabs")
    assert len(bars) == 1, f"{len(bars)} tab bars"
    assert [kinds[c["id"]] for c in bars[0]["children"]] == ["tabitem"] * 5
