"""The one decoder every encoded image goes through (inputs.decode): sizes checked from the header before any
pixel is decoded, EXIF orientation, first frames and pages, every PIL mode, and drawings only as data URLs."""
from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image, ImageFile, PngImagePlugin

from nextnum import inputs
from nextnum.inputs import ImageError, from_data_url, read_image, to_array


def saved(img: Image.Image, fmt: str, **kw) -> io.BytesIO:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    buf.seek(0)
    return buf


def marked(w: int = 60, h: int = 30) -> Image.Image:
    """A grey picture with a black square at its top-left corner: where it ends up tells the orientation."""
    a = np.full((h, w), 200, np.uint8)
    a[:10, :10] = 0
    return Image.fromarray(a)


@pytest.fixture
def no_decoding(monkeypatch):
    """Fails the test if any pixel data is decoded."""
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("decoded before the size check"))


@pytest.mark.parametrize("size,mode", [((inputs.MAX_SIDE + 1, 10), "L"), ((4001, 4000), "L"), ((4100, 4000), "F"),
                                       ((4100, 4000), "RGBA"), ((4500, 4000), "I;16")])
def test_a_header_over_the_budget_is_refused_before_decoding(size, mode, no_decoding):
    src = saved(Image.new(mode, size), "TIFF" if mode == "F" else "PNG")
    with pytest.raises(ImageError, match="NextNum reads images of at most"):
        inputs.decode(src, "big")


def test_text_chunks_over_pils_limits_are_refused_not_decoded_another_way():
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "x" * (3 * 2**20), zip=True)
    with pytest.raises(ImageError, match="not an image NextNum can read"):
        inputs.decode(saved(Image.new("L", (100, 100)), "PNG", pnginfo=info), "ztxt.png")


@pytest.mark.parametrize("orientation,corner", [(1, (0, 0)), (3, (-1, -1)), (6, (0, -1)), (8, (-1, 0))])
def test_exif_orientation_is_applied(orientation, corner):
    exif = Image.Exif()
    exif[0x0112] = orientation
    arr, width = inputs.decode(saved(marked().convert("RGB"), "JPEG", exif=exif, quality=95), "photo.jpg")
    turned = orientation in (6, 8)
    assert arr.shape[:2] == ((60, 30) if turned else (30, 60)) and width == arr.shape[1]
    y, x = corner
    assert arr[y, x].mean() < 60, "the black corner is not where the orientation puts it"


def test_the_first_frame_of_a_gif_and_the_first_page_of_a_tiff_are_read():
    first, second = Image.new("L", (40, 20), 0), Image.new("L", (40, 20), 255)
    gif = saved(first.convert("P"), "GIF", save_all=True, append_images=[second.convert("P")], duration=100)
    tif = saved(first, "TIFF", save_all=True, append_images=[second])
    for src in (gif, tif):
        arr, _ = inputs.decode(src, "many")
        assert arr.shape[:2] == (20, 40) and arr.max() < 30


def in_mode(mode: str) -> tuple[Image.Image, str]:
    """marked() in a PIL mode, and a format that stores that mode."""
    base = np.asarray(marked())
    if mode == "I;16":
        return Image.fromarray(base.astype(np.uint16) * 257), "PNG"
    if mode == "I":
        return Image.fromarray(base.astype(np.int32) * 257), "TIFF"
    if mode == "F":
        return Image.fromarray(base.astype(np.float32) / 255), "TIFF"
    return marked().convert(mode), {"CMYK": "TIFF", "YCbCr": "JPEG"}.get(mode, "PNG")


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F", "YCbCr"])
def test_every_mode_reads_as_uint8_grey_rgb_or_rgba(mode, tmp_path):
    img, fmt = in_mode(mode)
    img.save(tmp_path / f"img.{fmt.lower()}", fmt)
    arr = to_array(tmp_path / f"img.{fmt.lower()}")
    assert arr.dtype == np.uint8 and arr.ndim in (2, 3) and arr.shape[:2] == (30, 60)
    grey = arr if arr.ndim == 2 else arr[..., :3].mean(2)
    assert grey[:10, :10].mean() < 80 < grey[20:, 30:].mean(), mode


def test_a_large_jpeg_is_decoded_reduced_and_its_zoom_says_so(tmp_path):
    img = Image.new("L", (6000, 2000), 255)
    img.paste(0, (0, 0, 600, 600))
    img.save(tmp_path / "big.jpg", quality=90)
    arr, zoom = read_image(tmp_path / "big.jpg")
    assert max(arr.shape) <= inputs.READ_SIDE
    assert zoom == pytest.approx(6000 / arr.shape[1])  # boxes are reported in the pixels of the file


def test_a_drawing_is_read_only_from_a_data_url(tmp_path):
    Image.new("L", (30, 10), 255).save(tmp_path / "x.png")
    url = "data:image/png;base64," + base64.b64encode((tmp_path / "x.png").read_bytes()).decode()
    assert from_data_url(url).shape == (10, 30)
    for value in (str(tmp_path / "x.png"), str(tmp_path / "none.png"), tmp_path / "x.png", "/etc/passwd",
                  {"composite": str(tmp_path / "x.png")}, {"path": "/etc/passwd"}, 42, b"data:"):
        with pytest.raises(ImageError) as e:
            from_data_url(value)
        assert str(e.value) == inputs.NOT_A_DRAWING  # one message, whatever it names


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path, monkeypatch):
    monkeypatch.setattr(inputs, "MAX_FILE", 1000)
    (tmp_path / "big.png").write_bytes(b"\x89PNG" + bytes(2000))
    with pytest.raises(ImageError, match="big.png is 0 MB; NextNum reads image files of at most"):
        to_array(tmp_path / "big.png")
