"""Attention pictures: rollout is row-stochastic, token maps land where their tokens are on the
non-square grid, overlays keep the image's size and only change where there is attention."""
import numpy as np
import pytest
import torch

from nextnum import attention as A
from nextnum.config import Config, ModelConfig

CFGS = {"default": Config.load("configs/default.json").model, "smoke": Config.load("configs/smoke.json").model,
        "plain": ModelConfig(),
        # number-shaped 56x224 canvases: 6x27 overlapping tokens, and 5x26 after a 3-conv stem
        "strip": Config.load("configs/compare-strip.json").model, "wide": Config.load("configs/compare-wide.json").model}


def random_attention(L: int, H: int, N: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(L, H, N, N, generator=g).mul(3).softmax(-1)  # (L, H, N, N), rows sum to 1


@pytest.mark.parametrize("discard", [0.0, 0.5, 0.9])
def test_rollout_rows_sum_to_one(discard):
    r = A.rollout(random_attention(3, 4, 21), discard_ratio=discard)
    assert r.shape == (21, 21) and (r >= 0).all()
    np.testing.assert_allclose(r.sum(-1), 1.0, atol=1e-9)


def test_rollout_of_self_attention_only_is_the_identity():
    eye = torch.eye(10).expand(2, 3, 10, 10)
    np.testing.assert_allclose(A.rollout(eye), np.eye(10), atol=1e-12)


def test_rollout_follows_the_flow_through_layers():
    # every token reads only token 0; with the residual, each layer moves half of what is left there
    a = torch.zeros(2, 1, 5, 5)
    a[..., 0] = 1
    r = A.rollout(a)
    np.testing.assert_allclose(r[1:, 0], 0.75)
    np.testing.assert_allclose(np.diag(r)[1:], 0.25)
    assert r[0, 0] == 1


@pytest.mark.parametrize("name", list(CFGS))
def test_to_grid_handles_non_square_grids(name):
    gh, gw = CFGS[name].grid
    assert gh != gw, "the strip is wide: the grid should not be square"
    w = torch.zeros(2, 3, gh * gw)
    w[1, 2, gw + 2] = 1  # token (row 1, col 2)
    g = A.to_grid(w, (gh, gw))
    assert g.shape == (2, 3, gh, gw) and g[1, 2, 1, 2] == 1 and g.sum() == 1
    with pytest.raises(ValueError):
        A.to_grid(torch.zeros(gh * gw + 1), (gh, gw))


@pytest.mark.parametrize("name", list(CFGS))
def test_a_token_lands_at_its_centre_on_the_canvas(name):
    cfg = CFGS[name]
    gh, gw = cfg.grid
    ys, xs = cfg.token_centres()
    for r, c in ((0, 0), (gh - 1, gw - 1), (gh // 2, gw // 3)):
        m = np.zeros((gh, gw), np.float32)
        m[r, c] = 1
        canvas = A.grid_to_canvas(m, cfg)
        assert canvas.shape == (cfg.img_h, cfg.img_w)
        y, x = np.unravel_index(canvas.argmax(), canvas.shape)
        assert abs(y + 0.5 - ys[r]) <= cfg.cell / 2 and abs(x + 0.5 - xs[c]) <= cfg.cell / 2


def test_overlay_keeps_the_image_outside_the_attention():
    img = np.random.default_rng(0).integers(0, 256, (60, 90, 3), dtype=np.uint8)
    m = np.zeros((60, 90), np.float32)
    m[10:20, 30:50] = 1.0
    out = A.overlay(img, m)
    assert out.shape == img.shape and out.dtype == np.uint8
    outside = m == 0
    assert (out[outside] == img[outside]).all() and (out[~outside] != img[~outside]).any()
    np.testing.assert_array_equal(A.overlay(img, m, rect=(30, 10, 50, 20)), out)
    assert A.overlay(img[..., 0], m).shape == img.shape, "grey images are drawn on in RGB"


def test_colorize_uses_the_colormap_ends_in_rgb():
    rgb = A.colorize(np.array([[0.0, 1.0]], np.float32), "viridis")
    assert rgb.shape == (1, 2, 3)
    # matplotlib's viridis runs from dark purple to yellow: in RGB order, not OpenCV's BGR
    np.testing.assert_array_equal(rgb[0, 0], (68, 1, 84))
    np.testing.assert_array_equal(rgb[0, 1], (253, 231, 37))
    np.testing.assert_array_equal(A.colorize(np.array([[1.0]], np.float32), "inferno")[0, 0], (252, 255, 164))
    with pytest.raises(ValueError, match="colormap"):
        A.colorize(np.zeros((2, 2), np.float32), "no-such-map")


def test_combined_colours_each_digit_where_it_looked():
    img = np.full((40, 80, 3), 255, np.uint8)
    left, right = np.zeros((40, 80), np.float32), np.zeros((40, 80), np.float32)
    left[:, :40], right[:, 40:] = 1.0, 1.0
    out = A.combined(img, [left, right], alpha=1.0)
    np.testing.assert_array_equal(out[20, 10], A.DIGIT_COLOURS[0])
    np.testing.assert_array_equal(out[20, 70], A.DIGIT_COLOURS[1])
    assert A.combined(img, []).shape == img.shape


def test_mask_tokens_blanks_only_their_cells():
    cfg = CFGS["default"]
    canvas = np.ones((cfg.img_h, cfg.img_w), np.float32)
    out = A.mask_tokens(canvas, np.array([0, cfg.grid[1] + 1]), cfg)
    assert out[: cfg.field, : cfg.field].max() == 0 and out[cfg.cell: cfg.cell + cfg.field, cfg.cell: cfg.cell + cfg.field].max() == 0
    assert out.sum() == canvas.sum() - 2 * cfg.field ** 2 and canvas.min() == 1, "the input is left alone"


def test_top_tokens_and_normalise_map():
    m = np.array([0.1, 0.5, 0.2, 0.9])
    assert list(A.top_tokens(m, 0.5)) == [3, 1] and len(A.top_tokens(m, 0.0)) == 1
    np.testing.assert_allclose(A.normalise_map(m).max(), 1.0)
    assert A.normalise_map(np.zeros(3)).max() == 0
