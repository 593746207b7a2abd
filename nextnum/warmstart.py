"""Training from another checkpoint's weights: the differences allowed, the position tables resized."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from .config import ModelConfig
from .model import NextNum

SHAPE_FIELDS = ("stem", "patch", "dim", "heads", "enc_layers", "dec_layers", "mlp_ratio", "max_digits")


def init_mismatch(start: ModelConfig, cfg: ModelConfig) -> str | None:
    """Why the weights of a `start` model cannot begin training a `cfg` model, or None when they can.
    Every weight must keep its shape and meaning; only the position tables may differ (another canvas
    size or patch stride), because adapt_positions resizes them."""
    diff = [f"{k} {getattr(start, k)} in the checkpoint, {getattr(cfg, k)} in the config" for k in SHAPE_FIELDS
            if getattr(start, k) != getattr(cfg, k)]
    return "; ".join(diff) or None


def adapt_positions(state: dict[str, Tensor], model: NextNum) -> dict[str, Tensor]:
    """Copy of `state` with the encoder's row/column positions resized (linearly) to `model`'s grid.

    Lets a model start from weights trained on another token grid (another patch stride): every
    other weight keeps its shape. Pure: `state` is left as it is.
    """
    out = dict(state)
    for name, axis in (("encoder.pos_row", 0), ("encoder.pos_col", 1)):
        want = model.get_parameter(name).shape
        have = state[name]
        if have.shape != want:
            line = have.squeeze(1 - axis).T[None]  # (1, C, L)
            line = F.interpolate(line, size=want[axis], mode="linear", align_corners=True)
            out[name] = line[0].T.unsqueeze(1 - axis).contiguous()
    return out
