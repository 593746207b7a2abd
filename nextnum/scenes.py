"""Images of numbers as a person makes them: MNIST (or font) digits laid out in a row, drawn with one pen on
paper, and photographed or drawn on a pad. Training and evaluation read these images through preprocess,
exactly as the app reads a drawing or a photo (data.render).

One pass for the whole batch: every digit gets an affine map (size, aspect, rotation, shear, place in the
row) and its own elastic warp, and is sampled with one grid_sample onto a square patch around it; the pen
(stroke width, binarised or soft edges) acts on the patches; the patches are laid onto the page with max,
so touching and overlapping digits come for free. The page then gets its paper (level, uneven light),
ink darkness, light (pencil) digits, specks, a stray mark, sensor noise, and sometimes inverted polarity;
a camera's page also soft shadows, blur and JPEG (DataConfig.blotch, blur, jpeg_p); some are lined (ruled_p).
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .config import EOS, PAD, DataConfig

PATCH = 48  # px of the square each digit is first drawn on


@dataclass
class Scenes:
    """B images of numbers with what is known about them."""
    images: np.ndarray  # (B, H, W) uint8 grey pages
    targets: Tensor  # (B, max_len + 1) int64: digits, EOS, then PAD
    lengths: Tensor  # (B,) number of digits
    boxes: Tensor  # (B, max_len, 4) each digit's box on the page, px: y0, y1, x0, x1 (zeros past length)
    shrink: Tensor  # (B,) the fit shrink each page is read at (DataConfig.fit_shrink)

    @property
    def texts(self) -> list[str]:
        return texts(self.targets, self.lengths)


def texts(targets: Tensor, lengths: Tensor) -> list[str]:
    """Each row's digits as a string: targets (B, T) digits first, lengths (B,)."""
    return ["".join(str(int(d)) for d in t[:n]) for t, n in zip(targets, lengths)]


def fixed_pages(bank, samples: int, cfg: DataConfig, seed: int, shrink: float, batch: int = 250) -> Iterator[Scenes]:
    """A reproducible set of pages (same seed -> same pages), in batches, each read at `shrink`."""
    gen = torch.Generator().manual_seed(seed)
    for i in range(0, samples, batch):
        yield draw(bank, min(batch, samples - i), cfg, gen, shrink=shrink)


