"""MNIST digits, and the canvases NextNum learns from: seeded pages of numbers (scenes.py) read through
preprocess, the same code that reads every image the app is given, so that a model trains on the
canvases it will read.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .config import FIXTURE, READ_SHRINK, DataConfig, ModelConfig
from .preprocess import preprocess
from .scenes import Scenes, draw, fixed_pages, texts



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
                    if Path(f).suffix.lower() in (".ttf", ".otf", ".woff", ".woff2")})
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


def with_hands(bank: DigitBank, cfg: DataConfig) -> DigitBank:
    """bank plus flagged (and footed) 1s and crossed 7s drawn onto cfg.hands of its own 1s and 7s (hands.py)."""
    if cfg.hands <= 0:
        return bank
    from .hands import variants
    images, labels = variants((bank.images * 255).round().to(torch.uint8).numpy(), bank.labels.numpy(), cfg.hands,
                              flag_long=cfg.flag_long)
    return DigitBank.concat(bank, DigitBank.from_arrays(images, labels)) if len(labels) else bank


@dataclass
class Batch:
    images: Tensor  # (B, 1, H, W) float in [0, 1], ink = 1
    targets: Tensor  # (B, max_len + 1) int64: digits, EOS, then PAD
    lengths: Tensor  # (B,) number of digits
    boxes: Tensor  # (B, max_len, 4) canvas box of each digit: y0, y1, x0, x1 (zeros past length)
    boxed: int | None = None  # rows [:boxed] have digit boxes (None: all); later rows came without them
    pages: list[np.ndarray] | None = None  # the images the canvases were read from (scenes.draw)
    shrink: Tensor | None = None  # (B,) the fit shrink each was read at
    lost: int = 0  # pages drawn but left out: preprocess found nothing on them or lost a digit

    @property
    def texts(self) -> list[str]:
        return texts(self.targets, self.lengths)


def render(bank: DigitBank, n: int, cfg: DataConfig, img_hw: tuple[int, int], gen: torch.Generator,
           max_len: int | None = None, lengths: Tensor | None = None, *, match_strokes: bool = False,
           shrink: float | None = None, keep_all: bool = False) -> Batch:
    """n pages of numbers (scenes.draw), read through preprocess onto img_hw canvases: deterministic given
    gen's state. Pages on which preprocess finds nothing or loses a digit are left out unless keep_all
    (then their canvas is what preprocess made, blank or short, as the app would read it)."""
    return read_scenes(draw(bank, n, cfg, gen, max_len, lengths, shrink), img_hw, match_strokes, keep_all)


def read_scenes(sc: Scenes, img_hw: tuple[int, int], match_strokes: bool = False, keep_all: bool = False) -> Batch:
    """What preprocess makes of each page, as the app reads an image: the canvases, with each digit's box
    carried onto its canvas by the Geometry preprocess returns."""
    H, W = img_hw
    B, K = sc.boxes.shape[:2]
    canvases, boxes, ok = np.zeros((B, H, W), np.float32), np.zeros((B, K, 4), np.float32), np.zeros(B, bool)
    page_boxes, lengths, shrink = sc.boxes.numpy(), sc.lengths.tolist(), sc.shrink.tolist()
    for i, img in enumerate(sc.images):
        pre = preprocess(img, img_hw, shrink=shrink[i], match_strokes=match_strokes)
        canvases[i] = pre.canvas
        if pre.empty:
            continue
        n = lengths[i]
        y0, y1, x0, x1 = page_boxes[i, :n].T
        tl, br = pre.geometry.to_canvas(np.stack([x0, y0], -1)), pre.geometry.to_canvas(np.stack([x1, y1], -1))
        boxes[i, :n] = np.stack([tl[:, 1], br[:, 1], tl[:, 0], br[:, 0]], -1)
        gx0, gy0, gx1, gy1 = pre.geometry.crop  # the ink box preprocess read: does it hold every digit?
        inter = (np.clip(np.minimum(x1, gx1) - np.maximum(x0, gx0), 0, None) *
                 np.clip(np.minimum(y1, gy1) - np.maximum(y0, gy0), 0, None))
        ok[i] = bool((inter >= 0.5 * (x1 - x0) * (y1 - y0)).all())
    ok, boxes = torch.from_numpy(ok), torch.from_numpy(boxes)
    keep = torch.ones(B, dtype=torch.bool) if keep_all else ok
    return Batch(torch.from_numpy(canvases)[keep][:, None], sc.targets[keep], sc.lengths[keep], boxes[keep],
                 pages=[p for p, k in zip(sc.images, keep.tolist()) if k], shrink=sc.shrink[keep],
                 lost=B - int(ok.sum()))


def fixed_batches(bank: DigitBank, samples: int, cfg: DataConfig, img_hw: tuple[int, int], seed: int,
                  batch: int = 250, match_strokes: bool = False) -> list[Batch]:
    """A reproducible set of canvases (same seed -> same canvases): scenes.fixed_pages, each page read as the
    app reads it (at READ_SHRINK, every page kept)."""
    return [read_scenes(sc, img_hw, match_strokes, keep_all=True)
            for sc in fixed_pages(bank, samples, cfg, seed, READ_SHRINK, batch)]


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
