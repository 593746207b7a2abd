"""MNIST digits and the seeded, vectorised synthetic digit-strip generator NextNum learns from.

A canvas is drawn in one pass for the whole batch: every digit gets an affine map (size,
aspect, rotation, shear, place in the row) composed with the same ink-box fit the preprocessing
applies to real images (config.fit_scale), then one grid_sample renders all digits at once and
they are merged with max, so touching and overlapping digits come for free.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .config import EOS, FIXTURE, INK_MARGIN_FRAC, PAD, DataConfig, ModelConfig, fit_scale



@dataclass
class DigitBank:
    """Digit images with their labels and ink boxes, ready for rendering."""
    images: Tensor  # (N, 28, 28) float in [0, 1], ink = 1
    labels: Tensor  # (N,) int64
    boxes: Tensor  # (N, 4) float: y0, y1, x0, x1 of the ink in pixels (ends exclusive)

    @classmethod
    def from_arrays(cls, images: np.ndarray | Tensor, labels: np.ndarray | Tensor) -> "DigitBank":
        x = torch.as_tensor(np.asarray(images), dtype=torch.float32) / 255.0  # (N, 28, 28)
        if x.ndim != 3 or len(x) == 0:
            raise ValueError(f"expected a non-empty (N, H, W) stack of digits, got {tuple(x.shape)}")
        ink = x > 0.2
        rows, cols = ink.any(2), ink.any(1)  # (N, H), (N, W)

        def span(m: Tensor) -> tuple[Tensor, Tensor]:
            idx = torch.arange(m.shape[1]).expand_as(m)
            first = torch.where(m, idx, m.shape[1]).amin(1)
            last = torch.where(m, idx, -1).amax(1) + 1
            return first.float(), last.float()

        y0, y1 = span(rows)
        x0, x1 = span(cols)
        boxes = torch.stack([y0, y1, x0, x1], 1)
        keep = (y1 - y0 >= 4) & (x1 - x0 >= 1)  # drop blank or degenerate digits
        return cls(x[keep], torch.as_tensor(np.asarray(labels), dtype=torch.int64)[keep], boxes[keep])

    def __len__(self) -> int:
        return len(self.labels)

    @classmethod
    def concat(cls, *banks: "DigitBank") -> "DigitBank":
        return cls(torch.cat([b.images for b in banks]), torch.cat([b.labels for b in banks]),
                   torch.cat([b.boxes for b in banks]))

    def split(self, n_last: int) -> tuple["DigitBank", "DigitBank"]:
        """(first N - n_last, last n_last): a held-out slice for validation canvases."""
        n = len(self) - n_last
        assert 0 < n < len(self), f"cannot hold out {n_last} of {len(self)} digits"
        return (DigitBank(self.images[:n], self.labels[:n], self.boxes[:n]),
                DigitBank(self.images[n:], self.labels[n:], self.boxes[n:]))


def load_mnist(root: str | Path, train: bool, download: bool = False) -> DigitBank:
    """MNIST through torchvision: train=True for the training split, False for t10k."""
    from torchvision.datasets import MNIST
    try:
        ds = MNIST(str(root), train=train, download=download)
    except RuntimeError as e:
        raise FileNotFoundError(
            f"MNIST not found under {Path(root).resolve()}/MNIST/raw ({e}). "
            "Point --data at a folder holding it, or add --download to fetch it.") from None
    return DigitBank.from_arrays(ds.data.numpy(), ds.targets.numpy())


def load_fixture(path: str | Path = FIXTURE) -> DigitBank:
    """The small committed sample of MNIST digits the tests use (no ../shared needed)."""
    with np.load(path) as f:
        return DigitBank.from_arrays(f["images"], f["labels"])


def font_files(patterns: list[str]) -> list[Path]:
    """The font files the glob patterns match, sorted; FileNotFoundError naming the patterns if none."""
    import glob
    files = sorted({Path(f) for pat in patterns for f in glob.glob(pat, recursive=True)
                    if Path(f).suffix.lower() in (".ttf", ".otf")})
    if patterns and not files:
        raise FileNotFoundError(f"no font files match data.fonts {patterns}; install them (Debian: apt-get install "
                                "fonts-dejavu-core fonts-liberation) or set data.fonts to [] in the config")
    return files


def render_font_digits(files: list[Path], size: int = 28, box: int = 20) -> DigitBank:
    """Digits 0-9 of each font, drawn like MNIST: ink = 255 on 0, the glyph fitted into a box x box square
    (aspect kept, area-averaged from a large rendering) at the centre of a size x size image."""
    import cv2
    from PIL import Image, ImageDraw, ImageFont
    images, labels = [], []
    for f in files:
        font = ImageFont.truetype(str(f), 96)
        for d in range(10):
            im = Image.new("L", (160, 160), 0)
            ImageDraw.Draw(im).text((80, 80), str(d), font=font, fill=255, anchor="mm")
            a = np.asarray(im)
            ys, xs = np.nonzero(a > 32)
            if len(ys) == 0:
                raise ValueError(f"{f} draws no ink for the digit {d}")
            g = a[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
            s = box / max(g.shape)
            h, w = max(1, round(g.shape[0] * s)), max(1, round(g.shape[1] * s))
            g = cv2.resize(g, (w, h), interpolation=cv2.INTER_AREA)
            out = np.zeros((size, size), np.uint8)
            y0, x0 = (size - h) // 2, (size - w) // 2
            out[y0:y0 + h, x0:x0 + w] = g
            images.append(out)
            labels.append(d)
    return DigitBank.from_arrays(np.stack(images), np.array(labels))


def with_fonts(bank: DigitBank, cfg: DataConfig) -> tuple[DigitBank, list[Path]]:
    """bank plus cfg.fonts' digits, repeated so that they are about cfg.font_share of the result."""
    files = font_files(cfg.fonts)
    if not files or cfg.font_share <= 0:
        return bank, []
    fonts = render_font_digits(files)
    copies = max(1, round(cfg.font_share * len(bank) / ((1 - cfg.font_share) * len(fonts))))
    return DigitBank.concat(bank, *[fonts] * copies), files


