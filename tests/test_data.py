"""Training canvases: seeded pages read through preprocess, well-formed targets, labels that match the ink
placed, no digit lost on the way."""
import numpy as np
import pytest
import torch

from nextnum.config import EOS, PAD, Config, DataConfig, ModelConfig
from nextnum.data import DigitBank, load_fixture, render

HW = (ModelConfig().img_h, ModelConfig().img_w)
K = DataConfig().max_len


@pytest.fixture(scope="module")
def bank():
    return load_fixture()


def draw(bank, n, seed, cfg=None, **kw):
    return render(bank, n, cfg or DataConfig(), HW, torch.Generator().manual_seed(seed), **kw)


def test_same_seed_same_canvases_other_seed_different(bank):
    a, b, c = draw(bank, 16, 0), draw(bank, 16, 0), draw(bank, 16, 1)
    assert torch.equal(a.images, b.images) and torch.equal(a.targets, b.targets)
    assert torch.equal(a.boxes, b.boxes)
    assert not torch.equal(a.images, c.images) and not torch.equal(a.targets, c.targets)


def test_canvases_targets_and_lengths_are_well_formed(bank):
    b = draw(bank, 300, 2, keep_all=True)
    assert b.images.shape == (300, 1, *HW) and b.images.dtype == torch.float32
    assert 0 <= b.images.min() and b.images.max() <= 1
    assert set(b.lengths.tolist()) == set(range(1, K + 1)), "every length should occur in 300 canvases"
    assert b.targets.shape == (300, K + 1)
    for t, n, text in zip(b.targets.tolist(), b.lengths.tolist(), b.texts):
        assert all(0 <= d <= 9 for d in t[:n]) and t[n] == EOS and all(p == PAD for p in t[n + 1:])
        assert text == "".join(map(str, t[:n]))


def test_max_len_caps_lengths(bank):
    assert draw(bank, 64, 3, max_len=2).lengths.max() <= 2


def test_digit_boxes_lie_on_the_canvas_left_to_right(bank):
    b = draw(bank, 200, 4)
    H, W = HW
    placed = torch.arange(K)[None] < b.lengths[:, None]  # (B, K)
    y0, y1, x0, x1 = b.boxes[placed].unbind(-1)
    tol = 3.0  # px: rotation, shear and the pen swing the ink a little past its unrotated box
    assert (y0 >= -tol).all() and (y1 <= H + tol).all() and (x0 >= -tol).all() and (x1 <= W + tol).all()
    assert (y1 > y0).all() and (x1 > x0).all()
    assert (b.boxes[~placed] == 0).all()
    cx = (b.boxes[..., 2] + b.boxes[..., 3]) / 2  # (B, K)
    for row, n in zip(cx, b.lengths):
        assert (row[1:n] > row[:n - 1]).all(), "digits must be placed in reading order"


def test_each_label_is_the_digit_drawn_in_its_box():
    # two "digits" that are easy to tell apart at a box's centre: a bar (label 8) and a ring (0)
    solid, ring = np.zeros((28, 28), np.uint8), np.zeros((28, 28), np.uint8)
    solid[4:24, 10:18] = 255
    ring[4:24, 4:24] = 255
    ring[7:21, 7:21] = 0
    bank = DigitBank.from_arrays(np.stack([solid, ring]), np.array([8, 0]))
    plain = DataConfig(rotate=0, shear=0, elastic=0, stroke_p=(0, 1, 0, 0), binarize_p=0, noise=0, specks=0,
                       light_p=0, stray_p=0, shade=0, invert_p=0, digit_px=(20, 28), gap=(0.1, 0.5))
    b = draw(bank, 64, 5, cfg=plain)
    assert {0, 8} <= set(b.targets.flatten().tolist())
    for img, tgt, boxes, n in zip(b.images[:, 0], b.targets, b.boxes, b.lengths):
        for d, (y0, y1, x0, x1) in zip(tgt[:n].tolist(), boxes[:n].tolist()):
            centre = img[round((y0 + y1) / 2), round((x0 + x1) / 2)]
            assert (centre > 0.9) if d == 8 else (centre < 0.1), f"label {d} but centre ink {centre:.2f}"


