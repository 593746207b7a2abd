"""The training loss: the digits read (cross-entropy), which digit lies under each encoder token, and where
each decoding step looks (its cross-attention pulled onto its digit's box)."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .config import BOS, PAD, Config
from .data import token_labels, token_masks


def batch_loss(net: torch.nn.Module, b: Any, cfg: Config, dev: torch.device) -> tuple[torch.Tensor, float]:
    """The training loss of one batch, and its token accuracy."""
    tc = cfg.train
    img, tgt = b.images.to(dev), b.targets.to(dev)
    inp = torch.cat([torch.full_like(tgt[:, :1], BOS), tgt[:, :-1]], 1)  # (B, T) shifted right
    logits, tok_logits, cross = net(img, inp, extras=True)  # (B,T,V), (B,N,11), (B,L,T,N)
    loss = F.cross_entropy(logits.flatten(0, 1), tgt.flatten(), ignore_index=PAD, label_smoothing=tc.label_smoothing)
    n = b.boxed if b.boxed is not None else len(tgt)  # the box-guided losses need digit boxes
    inside = token_masks(b, cfg.model)[:n].to(dev)  # (n, K, N)
    if tc.aux_weight > 0:
        loss = loss + tc.aux_weight * F.cross_entropy(tok_logits[:n].flatten(0, 1), token_labels(inside, tgt[:n]).flatten())
    if tc.guide_weight > 0:
        loss = loss + tc.guide_weight * guide_loss(cross[:n], inside, tgt[:n], tc.guide_per_layer)
    with torch.no_grad():
        mask = tgt != PAD
        acc = ((logits.argmax(-1) == tgt) & mask).sum().item() / mask.sum().item()
    return loss, acc


def guide_loss(cross: torch.Tensor, inside: torch.Tensor, tgt: torch.Tensor, per_layer: bool = False) -> torch.Tensor:
    """Mean -log of the share of step k's cross-attention that lies on digit k, over the digits present.

    cross: (B, L, T, N) each decoder layer's map (heads averaged); inside: (B, K, N) token_masks; tgt: (B, T).
    per_layer=False scores the layers' average (what the app draws); True scores each layer, so that no
    layer may look elsewhere (say, back at the previous digit) while another makes up for it.
    """
    K = inside.shape[1]
    maps = cross[:, :, :K] if per_layer else cross[:, :, :K].mean(1, keepdim=True)  # (B, L or 1, K, N)
    mass = (maps * inside[:, None]).sum(-1)  # (B, L or 1, K): step k's attention inside digit k
    valid = (tgt[:, :K] < 10)[:, None].expand_as(mass)
    return -(mass.clamp_min(1e-4).log() * valid).sum() / valid.sum()
