"""Configuration dataclasses for NextNum: model shape, synthetic data, training.

Every constant that more than one module needs (canvas size, token ids, how ink is fitted
onto the canvas, normalisation) lives here and nowhere else.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

# The small committed sample of MNIST digits (the tests' and the Train tab's when MNIST is not there).
FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "mnist_sample.npz"

# Token ids. Digits are their own ids 0-9.
BOS, EOS, PAD = 10, 11, 12
VOCAB = 13

# Canvas value normalisation: canvases are ink=1 on background=0, then (x - MEAN) / STD.
PIXEL_MEAN, PIXEL_STD = 0.1, 0.3

# How a box of ink is fitted onto the canvas, shared by the generator and the preprocessing so
# that a photo and a training canvas come out alike: the box is scaled (aspect kept) until it is
# INK_H_FRAC of the canvas height or the canvas width less two margins, whichever comes first.
INK_H_FRAC = 0.7
INK_MARGIN_FRAC = 0.05  # of the canvas width, each side


# the fit shrink every reading uses (Predictor); training draws it from DataConfig.fit_shrink. On
# bench/realsets.py's seed-0 sets 1.0 read best on average (0.86, against 0.84 at 0.95 and 0.85 at 0.9).
READ_SHRINK = 1.0

# how far a training one's long flag reaches, of its height (hands.py), unless DataConfig.flag_long says otherwise
LONG_FLAG = (0.3, 0.5)


def fit_scale(box_h: float, box_w: float, img_h: int, img_w: int) -> float:
    """Scale that fits a box_h x box_w ink box onto an img_h x img_w canvas."""
    return min(INK_H_FRAC * img_h / max(box_h, 1e-6),
               (1 - 2 * INK_MARGIN_FRAC) * img_w / max(box_w, 1e-6))


@dataclass
class ModelConfig:
    img_h: int = 84
    img_w: int = 168
    stem: list[int] = field(default_factory=list)  # channels of 3x3 stride-2 convs before patchify
    patch: int = 6
    stride: int = 6  # < patch gives overlapping patches
    dim: int = 40
    heads: int = 4
    enc_layers: int = 3
    dec_layers: int = 2
    mlp_ratio: float = 2.0
    max_digits: int = 5
    dropout: float = 0.0
    blur: float = 0.0  # > 0: sigma (canvas px) of a fixed Gaussian blur before the stem, against aliasing
    # the decoder's logits are divided by this before they become the probabilities a reading reports;
    # fitted on validation canvases after training (nextnum.calibrate). Greedy choices do not depend on it.
    temperature: float = 1.0
    # the canvas's strokes are brought to one width relative to the ink height (strokes.match_stroke): for
    # models trained on canvases drawn directly, before training canvases came from preprocess itself
    match_strokes: bool = False
    # each digit's map is drawn on the ink the model read (the canvas's ink, grown by INK_REACH canvas px)
    # rather than over the paper too: for token grids too coarse to keep a thin digit's map off the next one
    maps_on_ink: bool = False
    # a reading whose whole-string probability is below this is read again on tta.VIEWS (shifted and scaled
    # copies of its canvas, one batch) and the views vote; 0: one view always. Chosen on validation pages
    views_below: float = 0.0

    def __post_init__(self) -> None:
        for k in ("img_h", "img_w", "patch", "stride", "dim", "heads", "enc_layers", "dec_layers", "max_digits"):
            v = getattr(self, k)
            if not isinstance(v, int) or v < (0 if k.endswith("layers") else 1):
                raise ValueError(f"model.{k} must be a positive integer, got {v!r}")
        if not isinstance(self.temperature, (int, float)) or not self.temperature > 0:
            raise ValueError(f"model.temperature must be a positive number, got {self.temperature!r}")
        if not isinstance(self.views_below, (int, float)) or not 0 <= self.views_below <= 1:
            raise ValueError(f"model.views_below must be a probability in [0, 1], got {self.views_below!r}")
        if self.dim % self.heads:
            raise ValueError(f"model.dim ({self.dim}) must be divisible by model.heads ({self.heads})")
        h, w = self.feature_hw
        if h < self.patch or w < self.patch:
            raise ValueError(f"model.patch {self.patch} is larger than the {h}x{w} map the stem makes")

    @property
    def feature_hw(self) -> tuple[int, int]:
        """Size of the map the patch embedding sees (after the conv stem, if any)."""
        h, w = self.img_h, self.img_w
        for _ in self.stem:
            h, w = (h + 1) // 2, (w + 1) // 2  # 3x3 conv, stride 2, padding 1
        return h, w

    @property
    def grid(self) -> tuple[int, int]:
        """The (rows, cols) patch grid; the strip is wide, so this is not square."""
        h, w = self.feature_hw
        return (h - self.patch) // self.stride + 1, (w - self.patch) // self.stride + 1

    @property
    def cell(self) -> int:
        """Canvas pixels between neighbouring tokens (total stride)."""
        return self.stride * 2 ** len(self.stem)

    @property
    def field(self) -> int:
        """Canvas pixels one token's patch spans (its receptive field, less the stem's blur)."""
        return self.patch * 2 ** len(self.stem)

    def token_centres(self) -> tuple[list[float], list[float]]:
        """Canvas (y, x) pixel centres of the token rows and columns."""
        gh, gw = self.grid
        return ([r * self.cell + self.field / 2 for r in range(gh)],
                [c * self.cell + self.field / 2 for c in range(gw)])


@dataclass
class DataConfig:
    min_len: int = 1
    max_len: int = 5
    # layout, in units of one digit's ink height
    scale: tuple[float, float] = (0.8, 1.2)  # per-digit size
    aspect: tuple[float, float] = (0.85, 1.15)  # per-digit width stretch
    gap: tuple[float, float] = (-0.15, 0.7)  # space between digits; < 0 overlaps / touches
    jitter_y: float = 0.12  # vertical offset of each digit
    rotate: float = 12.0  # degrees, each digit
    shear: float = 0.25
    elastic: float = 1.5  # px of smooth displacement at a digit height of 56 px (Simard et al. 2003)
    # the page: digit height in px (log-uniform), margins around the number in digit heights (small: near the edge)
    digit_px: tuple[float, float] = (20.0, 48.0)
    margin: tuple[float, float] = (0.05, 0.6)
    # how the ink box is fitted onto the canvas: preprocess fits at config.fit_scale times a shrink drawn
    # from this range in training, at READ_SHRINK when reading
    fit_shrink: tuple[float, float] = (0.8, 1.0)
    # the pen: probabilities of (thinner, unchanged, thicker, marker-bold)
    stroke_p: tuple[float, float, float, float] = (0.15, 0.45, 0.3, 0.1)
    binarize_p: float = 0.4  # hard-edged strokes, like a thresholded drawing
    light_p: float = 0.3  # one digit of the number written lighter (a pencil among pens) ...
    light: tuple[float, float] = (0.35, 0.7)  # ... at this share of the others' darkness
    paper: tuple[float, float] = (0.6, 1.0)  # paper brightness
    shade: float = 0.35  # uneven light: up to this much darker at one side of the page
    ink_dark: tuple[float, float] = (0.6, 1.0)  # how much of the paper's light the ink takes away
    invert_p: float = 0.1  # light ink on a dark ground (chalk, an inverted scan)
    noise: float = 0.04  # max std of Gaussian sensor noise, of full scale
    specks: int = 3  # max stray dots per page
    # a camera's page: out of focus (Gaussian blur, std up to this many page px), soft shadows (the light
    # dimmed by up to this share in smooth patches), JPEG (this share of pages, quality drawn from jpeg_q)
    blur: float = 0.0
    blotch: float = 0.0
    jpeg_p: float = 0.0
    jpeg_q: tuple[int, int] = (30, 90)
    ruled_p: float = 0.0  # this share of pages is lined paper (thin lines 0.9-2 digit heights apart, under the ink)
    stray_p: float = 0.1  # a short stray line somewhere on the page
    val_holdout: int = 1000  # train-split digits kept out of training, for validation canvases
    hands: float = 0.0  # this share of the training 1s and 7s is added again flagged (some footed) and crossed
    flag_long: tuple[float, float] = LONG_FLAG  # how far a long flag reaches, of the 1's height (hands.py)
    # printed digits mixed into the *training* digits (never validation or t10k canvases): glob patterns
    # of font files, each font giving one 0-9 set; font_share is the fraction of training digits they make
    fonts: list[str] = field(default_factory=list)
    font_share: float = 0.15


@dataclass
class TrainConfig:
    steps: int = 6000
    time_budget_min: float = 0.0  # > 0: stop (and schedule the lr) by wall time instead
    batch: int = 64
    lr: float = 3e-3
    min_lr_frac: float = 0.05
    warmup: int = 200
    weight_decay: float = 0.05
    label_smoothing: float = 0.05
    grad_clip: float = 1.0
    ema: float = 0.0  # > 0: validate and keep an exponential moving average of the weights with this decay
    corrections_share: float = 0.25  # of each batch, when training with a corrections folder
    snapshots: bool = False  # also keep the weights of every validation in out/snapshots/<step> (to choose among)
    aux_weight: float = 0.5  # per-token "which digit is here" loss on the encoder (boxes are known)
    guide_weight: float = 0.3  # pulls step k's cross-attention onto digit k's box
    guide_per_layer: bool = False  # pull every decoder layer's map onto the box, not only their average
    curriculum: float = 0.15  # fraction of training over which max length grows 2 -> max_len
    eval_every: int = 250
    val_samples: int = 512
    seed: int = 0
    threads: int = 0  # torch threads; 0 = leave torch's default
    workers: int = 0  # DataLoader processes drawing the batches; 0 = draw them in the training process


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        d = self.data
        if not 0.0 <= d.font_share < 1.0:
            raise ValueError(f"data.font_share must be in [0, 1), got {d.font_share!r}")
        if not 0.0 <= d.hands <= 1.0:
            raise ValueError(f"data.hands must be in [0, 1], got {d.hands!r}")
        if not 0.0 < d.flag_long[0] <= d.flag_long[1] <= 1.0:
            raise ValueError(f"data.flag_long must be 0 < low <= high <= 1, got {d.flag_long!r}")
        if not 1 <= d.min_len <= d.max_len <= self.model.max_digits:
            raise ValueError(f"need 1 <= data.min_len ({d.min_len}) <= data.max_len ({d.max_len}) "
                             f"<= model.max_digits ({self.model.max_digits})")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Config":
        """Build from a plain dict; ValueError naming the problem for anything malformed."""
        if not isinstance(d, dict) or not all(isinstance(d.get(k, {}), dict) for k in ("model", "data", "train")):
            raise ValueError("a config is a JSON object with 'model', 'data' and 'train' objects")
        unknown = set(d) - {"model", "data", "train"}
        if unknown:
            raise ValueError(f"unknown config sections: {sorted(unknown)}")
        return cls(model=_build(ModelConfig, d.get("model", {})),
                   data=_build(DataConfig, d.get("data", {})),
                   train=_build(TrainConfig, d.get("train", {})))

    @classmethod
    def load(cls, path: str | Path) -> "Config":
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"config file not found: {path}") from None
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from None
        try:
            return cls.from_dict(d)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path}: {e}") from None

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")


def _build(cls: type, d: dict[str, Any]) -> Any:
    """Build a dataclass from a dict, refusing unknown keys and restoring tuples from JSON lists."""
    known = {f.name: f for f in fields(cls)}
    unknown = set(d) - set(known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
    kw = {}
    for k, v in d.items():
        if isinstance(v, list) and "tuple" in str(known[k].type):
            v = tuple(v)
        kw[k] = v
    return cls(**kw)