def test_every_canvas_is_what_preprocess_makes_of_its_page(bank):
    """The model trains on what the app reads: each canvas of a batch the trainer draws is preprocess's
    reading of that batch's page, at the shrink it was drawn with."""
    from nextnum.config import Config
    from nextnum.preprocess import preprocess
    from nextnum.stream import Batches
    cfg = Config()
    b = Batches(bank, cfg, 48, rank=1).draw(7)
    assert len(b.pages) == len(b.images) >= 40
    for page, canvas, shrink in zip(b.pages, b.images[:, 0].numpy(), b.shrink.tolist()):
        assert page.ndim == 2 and page.dtype == np.uint8 and page.shape[1] > page.shape[0]
        assert np.array_equal(preprocess(page, HW, shrink=shrink).canvas, canvas)


def test_preprocess_keeps_every_digit_of_the_pages_drawn(bank):
    """Over 1,000 pages of every kind the generator draws (light digits, marker-bold and hairline pens, dark
    and uneven paper, inverted, near the edge), preprocess finds the number on nearly every one, with every
    digit inside the ink box it reads."""
    gen = torch.Generator().manual_seed(11)
    lost = sum(render(bank, 250, DataConfig(), HW, gen).lost for _ in range(4))
    assert lost <= 20, f"{lost} of 1000 pages lost a digit"


def test_bank_boxes_and_split(bank):
    assert len(bank) == 300 and bank.images.shape == (300, 28, 28)
    assert 0 <= bank.images.min() and bank.images.max() <= 1
    y0, y1, x0, x1 = bank.boxes.unbind(-1)
    assert ((0 <= y0) & (y0 < y1) & (y1 <= 28) & (0 <= x0) & (x0 < x1) & (x1 <= 28)).all()
    train, val = bank.split(50)
    assert (len(train), len(val)) == (250, 50)
    assert torch.equal(torch.cat([train.labels, val.labels]), bank.labels)
    for bad in (0, 300):
        with pytest.raises(AssertionError):
            bank.split(bad)


def test_blank_digits_are_dropped():
    imgs = np.zeros((3, 28, 28), np.uint8)
    imgs[1, 5:20, 10:14] = 255
    bank = DigitBank.from_arrays(imgs, np.array([4, 1, 7]))
    assert bank.labels.tolist() == [1]
    assert bank.boxes.tolist() == [[5.0, 20.0, 10.0, 14.0]]


SYSTEM_FONTS = ["/usr/share/fonts/**/DejaVuSans*.ttf", "/usr/share/fonts/**/*.ttf"]


def test_font_patterns_that_match_nothing_name_the_fix(tmp_path):
    from nextnum.data import font_files
    assert font_files([]) == []
    with pytest.raises(FileNotFoundError, match="no font files match.*apt-get install"):
        font_files([str(tmp_path / "*.ttf")])


def test_font_digits_join_training_digits_at_the_configured_share(bank):
    from nextnum.data import font_files, render_font_digits, with_fonts
    try:
        files = font_files(SYSTEM_FONTS)[:3]
    except FileNotFoundError:
        pytest.skip("no TrueType fonts installed")
    fonts = render_font_digits(files)
    assert len(fonts) == 10 * len(files) and fonts.labels.tolist() == list(range(10)) * len(files)
    assert fonts.images.shape[1:] == (28, 28)
    # drawn like MNIST: the glyph's longer side is 20 px, centred
    h, w = fonts.boxes[:, 1] - fonts.boxes[:, 0], fonts.boxes[:, 3] - fonts.boxes[:, 2]
    assert (torch.maximum(h, w) >= 19).all() and (torch.maximum(h, w) <= 21).all()
    assert (h > w).float().mean() > 0.8  # digits are taller than wide
    # a "1" is never wider than an "8", and narrower on the whole
    assert (w[1::10] <= w[8::10]).all() and w[1::10].mean() < w[8::10].mean()
    cfg = DataConfig(fonts=[str(f) for f in files], font_share=0.25)
    mixed, used = with_fonts(bank, cfg)
    assert used == files
    assert torch.equal(mixed.images[:len(bank)], bank.images)  # the handwriting comes first, untouched
    share = (len(mixed) - len(bank)) / len(mixed)
    assert abs(share - 0.25) < 0.05, share
    same, none = with_fonts(bank, DataConfig())
    assert same is bank and none == []
    # and the generator draws them: canvases from a font-only bank carry their labels
    b = draw(fonts, 50, 0)
    assert b.images.amax() > 0.5 and set(b.texts[0]) <= set("0123456789")


def test_font_share_out_of_range_is_refused():
    with pytest.raises(ValueError, match="font_share"):
        Config.from_dict({"data": {"font_share": 1.0}})


