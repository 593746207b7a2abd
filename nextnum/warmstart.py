"""Training from another checkpoint's weights: the differences allowed, the position tables resized, more
encoder blocks added as the identity."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .config import ModelConfig
from .model import NextNum

SHAPE_FIELDS = ("stem", "patch", "dim", "heads", "enc_layers", "dec_layers", "mlp_ratio", "max_digits")


def init_mismatch(start: ModelConfig, cfg: ModelConfig) -> str | None:
    """Why the weights of a `start` model cannot begin training a `cfg` model, or None when they can.
    Every weight must keep its shape and meaning; only the position tables may differ (another canvas
    size or patch stride), because adapt_positions resizes them, and the encoder may be deeper, because
    deepen adds its blocks as the identity."""
    diff = [f"{k} {getattr(start, k)} in the checkpoint, {getattr(cfg, k)} in the config" for k in SHAPE_FIELDS
            if getattr(start, k) != getattr(cfg, k) and not (k == "enc_layers" and cfg.enc_layers > start.enc_layers)]
    return "; ".join(diff) or None


def deepen(state: dict[str, Tensor], model: NextNum) -> dict[str, Tensor]:
    """Copy of `state` for `model`, whose encoder may have more blocks than `state` holds: each block added
    takes `model`'s own initial weights with its attention's and MLP's output projections zeroed, so that
    it adds nothing to the residual stream and the deeper model reads exactly as the shallower one did,
    until training gives the new blocks something to add (net2net-style growth). Pure."""
    out = dict(state)
    for name, value in model.state_dict().items():
        if name in out:
            continue
        if not name.startswith("encoder.blocks."):
            raise KeyError(f"the starting weights lack {name}, which is no added encoder block's")
        zero = name.split(".", 3)[3] in ("attn.out.weight", "attn.out.bias", "mlp.2.weight", "mlp.2.bias")
        out[name] = torch.zeros_like(value) if zero else value.clone()
    return out


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
