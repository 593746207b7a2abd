"""A camera's pages (DataConfig.blur, blotch, jpeg_p) and lined paper (ruled_p): each setting does what it
says, is off by default, and preprocess still finds every digit on such pages."""
import cv2
import numpy as np
import pytest
import torch

from nextnum.config import DataConfig
from nextnum.data import load_fixture, render
from nextnum.scenes import draw

HW = (56, 224)
PLAIN = dict(noise=0.0, specks=0, stray_p=0.0, invert_p=0.0, shade=0.0)  # nothing else changes a page


@pytest.fixture(scope="module")
def bank():
    return load_fixture()


def pages(bank, seed=0, n=48, **kw):
    return draw(bank, n, DataConfig(**{**PLAIN, **kw}), torch.Generator().manual_seed(seed)).images


def test_camera_settings_are_off_by_default_so_existing_pages_stay_as_they_were(bank):
    d = DataConfig()
    assert d.blur == d.blotch == d.jpeg_p == d.ruled_p == 0
    assert np.array_equal(pages(bank, blur=0.0, blotch=0.0, jpeg_p=0.0, ruled_p=0.0), pages(bank))


def test_blur_softens_the_strokes(bank):
    """Mean squared Laplacian (edge sharpness) of blurred pages is well under that of sharp ones."""
    def sharpness(imgs):
        return float(np.mean([np.mean(cv2.Laplacian(p.astype(np.float32), cv2.CV_32F) ** 2) for p in imgs]))
    assert sharpness(pages(bank, blur=2.0)) < 0.6 * sharpness(pages(bank))


def test_blotch_dims_the_paper_in_patches(bank):
    """Without shadows a page's paper (away from the ink) is one level; with them it varies across the page."""
    def paper_spread(imgs):
        return float(np.mean([np.percentile(p, 90) - np.percentile(p, 30) for p in imgs]))
    assert paper_spread(pages(bank)) <= 1
    assert paper_spread(pages(bank, blotch=0.5)) >= 8


def test_jpeg_pages_are_what_a_jpeg_decoder_gives(bank):
    """A page saved as JPEG at quality q hardly changes when saved again at q; a page never saved does."""
    def resave_change(imgs, q=30):
        return float(np.mean([np.abs(cv2.imdecode(cv2.imencode(".jpg", p, [cv2.IMWRITE_JPEG_QUALITY, q])[1],
                                                  cv2.IMREAD_GRAYSCALE).astype(int) - p).mean() for p in imgs]))
    saved, raw = resave_change(pages(bank, jpeg_p=1.0, jpeg_q=(30, 30))), resave_change(pages(bank))
    assert saved < 0.5 * raw, (saved, raw)


def test_lined_pages_have_lines_across_the_page(bank):
    """On lined paper faint marks off the digits run across most of the page's columns (lines, broken only
    behind the digits); on plain paper next to nothing off the digits is darker than the paper."""
    def line_cover(sc):
        out = []
        for p, boxes, n in zip(sc.images, sc.boxes, sc.lengths.tolist()):
            off = (p < np.median(p) - 8).astype(np.uint8)
            for y0, y1, x0, x1 in boxes[:n].round().int().tolist():
                off[max(0, y0 - 3):y1 + 3, max(0, x0 - 3):x1 + 3] = 0
            out.append(float(off.any(axis=0).mean()))
        return np.array(out)
    kw = dict(PLAIN, digit_px=(40.0, 48.0), rotate=0.0, shear=0.0, elastic=0.0, stroke_p=(0.0, 1.0, 0.0, 0.0))
    lined = line_cover(draw(bank, 48, DataConfig(ruled_p=1.0, **kw), torch.Generator().manual_seed(0)))
    plain = line_cover(draw(bank, 48, DataConfig(**kw), torch.Generator().manual_seed(0)))
    assert np.mean(lined >= 0.5) >= 0.8, lined
    assert plain.max() < 0.15, plain  # a few columns where a stroke leaves its box


def test_preprocess_keeps_every_digit_of_camera_pages(bank):
    """On 500 pages with blur, soft shadows, JPEG and lined paper over everything else the generator draws,
    preprocess finds the number on nearly every one, every digit inside the ink box it reads."""
    cfg = DataConfig(blur=1.5, blotch=0.5, jpeg_p=0.5, ruled_p=0.2, digit_px=(16.0, 48.0))
    gen = torch.Generator().manual_seed(12)
    lost = sum(render(bank, 250, cfg, HW, gen).lost for _ in range(2))
    assert lost <= 15, f"{lost} of 500 pages lost a digit"
