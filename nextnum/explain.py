"""Where the model looked for one reading: its attention as token maps, and pictures of them at any size.

A reading keeps only the small token maps. Pictures are drawn when asked for, on a Window (a part of the
original at the size a page shows it), so an overlay shown 240 pixels high is drawn 240 pixels high,
not drawn over a 2,000-pixel original and then shrunk. The full-size pictures (heat, per_digit,
combined, rollout_overlay) are drawn on first use.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from . import attention as A
from .geometry import Window
from .config import ModelConfig
from .geometry import Geometry


@dataclass(eq=False)
class AttentionViews:
    """One reading's attention. Maps are float32 in [0, 1] with max 1; pictures are RGB uint8."""
    cross: np.ndarray  # (S, dec_layers, heads, gh, gw) raw cross-attention per digit
    rollout: np.ndarray  # (gh, gw) encoder attention rollout: attention each token receives
    encoder: np.ndarray  # (enc_layers, heads, gh, gw) attention each token receives, per head
    original: np.ndarray = field(repr=False)  # RGB image the pictures are drawn on
    geometry: Geometry = field(repr=False)
    cfg: ModelConfig = field(repr=False)
    canvas: np.ndarray | None = field(default=None, repr=False)  # (H, W) the model's input: its ink, for maps_on_ink
    _heat: dict = field(default_factory=dict, repr=False)  # window -> heat_maps(window), drawn once each
    _pictures: dict = field(default_factory=dict, repr=False)  # window -> the original on it, shrunk once each

    def window(self, rect: A.Rect | None = None, box: tuple[int, int] | None = None) -> Window:
        """The part rect (pixels; None: all) of the original, shrunk to fit inside box (w, h)."""
        return Window.fit(self.original.shape, rect, box)

    def _on(self, window: Window | None) -> tuple[np.ndarray, A.Rect | None]:
        """The picture to draw on, and where the canvas lies in it (overlays skip the rest)."""
        if window is None:
            return self.original, self.geometry.canvas_rect()
        if window not in self._pictures:  # the per-digit overlays and the combined map share one window
            self._pictures[window] = window.picture(self.original)
        return self._pictures[window], None  # small: the overlays find the maps' extent themselves

    def heat_maps(self, window: Window | None = None) -> list[np.ndarray]:
        """Per output digit: its cross-attention averaged over layers and heads, on the original or a window;
        with cfg.maps_on_ink, only on and near the ink the model read."""
        if window not in self._heat:
            maps = [A.on_original(c.mean((0, 1)), self.geometry, self.cfg, window) for c in self.cross]
            if self.cfg.maps_on_ink and self.canvas is not None:
                near = A.ink_near(self.canvas)
                near = (self.geometry.warp_to_original(near) if window is None
                        else self.geometry.warp_to_original(near, window.rect, window.size))
                maps = [A.normalise_map(m * near) for m in maps]
            self._heat[window] = maps
        return self._heat[window]

    def digit_overlays(self, window: Window | None = None) -> list[np.ndarray]:
        """Per output digit: its heat map over the picture ("where it looked for digit k")."""
        img, rect = self._on(window)
        return [A.overlay(img, h, rect=rect) for h in self.heat_maps(window)]

    def combined_overlay(self, window: Window | None = None) -> np.ndarray:
        """Every digit's map in its own colour over the greyed picture."""
        img, rect = self._on(window)
        return A.combined(img, self.heat_maps(window), rect=rect)

    def cross_map(self, digit: int, layer: int | None = None, head: int | None = None,
                  window: Window | None = None) -> np.ndarray:
        """One digit's cross-attention for one layer/head (None = averaged), on the original or a window."""
        m = self.cross[digit]
        m = m.mean(0) if layer is None else m[layer]
        m = m.mean(0) if head is None else m[head]
        return A.on_original(m, self.geometry, self.cfg, window)

    def cross_overlay(self, digit: int, layer: int | None = None, head: int | None = None,
                      window: Window | None = None) -> np.ndarray:
        """Overlay of one digit's cross-attention for one layer/head (None = averaged)."""
        img, rect = self._on(window)
        return A.overlay(img, self.cross_map(digit, layer, head, window), rect=rect)

    def encoder_overlay(self, layer: int | None = None, head: int | None = None,
                        window: Window | None = None) -> np.ndarray:
        """Overlay of encoder self-attention: rollout when layer is None, else one layer (head None = mean)."""
        if layer is None:
            m = self.rollout
        else:
            m = self.encoder[layer].mean(0) if head is None else self.encoder[layer, head]
        img, rect = self._on(window)
        return A.overlay(img, A.on_original(m, self.geometry, self.cfg, window), cmap="viridis", rect=rect)

    # the full-size pictures, drawn on first use

    @cached_property
    def heat(self) -> list[np.ndarray]:
        """Per output digit: (H0, W0) heat map over the whole original."""
        return self.heat_maps()

    @cached_property
    def per_digit(self) -> list[np.ndarray]:
        return self.digit_overlays()

    @cached_property
    def combined(self) -> np.ndarray:
        return self.combined_overlay()

    @cached_property
    def rollout_overlay(self) -> np.ndarray:
        return self.encoder_overlay()