@dataclass
class Batch:
    images: Tensor  # (B, 1, H, W) float in [0, 1], ink = 1
    targets: Tensor  # (B, max_len + 1) int64: digits, EOS, then PAD
    lengths: Tensor  # (B,) number of digits
    boxes: Tensor  # (B, max_len, 4) canvas box of each digit: y0, y1, x0, x1 (zeros past length)
    boxed: int | None = None  # rows [:boxed] have digit boxes (None: all); later rows came without them

    @property
    def texts(self) -> list[str]:
        return ["".join(str(int(d)) for d in t[:n]) for t, n in zip(self.targets, self.lengths)]


def render(bank: DigitBank, n: int, cfg: DataConfig, img_hw: tuple[int, int], gen: torch.Generator,
           max_len: int | None = None, lengths: Tensor | None = None) -> Batch:
    """Draw n canvases of cfg.min_len..max_len digits (uniform), deterministic given gen's state."""
    H, W = img_hw
    K = cfg.max_len
    hi = min(max_len or K, K)

    def U(lo: float, hi_: float, *shape: int) -> Tensor:
        return lo + (hi_ - lo) * torch.rand(shape, generator=gen)

    L = lengths if lengths is not None else torch.randint(cfg.min_len, hi + 1, (n,), generator=gen)
    idx = torch.randint(0, len(bank), (n, K), generator=gen)
    valid = torch.arange(K)[None] < L[:, None]  # (B, K)

    # --- layout in units of one digit height
    box = bank.boxes[idx]  # (B, K, 4)
    ih, iw = box[..., 1] - box[..., 0], box[..., 3] - box[..., 2]
    s = U(*cfg.scale, n, K)  # height
    w = s * iw / ih * U(*cfg.aspect, n, K)  # width
    adv = (w + U(*cfg.gap, n, K) * s.mean(1, keepdim=True)) * valid
    x0 = torch.cumsum(adv, 1) - adv  # exclusive cumsum: left edge of each digit
    cx, cy = x0 + w / 2, U(-cfg.jitter_y, cfg.jitter_y, n, K)
    inf = torch.tensor(math.inf)
    left = torch.where(valid, x0, inf).amin(1)
    right = torch.where(valid, x0 + w, -inf).amax(1)
    top = torch.where(valid, cy - s / 2, inf).amin(1)
    bottom = torch.where(valid, cy + s / 2, -inf).amax(1)

    # --- fit the ink box onto the canvas exactly as preprocessing does, then shrink and shift a bit
    fit = torch.tensor([fit_scale(float(bh), float(bw), H, W)
                        for bh, bw in zip(bottom - top, right - left)])
    fit = fit * U(*cfg.fit_shrink, n)
    slack_x = ((W * (1 - 2 * INK_MARGIN_FRAC) - (right - left) * fit) / 2).clamp(min=0)
    slack_y = ((H - (bottom - top) * fit) / 2 - 2).clamp(min=0)
    ox = W / 2 + U(-0.5, 0.5, n) * slack_x - (left + right) / 2 * fit
    oy = H / 2 + U(-0.5, 0.5, n) * slack_y - (top + bottom) / 2 * fit
    pcx, pcy = ox[:, None] + cx * fit[:, None], oy[:, None] + cy * fit[:, None]  # (B, K) px
    ph, pw = s * fit[:, None], w * fit[:, None]  # (B, K) px
    boxes = torch.stack([pcy - ph / 2, pcy + ph / 2, pcx - pw / 2, pcx + pw / 2], -1) * valid[..., None]

    # --- canvas px -> source px for each placed digit: src = M (p - c) + centre_of_ink
    b_idx, k_idx = valid.nonzero(as_tuple=True)  # (N,), (N,)
    d = idx[b_idx, k_idx]
    th = torch.deg2rad(U(-cfg.rotate, cfg.rotate, len(d)))
    sh = U(-cfg.shear, cfg.shear, len(d))
    cos, sin = torch.cos(th), torch.sin(th)
    rinv = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)  # (N, 2, 2)
    shinv = torch.zeros_like(rinv)
    shinv[:, 0, 0], shinv[:, 0, 1], shinv[:, 1, 1] = 1, -sh, 1
    sx = iw[b_idx, k_idx] / pw[b_idx, k_idx]
    sy = ih[b_idx, k_idx] / ph[b_idx, k_idx]
    M = torch.stack([sx, sy], -1)[..., None] * (shinv @ rinv)  # (N, 2, 2), rows act on (x, y)
    bx = box[b_idx, k_idx]
    src_c = torch.stack([(bx[:, 2] + bx[:, 3]) / 2, (bx[:, 0] + bx[:, 1]) / 2], -1)  # (N, 2) x, y
    c = torch.stack([pcx[b_idx, k_idx], pcy[b_idx, k_idx]], -1)  # (N, 2)
    # affine_grid works in normalised coords: canvas p = D o + e, source src_n = src * 2/28 - 1
    D = torch.tensor([W / 2, H / 2])
    A = (2 / 28) * M * D  # (N, 2, 2): scales the columns
    t = (2 / 28) * ((M @ (D - c)[..., None])[..., 0] + src_c) - 1  # (N, 2)
    grid = F.affine_grid(torch.cat([A, t[..., None]], -1), [len(d), 1, H, W], align_corners=False)
    digits = F.grid_sample(bank.images[d][:, None], grid, align_corners=False)  # (N, 1, H, W)
    layers = torch.zeros(n, K, H, W)
    layers[b_idx, k_idx] = digits[:, 0]
    canvas = layers.amax(1, keepdim=True)  # (B, 1, H, W): overlapping ink merges by max

    canvas = augment(canvas, cfg, gen)
    targets = torch.full((n, K + 1), PAD, dtype=torch.int64)
    targets[:, :K] = torch.where(valid, bank.labels[idx], PAD)
    targets[torch.arange(n), L] = EOS
    return Batch(canvas, targets, L, boxes)