def _pen(patches: Tensor, radius: Tensor) -> Tensor:
    """Thicken (radius > 0) or thin (< 0) each patch's strokes by |radius| px. patches: (N, 1, P, P)."""
    out = patches.clone()
    for r in radius.unique().tolist():
        if r == 0:
            continue
        sel = radius == r
        k = 2 * abs(int(r)) + 1
        x = patches[sel] if r > 0 else -patches[sel]
        x = F.max_pool2d(F.max_pool2d(x, (1, k), 1, (0, k // 2)), (k, 1), 1, (k // 2, 0))  # a square, in two passes
        out[sel] = x if r > 0 else -x
    return out


def draw(bank, n: int, cfg: DataConfig, gen: torch.Generator, max_len: int | None = None,
         lengths: Tensor | None = None, shrink: float | None = None) -> Scenes:
    """n pages of cfg.min_len..max_len digits (uniform), deterministic given gen's state.

    shrink: the fit shrink to read every page at (None: drawn per page from cfg.fit_shrink)."""
    K = cfg.max_len
    hi = min(max_len or K, K)

    def U(lo: float, hi_: float, *shape: int) -> Tensor:
        return lo + (hi_ - lo) * torch.rand(shape, generator=gen)

    L = lengths if lengths is not None else torch.randint(cfg.min_len, hi + 1, (n,), generator=gen)
    idx = torch.randint(0, len(bank), (n, K), generator=gen)
    valid = torch.arange(K)[None] < L[:, None]  # (B, K)
    lay = _layout(bank.boxes[idx], valid, cfg, U)
    b_idx, k_idx = valid.nonzero(as_tuple=True)  # (N,), (N,): the digits drawn
    P = int(math.ceil(1.5 * float(lay.size[valid].max()))) + 4  # px of the square patch each digit is laid from
    corner = torch.floor(lay.centre[b_idx, k_idx]) - P // 2  # (N, 2) the patch's top-left page px
    patches = _sample(bank, idx[b_idx, k_idx], lay, b_idx, k_idx, corner, P, cfg, U, gen)
    patches = _stroke(patches, b_idx, k_idx, L, lay.px, P, cfg, U, gen)
    images = _page(_paste(patches, b_idx, corner, n, lay.hw), cfg, gen, lay.px)
    targets = torch.full((n, K + 1), PAD, dtype=torch.int64)
    targets[:, :K] = torch.where(valid, bank.labels[idx], PAD)
    targets[torch.arange(n), L] = EOS
    fit = torch.full((n,), float(shrink)) if shrink is not None else U(*cfg.fit_shrink, n)
    return Scenes(images, targets, L, lay.boxes, fit)


@dataclass
class _Layout:
    """Where each digit of a batch of pages goes."""
    px: float  # one digit height, px
    hw: tuple[int, int]  # the pages' size, px
    centre: Tensor  # (B, K, 2) each digit's centre on its page, px: x, y
    size: Tensor  # (B, K, 2) each digit's box, px: width, height
    boxes: Tensor  # (B, K, 4) y0, y1, x0, x1, px (zeros past the number's length)


def _layout(box: Tensor, valid: Tensor, cfg: DataConfig, U) -> _Layout:
    """The row of digits: sizes, gaps and baseline jitter in units of one digit height, then pixels at the
    batch's digit height, each number placed at random within its page's margins. box: (B, K, 4) ink boxes
    in the source digits."""
    n, K = valid.shape
    ih, iw = box[..., 1] - box[..., 0], box[..., 3] - box[..., 2]
    s = U(*cfg.scale, n, K)  # height
    w = s * iw / ih * U(*cfg.aspect, n, K)  # width
    adv = (w + U(*cfg.gap, n, K) * s.mean(1, keepdim=True)) * valid
    x0 = torch.cumsum(adv, 1) - adv  # exclusive cumsum: left edge of each digit
    cx, cy = x0 + w / 2, U(-cfg.jitter_y, cfg.jitter_y, n, K)
    inf = torch.tensor(math.inf)
    left, right = torch.where(valid, x0, inf).amin(1), torch.where(valid, x0 + w, -inf).amax(1)
    top, bottom = torch.where(valid, cy - s / 2, inf).amin(1), torch.where(valid, cy + s / 2, -inf).amax(1)
    px = float(math.exp(U(math.log(cfg.digit_px[0]), math.log(cfg.digit_px[1]), 1)))  # one digit height, px
    margin = U(*cfg.margin, n, 4) * px  # left, right, top, bottom
    H = int(math.ceil(((bottom - top) * px + margin[:, 2] + margin[:, 3]).max()))
    Wd = int(math.ceil(((right - left) * px + margin[:, 0] + margin[:, 1]).max()))
    ox = margin[:, 0] + U(0, 1, n) * (Wd - (right - left) * px - margin[:, 0] - margin[:, 1]) - left * px
    oy = margin[:, 2] + U(0, 1, n) * (H - (bottom - top) * px - margin[:, 2] - margin[:, 3]) - top * px
    pcx, pcy = ox[:, None] + cx * px, oy[:, None] + cy * px  # (B, K) digit centres, px
    ph, pw = s * px, w * px
    boxes = torch.stack([pcy - ph / 2, pcy + ph / 2, pcx - pw / 2, pcx + pw / 2], -1) * valid[..., None]
    return _Layout(px, (H, Wd), torch.stack([pcx, pcy], -1), torch.stack([pw, ph], -1), boxes)


def _sample(bank, d: Tensor, lay: _Layout, b_idx: Tensor, k_idx: Tensor, corner: Tensor, P: int,
            cfg: DataConfig, U, gen: torch.Generator) -> Tensor:
    """Each digit d (N,) of the bank onto its P x P patch, (N, 1, PATCH, PATCH): rotated, sheared and
    elastically warped, patch px -> source px by src = M (p - c) + centre_of_ink."""
    N = len(d)
    th = torch.deg2rad(U(-cfg.rotate, cfg.rotate, N))
    sh = U(-cfg.shear, cfg.shear, N)
    cos, sin = torch.cos(th), torch.sin(th)
    rinv = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)  # (N, 2, 2)
    shinv = torch.zeros_like(rinv)
    shinv[:, 0, 0], shinv[:, 0, 1], shinv[:, 1, 1] = 1, -sh, 1
    bx = bank.boxes[d]
    size = lay.size[b_idx, k_idx]  # (N, 2) w, h
    sx, sy = (bx[:, 3] - bx[:, 2]) / size[:, 0], (bx[:, 1] - bx[:, 0]) / size[:, 1]
    M = torch.stack([sx, sy], -1)[..., None] * (shinv @ rinv)  # (N, 2, 2), rows act on (x, y)
    src_c = torch.stack([(bx[:, 2] + bx[:, 3]) / 2, (bx[:, 0] + bx[:, 1]) / 2], -1)  # (N, 2) x, y
    c = lay.centre[b_idx, k_idx]  # (N, 2) page px
    D = torch.tensor([P / 2, P / 2])
    A = (2 / 28) * M * D
    t = (2 / 28) * ((M @ (D - (c - corner))[..., None])[..., 0] + src_c) - 1
    # sampled at PATCH px (MNIST's 28 px hold no more detail), the pen applied there, then enlarged to P
    grid = F.affine_grid(torch.cat([A, t[..., None]], -1), [N, 1, PATCH, PATCH], align_corners=False)
    if cfg.elastic > 0:  # Simard et al. 2003: a smooth random displacement, elastic px at a digit height of 56 px
        coarse = torch.randn(N, 2, 3, 3, generator=gen) * (cfg.elastic * lay.px / 56 * 2 / P)
        grid = grid + F.interpolate(coarse, size=(PATCH, PATCH), mode="bilinear", align_corners=False).permute(0, 2, 3, 1)
    return F.grid_sample(bank.images[d][:, None], grid, align_corners=False)  # (N, 1, PATCH, PATCH)


def _stroke(patches: Tensor, b_idx: Tensor, k_idx: Tensor, L: Tensor, px: float, P: int, cfg: DataConfig, U,
            gen: torch.Generator) -> Tensor:
    """The pen, one per page: thinner to marker-bold, soft or hard edges, and one digit of some pages
    lighter, like a pencil. patches (N, 1, PATCH, PATCH) -> (N, 1, P, P)."""
    n = len(L)
    u = torch.rand(n, generator=gen)
    p0, p1, p2, _ = cfg.stroke_p
    thin = (u < p0)[b_idx]
    if thin.any():  # a finer pen: only the stroke's core, above a level, at full strength (eroding breaks strokes,
        lvl = U(0.3, 0.6, n)[b_idx][thin][:, None, None, None]  # and so do levels above 0.6 on fainter strokes)
        patches[thin] = ((patches[thin] - lvl) / (1 - lvl)).clamp(0, 1)
    frac = torch.where(u < p0 + p1, torch.zeros(n), torch.where(
        u < p0 + p1 + p2, U(0, 0.06, n), U(0.06, 0.10, n)))  # bolder: stroke radius grown by this / digit height
    # (marker-bold up to 0.10, as the boldest real-looking pens: beyond it loops close and digits merge into blobs)
    patches = _pen(patches, torch.round(frac * px * PATCH / P)[b_idx].to(torch.int64))
    light = torch.ones(n, cfg.max_len)
    some = torch.rand(n, generator=gen) < cfg.light_p  # one digit written lighter, like a pencil
    which = (torch.rand(n, generator=gen) * L).long()
    light[some, which[some]] = U(*cfg.light, int(some.sum()))
    if P != PATCH:
        patches = F.interpolate(patches, size=(P, P), mode="bilinear", align_corners=False)
    hard = (torch.rand(n, generator=gen) < cfg.binarize_p)[b_idx]
    if hard.any():  # at the page's scale: edges one pixel soft, as a drawing's are
        patches[hard] = F.avg_pool2d((patches[hard] > 0.4).float(), 3, 1, 1, count_include_pad=False)
    return patches * light[b_idx, k_idx][:, None, None, None]


def _paste(patches: Tensor, b_idx: Tensor, corner: Tensor, n: int, hw: tuple[int, int]) -> Tensor:
    """The patches (N, 1, P, P) onto n pages (n, H, W) of ink, merged with max, so touching and overlapping
    digits come for free; a patch over the page's edge is clipped there."""
    (H, Wd), P = hw, patches.shape[-1]
    ink = torch.zeros(n, H, Wd)
    for j, (b, x, y) in enumerate(zip(b_idx.tolist(), corner[:, 0].long().tolist(), corner[:, 1].long().tolist())):
        ya, yb, xa, xb = max(y, 0), min(y + P, H), max(x, 0), min(x + P, Wd)  # ~3 digits a page: slices beat a scatter
        if ya < yb and xa < xb:
            ink[b, ya:yb, xa:xb] = torch.maximum(ink[b, ya:yb, xa:xb], patches[j, 0, ya - y:yb - y, xa - x:xb - x])
    return ink


def _rules(ink: Tensor, px: float, p: float, U, gen: torch.Generator) -> Tensor:
    """ink (B, H, W) with notebook lines under it on a share p of the pages: thin, faint, evenly spaced (0.9-2
    digit heights apart), a little tilted, anti-aliased. Every page draws its line's settings (the draws stay
    the same whichever pages are lined); only the lined pages are computed."""
    B, H, W = ink.shape
    on = (torch.rand(B, generator=gen) < p).nonzero()[:, 0]
    step, phase = U(0.9, 2.0, B)[on, None, None] * px, U(0, 1, B)[on, None, None]
    tilt, half = torch.tan(torch.deg2rad(U(-3, 3, B)))[on, None, None], U(0.3, 0.8, B)[on, None, None]
    dark = U(0.15, 0.5, B)[on, None, None]
    if len(on):
        yy, xx = torch.arange(H, dtype=torch.float32)[:, None], torch.arange(W, dtype=torch.float32)[None]
        d = torch.remainder((yy - xx * tilt) / step + phase, 1.0)
        d = torch.minimum(d, 1 - d) * step  # px from the nearest line's centre
        ink[on] = torch.maximum(ink[on], dark * (half + 0.5 - d).clamp(0, 1))
    return ink


def _smooth(coarse: Tensor, H: int, W: int) -> Tensor:
    """(B, h, w) -> (B, H, W), bicubic as F.interpolate(align_corners=False) does it, as two small matrix
    products (bicubic is separable and linear: its matrices are its images of the unit vectors)."""
    _, h, w = coarse.shape
    rows = F.interpolate(torch.eye(h)[:, None, :, None], size=(H, 1), mode="bicubic", align_corners=False)
    cols = F.interpolate(torch.eye(w)[:, None, None, :], size=(1, W), mode="bicubic", align_corners=False)
    return rows[:, 0, :, 0].T @ coarse @ cols[:, 0, 0, :]


def _page(ink: Tensor, cfg: DataConfig, gen: torch.Generator, px: float) -> np.ndarray:
    """Ink (B, H, W) in [0, 1] -> uint8 grey pages: specks and a stray mark, the ink's darkness on paper of
    some level and uneven light, blur, sensor noise, sometimes light ink on a dark ground, JPEG."""
    B, H, W = ink.shape

    def U(lo: float, hi: float, *shape: int) -> Tensor:
        return lo + (hi - lo) * torch.rand(shape, generator=gen)
    if cfg.specks > 0:
        k = torch.randint(0, cfg.specks + 1, (B,), generator=gen)
        b = torch.repeat_interleave(torch.arange(B), k)
        ink[b, torch.randint(0, H, (len(b),), generator=gen), torch.randint(0, W, (len(b),), generator=gen)] = 1.0
    stray = (torch.rand(B, generator=gen) < cfg.stray_p).nonzero()[:, 0]
    if len(stray):  # a short thin line somewhere on the page: a slip of the pen, a mark on the paper
        n = len(stray)
        x0, y0 = U(0, W, n), U(0, H, n)
        ang, length = U(0, math.pi, n), U(0.2, 0.6, n) * px
        for i, b in enumerate(stray.tolist()):
            steps = torch.linspace(0, 1, int(length[i]) + 2)
            xs = (x0[i] + steps * length[i] * torch.cos(ang[i])).long().clamp(0, W - 1)
            ys = (y0[i] + steps * length[i] * torch.sin(ang[i])).long().clamp(0, H - 1)
            ink[b, ys, xs] = 1.0
    paper = U(*cfg.paper, B)[:, None, None]
    # uneven light: a linear ramp across the page in a random direction, up to `shade` darker at one side
    ang = U(0, 2 * math.pi, B)
    yy, xx = torch.linspace(-0.5, 0.5, H)[:, None], torch.linspace(-0.5, 0.5, W)[None]
    # the page-sized arithmetic is done in place (each step as written, so the same values): fewer page-sized
    # temporaries make drawing a batch cheaper
    ramp = (torch.cos(ang)[:, None, None] * xx + torch.sin(ang)[:, None, None] * yy).mul_(W / max(H, W))
    # paper x (1 - shade x (ramp + 0.5))
    paper = ramp.add_(0.5).mul_(U(0, cfg.shade, B)[:, None, None]).neg_().add_(1).mul_(paper)
    if cfg.blotch > 0:  # soft shadows: a smooth field of dimmer light, a few patches across the page
        field = _smooth(torch.rand(B, 3, 4, generator=gen), H, W)
        paper.mul_(field.clamp_(0, 1).mul_(U(0, cfg.blotch, B)[:, None, None]).neg_().add_(1))
    dark = U(*cfg.ink_dark, B)[:, None, None]
    if cfg.ruled_p > 0:
        ink = _rules(ink, px, cfg.ruled_p, U, gen)
    page = ink.mul_(dark).neg_().add_(1).mul_(paper)  # paper x (1 - dark x ink)
    if cfg.blur > 0:  # out of focus, before the sensor's noise
        for p, sigma in zip(page.numpy(), U(0, cfg.blur, B).tolist()):
            if sigma >= 0.3:
                cv2.GaussianBlur(p, (0, 0), sigma, dst=p)
    page.add_(torch.randn(page.shape, generator=gen).mul_(U(0, cfg.noise, B)[:, None, None]))
    inverted = torch.rand(B, generator=gen) < cfg.invert_p
    page[inverted] = 1 - page[inverted]
    pages = page.clamp_(0, 1).mul_(255).round_().to(torch.uint8).numpy()
    if cfg.jpeg_p > 0:  # saved as a webcam or a phone saves it: 8x8 blocks, ringing around strokes
        saved = (torch.rand(B, generator=gen) < cfg.jpeg_p).tolist()
        quality = torch.randint(cfg.jpeg_q[0], cfg.jpeg_q[1] + 1, (B,), generator=gen).tolist()
        for i in np.flatnonzero(saved):
            _, buf = cv2.imencode(".jpg", pages[i], [cv2.IMWRITE_JPEG_QUALITY, quality[i]])
            pages[i] = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    return pages
