"""NextNum's model: a small ViT encoder over the canvas and an autoregressive digit decoder.

Attention returns its weights next to its output (as whisper's model.py does) when asked with
need_weights=True, and uses the fused F.scaled_dot_product_attention otherwise, so the maps the
app draws come from the same module that does the work, with no hooks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .config import BOS, EOS, PAD, PIXEL_MEAN, PIXEL_STD, VOCAB, ModelConfig
from .runtime import Reading, tokens_text


class Attention(nn.Module):
    """Multi-head attention with a learned per-head temperature; self- or cross-attention."""

    def __init__(self, dim: int, heads: int, cross: bool = False) -> None:
        super().__init__()
        self.heads, self.cross = heads, cross
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)
        # log of the softmax temperature's inverse, per head; starts at the usual 1/sqrt(head size)
        self.log_scale = nn.Parameter(torch.full((heads,), -0.5 * float(torch.log(torch.tensor(dim / heads)))))

    def _heads(self, t: Tensor) -> Tensor:
        B, T, C = t.shape
        return t.view(B, T, self.heads, C // self.heads).transpose(1, 2)  # (B, nh, T, hs)

    def forward(self, x: Tensor, ctx: Tensor | None = None, causal: bool = False, need_weights: bool = False,
                cache: dict[str, Tensor] | None = None) -> tuple[Tensor, Tensor | None]:
        """x: (B, Tq, C); ctx: (B, Tk, C) for cross-attention. Returns (B, Tq, C) and (B, nh, Tq, Tk) or None.

        cache (decoding): self-attention appends this step's keys/values to it; cross-attention
        computes the context's keys/values once and reuses them.
        """
        B, Tq, C = x.shape
        q = self._heads(self.q(x)) * self.log_scale.exp().view(1, -1, 1, 1)  # (B, nh, Tq, hs)
        if self.cross and cache is not None and "k" in cache:
            k, v = cache["k"], cache["v"]
        else:
            k, v = self._heads_kv(self.kv(ctx if self.cross else x))
            if cache is not None:
                if not self.cross and "k" in cache:
                    k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)  # (B, nh, T, hs)
                cache["k"], cache["v"] = k, v
        # cached keys come before the queries: query i may see keys up to offset + i
        Tq, Tk = int(q.shape[2]), int(k.shape[2])
        offset = Tk - Tq
        mask = None
        if causal and Tq > 1 and offset > 0:
            mask = torch.ones(Tq, Tk, dtype=torch.bool, device=x.device).tril(offset)
        if need_weights:
            att = q @ k.transpose(-2, -1)  # (B, nh, Tq, hs) x (B, nh, hs, Tk) -> (B, nh, Tq, Tk)
            if causal and Tq > 1:
                keep = mask if mask is not None else torch.ones(Tq, Tk, dtype=torch.bool, device=x.device).tril()
                att = att.masked_fill(~keep, float("-inf"))
            w = att.softmax(-1)
            y = w @ v  # (B, nh, Tq, Tk) x (B, nh, Tk, hs) -> (B, nh, Tq, hs)
        else:
            w = None
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                               is_causal=causal and Tq > 1 and offset == 0, scale=1.0)
        y = y.transpose(1, 2).reshape(B, Tq, C)  # (B, Tq, C)
        return self.out(y), w

    def _heads_kv(self, kv: Tensor) -> tuple[Tensor, Tensor]:
        k, v = kv.chunk(2, dim=-1)
        return self._heads(k), self._heads(v)


class Block(nn.Module):
    """Pre-LN transformer block: self-attention, optional cross-attention, MLP."""

    def __init__(self, cfg: ModelConfig, cross: bool = False) -> None:
        super().__init__()
        d = cfg.dim
        self.ln1, self.attn = nn.LayerNorm(d), Attention(d, cfg.heads)
        self.ln_x, self.xattn = (nn.LayerNorm(d), Attention(d, cfg.heads, cross=True)) if cross else (None, None)
        self.ln2 = nn.LayerNorm(d)
        hidden = int(d * cfg.mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(d, hidden), nn.GELU(), nn.Linear(hidden, d))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, ctx: Tensor | None = None, causal: bool = False, need_weights: bool = False,
                cache: dict[str, dict[str, Tensor]] | None = None) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """Returns x and the self- and cross-attention weights (None unless need_weights)."""
        a, w_self = self.attn(self.ln1(x), causal=causal, need_weights=need_weights,
                              cache=None if cache is None else cache.setdefault("self", {}))
        x = x + self.drop(a)
        w_cross = None
        if self.xattn is not None:
            a, w_cross = self.xattn(self.ln_x(x), ctx, need_weights=need_weights,
                                    cache=None if cache is None else cache.setdefault("cross", {}))
            x = x + self.drop(a)
        x = x + self.drop(self.mlp(self.ln2(x)))
        return x, w_self, w_cross


def gaussian_kernel(sigma: float) -> Tensor:
    """(1, 1, k, k) normalised Gaussian, k = 2 * ceil(2 sigma) + 1."""
    r = max(1, math.ceil(2 * sigma))
    g = torch.exp(-torch.arange(-r, r + 1, dtype=torch.float32) ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


class Encoder(nn.Module):
    """Canvas (B, 1, H, W) -> tokens (B, N, C), N = grid rows x cols."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.grid = cfg.grid
        layers: list[nn.Module] = []
        ch = 1
        for c in cfg.stem:  # early convolutions help small ViTs train (Xiao et al. 2021)
            layers += [nn.Conv2d(ch, c, 3, 2, 1, bias=False), nn.BatchNorm2d(c), nn.GELU()]
            ch = c
        self.stem = nn.Sequential(*layers)
        # The stem samples the canvas every 4 px. A thin straight stroke (a mouse-drawn "1") then looks
        # different by where it falls between samples, and so did the encoder's features: the "7" after
        # such a "1" was found or not with a 4 px period of the drawing's position. A light blur first
        # makes the features shift-invariant (Zhang 2019, "Making Convolutional Networks Shift-Invariant
        # Again"). Fixed, not learned; not saved (the config holds sigma).
        self.register_buffer("blur", gaussian_kernel(cfg.blur) if cfg.blur > 0 else None, persistent=False)
        self.patch = nn.Conv2d(ch, cfg.dim, cfg.patch, cfg.stride)
        gh, gw = self.grid
        self.pos_row = nn.Parameter(torch.randn(gh, 1, cfg.dim) * 0.02)  # learned 2-D positions,
        self.pos_col = nn.Parameter(torch.randn(1, gw, cfg.dim) * 0.02)  # factorised rows + cols
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.enc_layers))
        self.ln = nn.LayerNorm(cfg.dim)

    def forward(self, img: Tensor, need_weights: bool = False) -> tuple[Tensor, list[Tensor]]:
        if self.blur is not None:  # on the canvas itself: zero padding is blank canvas
            img = F.conv2d(img, self.blur, padding=self.blur.shape[-1] // 2)
        x = (img - PIXEL_MEAN) / PIXEL_STD
        x = self.patch(self.stem(x))  # (B, C, gh, gw)
        assert x.shape[-2:] == self.grid, f"canvas gives grid {tuple(x.shape[-2:])}, config says {self.grid}"
        x = (x.permute(0, 2, 3, 1) + self.pos_row + self.pos_col).flatten(1, 2)  # (B, gh*gw, C)
        attns = []
        for blk in self.blocks:
            x, w, _ = blk(x, need_weights=need_weights)
            if w is not None:
                attns.append(w)
        return self.ln(x), attns


@dataclass
class Generation:
    """Greedy decoding result. S = steps run (<= max_digits + 1), N = encoder tokens."""
    tokens: Tensor  # (B, S) digits, then EOS, then PAD
    probs: Tensor  # (B, S, VOCAB) softmax at each step
    cross_attn: Tensor | None = None  # (B, S, dec_layers, heads, N)
    enc_attn: Tensor | None = None  # (B, enc_layers, heads, N, N)

    def texts(self) -> list[str]:
        return [tokens_text(row) for row in self.tokens.tolist()]

    def numpy(self) -> Reading:
        """The same reading as numpy arrays, as onnxruntime returns it (runtime.OnnxReader)."""
        def np_(t: Tensor | None):
            return None if t is None else t.detach().cpu().numpy()
        return Reading(np_(self.tokens), np_(self.probs.float()), np_(self.cross_attn), np_(self.enc_attn))


class NextNum(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.tok = nn.Embedding(VOCAB, cfg.dim)
        self.pos = nn.Parameter(torch.randn(cfg.max_digits + 1, cfg.dim) * 0.02)
        self.blocks = nn.ModuleList(Block(cfg, cross=True) for _ in range(cfg.dec_layers))
        self.ln = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, VOCAB)
        # training-only signal: each encoder token says which digit (or none = 10) lies under it
        self.aux_head = nn.Linear(cfg.dim, 11)
        # from the config, not state: no buffer, so that a moving average of the model's state (resume.averaged_model)
        # never averages its -inf entries into NaN; _apply moves it with the model
        self.step_mask = step_masks(cfg.max_digits)
        self.apply(self._init)

    def _apply(self, fn, recurse=True):  # .to(), .cuda(), .half() reach the step masks too
        self.step_mask = fn(self.step_mask)
        return super()._apply(fn, recurse)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def decode(self, tokens: Tensor, ctx: Tensor, start: int = 0, need_weights: bool = False,
               cache: list[dict] | None = None) -> tuple[Tensor, list[Tensor]]:
        """tokens (B, T) at positions start.. -> logits (B, T, VOCAB) and per-layer cross-attention."""
        T = tokens.shape[1]
        x = self.tok(tokens) + self.pos[start:start + T]
        cross = []
        for i, blk in enumerate(self.blocks):
            x, _, w = blk(x, ctx, causal=True, need_weights=need_weights, cache=None if cache is None else cache[i])
            if w is not None:
                cross.append(w)
        return self.head(self.ln(x)), cross

    def forward(self, img: Tensor, tokens: Tensor, extras: bool = False) -> Tensor | tuple[Tensor, Tensor, Tensor]:
        """Teacher forcing: img (B, 1, H, W), tokens (B, T) starting with BOS -> logits (B, T, VOCAB).

        extras=True (training) also returns what training supervises: per-token digit logits
        (B, N, 11) and each decoder layer's cross-attention averaged over heads (B, L, T, N).
        """
        ctx, _ = self.encoder(img)
        if not extras:
            return self.decode(tokens, ctx)[0]
        logits, cross = self.decode(tokens, ctx, need_weights=True)
        return logits, self.aux_head(ctx), torch.stack(cross, 1).mean(2)  # (B, L, nh, T, N) -> (B, L, T, N)

    def step_probs(self, logits: Tensor) -> Tensor:
        """(..., VOCAB) logits of one decoding step -> the probabilities a reading reports, softmax at the
        fitted temperature. Label smoothing in training caps a digit's raw softmax near 0.96; the
        temperature undoes that. generate and the exported graph both come through here."""
        return (logits / self.cfg.temperature).softmax(-1)

    @torch.inference_mode()
    def generate(self, img: Tensor, return_attn: bool = False) -> Generation:
        """Greedy decoding with cached keys/values; at least one digit, at most max_digits, then EOS.
        Stops once every image has read EOS."""
        return self.greedy(img, return_attn=return_attn, stop_early=True)

    def greedy(self, img: Tensor, return_attn: bool = False, stop_early: bool = True) -> Generation:
        """The one greedy loop, for generate() and for the exported graph (nextnum/export.py), which runs
        every step (stop_early=False: a traced graph has no data-dependent exit) and returns PAD after EOS."""
        ctx, enc_attn = self.encoder(img, need_weights=return_attn)
        cache: list[dict] = [{} for _ in self.blocks]  # ctx's keys/values computed once per layer
        # (B, 1) from img's batch dimension, so that an exported graph keeps the batch size dynamic
        tok = torch.full_like(img[:, 0, 0, :1], BOS, dtype=torch.long)
        done = torch.zeros_like(tok, dtype=torch.bool)
        pad = torch.full_like(tok, PAD)
        out, probs, cross = [], [], []
        for step in range(self.step_mask.shape[0]):
            logits, w = self.decode(tok, ctx, start=step, need_weights=return_attn, cache=cache)
            p = self.step_probs(logits[:, -1] + self.step_mask[step])  # (B, VOCAB)
            nxt = torch.where(done, pad, p.argmax(-1, keepdim=True))  # (B, 1)
            out.append(nxt)
            probs.append(p)
            if return_attn:
                cross.append(torch.stack([a[:, :, -1] for a in w], 1))  # (B, layers, nh, N)
            done = done | (nxt == EOS)
            if stop_early and bool(done.all()):
                break
            tok = nxt
        return Generation(
            tokens=torch.cat(out, 1), probs=torch.stack(probs, 1),
            cross_attn=torch.stack(cross, 1) if return_attn else None,
            enc_attn=torch.stack(enc_attn, 1) if return_attn else None)


def step_masks(max_digits: int) -> Tensor:
    """(max_digits + 1, VOCAB) additive masks on the logits of each decoding step: never BOS or PAD, no EOS
    first (a reading has at least one digit), only EOS last (at most max_digits)."""
    mask = torch.zeros(max_digits + 1, VOCAB)
    mask[:, [BOS, PAD]] = float("-inf")
    mask[0, EOS] = float("-inf")
    mask[max_digits, :EOS] = float("-inf")
    return mask
