"""Pictures inside the answer: a JPEG data URL decodes to the picture sent, at its size, with its captions."""
import base64

import cv2
import numpy as np
import pytest

from nextnum.web.inline import InlineGallery, InlineImage, jpeg_url


def decoded(url: str) -> np.ndarray:
    assert url.startswith("data:image/jpeg;base64,")
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8), 1),
                        cv2.COLOR_BGR2RGB)


@pytest.mark.parametrize("channels", [None, 3, 4])
def test_a_picture_comes_back_as_itself(channels):
    rgb = np.zeros((60, 90, 3), np.uint8)
    rgb[:, :45] = (250, 120, 10)  # an orange half, a black half
    img = rgb[..., 0] if channels is None else rgb if channels == 3 else np.dstack([rgb, np.full((60, 90), 255, np.uint8)])
    got = decoded(jpeg_url(img)).astype(int)
    want = np.dstack([img] * 3) if channels is None else rgb
    assert got.shape == (60, 90, 3) and np.abs(got - want).mean() < 4


def test_image_and_gallery_send_their_pictures_inline_with_captions():
    img = np.full((20, 30, 3), 200, np.uint8)
    one = InlineImage(render=False).postprocess(img)
    assert one.path is None and decoded(one.url).shape == (20, 30, 3)
    assert InlineImage(render=False).postprocess(None) is None
    gallery = InlineGallery(render=False).postprocess([(img, "digit 1: 4 (99%)"), img]).root
    assert [g.caption for g in gallery] == ["digit 1: 4 (99%)", None]
    assert all(g.image.path is None and decoded(g.image.url).shape == (20, 30, 3) for g in gallery)
    assert InlineGallery(render=False).postprocess(None).root == []
    assert InlineImage(render=False).get_block_name() == "image"  # drawn by gr.Image's own frontend