def augment(x: Tensor, cfg: DataConfig, gen: torch.Generator) -> Tensor:
    """Elastic warp, stroke width, binarisation and noise, each drawn per canvas. x: (B, 1, H, W)."""
    B, _, H, W = x.shape
    if cfg.elastic > 0:
        coarse = torch.randn(B, 2, 4, 8, generator=gen) * cfg.elastic * torch.tensor([2 / W, 2 / H])[:, None, None]
        disp = F.interpolate(coarse, size=(H, W), mode="bilinear", align_corners=False)  # (B, 2, H, W)
        ident = F.affine_grid(torch.eye(2, 3).expand(B, 2, 3), [B, 1, H, W], align_corners=False)
        x = F.grid_sample(x, ident + disp.permute(0, 2, 3, 1), align_corners=False)
    # stroke width: erode, keep, dilate, dilate twice; each op only on the canvases that drew it
    u, (p0, p1, p2, _) = torch.rand(B, generator=gen), cfg.stroke_p
    for sel, op in ((u < p0, lambda t: -F.max_pool2d(-t, 3, 1, 1)),
                    ((u >= p0 + p1) & (u < p0 + p1 + p2), lambda t: F.max_pool2d(t, 3, 1, 1)),
                    (u >= p0 + p1 + p2, lambda t: F.max_pool2d(t, 5, 1, 2))):
        if sel.any():
            x[sel] = op(x[sel])
    sel = torch.rand(B, generator=gen) < cfg.binarize_p
    if sel.any():
        x[sel] = F.avg_pool2d((x[sel] > 0.4).float(), 3, 1, 1, count_include_pad=False)
    x = x.add_(torch.randn(x.shape, generator=gen).mul_(torch.rand(B, 1, 1, 1, generator=gen) * cfg.noise))
    if cfg.specks > 0:
        n = torch.randint(0, cfg.specks + 1, (B,), generator=gen)
        for b in range(B):  # a handful of dots per canvas; cheap
            k = int(n[b])
            x[b, 0, torch.randint(0, H, (k,), generator=gen), torch.randint(0, W, (k,), generator=gen)] = 1.0
    return x.clamp_(0, 1)