def test_other_hands_add_flagged_ones_and_crossed_sevens_to_the_training_digits():
    """data.hands adds a share of the 1s with a flag (some with a foot) and of the 7s with a bar across the
    stem, as new digits after the bank's own; the same bank gives the same variants."""
    from nextnum.data import with_hands
    bank = load_fixture()
    cfg = DataConfig(hands=0.5)
    more = with_hands(bank, cfg)
    n1, n7 = round(0.5 * int((bank.labels == 1).sum())), round(0.5 * int((bank.labels == 7).sum()))
    assert len(more) == len(bank) + n1 + n7 and torch.equal(more.images[:len(bank)], bank.images)
    assert sorted(more.labels[len(bank):].tolist()) == [1] * n1 + [7] * n7
    assert torch.equal(with_hands(bank, cfg).images, more.images)
    assert with_hands(bank, DataConfig(hands=0.0)) is bank


@pytest.mark.parametrize("digit, short_p", [(1, 0.0), (1, 1.0), (7, None)])
def test_a_flag_or_a_bar_adds_ink_where_the_digit_had_none_and_takes_none_away(digit, short_p):
    """A one's flag reaches left of its top and, when long, slopes down more steeply than a seven's top bar (a
    long flat flag is a seven: MNIST's own sevens then read "1"); a short one reaches a fifth to nine twentieths
    of the height left, its stroke's width included (shorter, it is lost in that width; a seven's bar reaches
    half or more); a seven's bar lies about the middle of its height (a seven whose stroke already fills that
    row may get no new ink: at most one in ten)."""
    from nextnum.hands import cross_seven, flag_one
    bank = load_fixture()
    rng = np.random.default_rng(0)
    marked, steep, short = [], [], []
    for img in (bank.images[bank.labels == digit] * 255).round().to(torch.uint8).numpy():
        out = flag_one(img, rng, foot_p=0.0, short_p=short_p) if digit == 1 else cross_seven(img, rng)
        assert (out >= img).all()
        ys, xs = np.nonzero((out > 80) & (img <= 80))
        iy, ix = np.nonzero(img > 80)
        if digit == 1:
            top, xt = iy.min(), np.median(ix[iy <= iy.min() + 1])
            slope = (ys.max() - top) / max(xt - xs.min(), 1)  # drop over run: 0.5 is about 27 degrees
            marked.append(len(ys) >= 3 and xs.min() < xt - 1 and ys.min() <= top + 2)
            steep.append(slope >= 0.5)
            short.append(0.2 * (iy.max() - top + 1) <= xt - xs.min() <= 0.45 * (iy.max() - top + 1))
        else:
            marked.append(len(ys) >= 3 and 0.35 <= (np.median(ys) - iy.min()) / (iy.max() - iy.min()) <= 0.7)
    assert np.mean(marked) >= (1.0 if digit == 1 else 0.9), marked
    if short_p == 0.0:  # only a one leaning far right gets a flatter long flag
        assert np.mean(steep) >= 0.9, steep
    if short_p == 1.0:
        assert all(short), short


def test_a_long_flag_reaches_as_far_as_data_flag_long_says():
    """data.flag_long sets how far a long flag reaches from the one's top, of its height: long flags drawn at
    (0.6, 0.75) reach further than any at (0.3, 0.35); the bank's variants follow the config, and a range
    outside (0, 1] is refused."""
    from nextnum.data import with_hands
    from nextnum.hands import flag_one
    bank = load_fixture()
    ones = (bank.images[bank.labels == 1] * 255).round().to(torch.uint8).numpy()

    def reach(long: tuple[float, float]) -> np.ndarray:
        rng, out = np.random.default_rng(0), []
        for img in ones:
            new = flag_one(img, rng, foot_p=0.0, short_p=0.0, long=long)
            ys, xs = np.nonzero((new > 80) & (img <= 80))
            iy, ix = np.nonzero(img > 80)
            top, xt = iy.min(), np.median(ix[iy <= iy.min() + 1])
            out.append(np.hypot(ys - top, xs - xt).max() / (iy.max() - top + 1))
        return np.array(out)

    short, far = reach((0.3, 0.35)), reach((0.6, 0.75))
    assert far.min() > short.max(), (short.max(), far.min())
    assert np.median(far) >= 0.6 and np.median(short) <= 0.45  # the stroke's own width adds a little
    default, longer = with_hands(bank, DataConfig(hands=1.0)), with_hands(bank, DataConfig(hands=1.0, flag_long=(0.6, 0.75)))
    assert not torch.equal(default.images, longer.images)
    with pytest.raises(ValueError, match="flag_long"):
        Config.from_dict({"data": {"flag_long": [0.5, 1.5]}})