def fixed_batches(bank: DigitBank, samples: int, cfg: DataConfig, img_hw: tuple[int, int], seed: int,
                  batch: int = 250) -> list[Batch]:
    """A reproducible set of canvases (same seed -> same canvases), rendered in batches."""
    gen = torch.Generator().manual_seed(seed)
    return [render(bank, min(batch, samples - i), cfg, img_hw, gen) for i in range(0, samples, batch)]


def token_masks(b: Batch, mcfg: ModelConfig) -> Tensor:
    """(B, K, N) float: 1 where encoder token n's centre lies in digit k's box, the box grown by half
    a token cell so that even a thin '1' covers at least one token. Zero for absent digits."""
    ys, xs = (torch.tensor(v) for v in mcfg.token_centres())
    m = mcfg.cell / 2
    y0, y1, x0, x1 = (b.boxes[..., i, None, None] for i in range(4))  # (B, K, 1, 1)
    inside = (ys[:, None] >= y0 - m) & (ys[:, None] <= y1 + m) & (xs[None] >= x0 - m) & (xs[None] <= x1 + m)
    valid = torch.arange(b.boxes.shape[1])[None] < b.lengths[:, None]  # (B, K)
    return (inside & valid[..., None, None]).flatten(2).float()  # (B, K, gh*gw)


def token_labels(inside: Tensor, tgt: Tensor) -> Tensor:
    """(B, N) digit under each token (the leftmost if boxes overlap), 10 where there is none.

    inside: (B, K, N) token_masks; tgt: (B, T) target tokens (digits first)."""
    K = inside.shape[1]
    any_ = inside.any(1)
    first = inside.float().argmax(1)  # (B, N) first k whose box holds the token
    lbl = tgt[:, :K].gather(1, first)
    return torch.where(any_, lbl, torch.full_like(lbl, 10))
