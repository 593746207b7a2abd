"""Where the canvas lies on the original image: the affine map between them (Geometry), the mapping of a map
over the canvas back onto the original's pixels, and the part of the original a picture shows (Window)."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, ends exclusive


@dataclass
class Geometry:
    """Affine map original image (x, y) -> canvas (x, y): canvas = scale * (p - crop_xy) + offset."""
    src_hw: tuple[int, int]  # original image (height, width)
    canvas_hw: tuple[int, int]
    crop: tuple[float, float, float, float]  # ink box in the original: x0, y0, x1, y1
    scale: float  # canvas pixels per original pixel
    offset: tuple[float, float]  # canvas (x, y) of the crop's top-left corner
    roi: tuple[float, float, float, float] | None = None  # region searched, in original pixels
    # "original" is the image as read: inputs.read_image shrinks one over READ_SIDE; zoom is the given
    # image's pixels per original pixel (1.0 unless it was shrunk)
    zoom: float = 1.0

    def matrix(self) -> np.ndarray:
        """2x3 affine matrix original -> canvas."""
        s, (x0, y0), (ox, oy) = self.scale, self.crop[:2], self.offset
        return np.array([[s, 0, ox - s * x0], [0, s, oy - s * y0]], dtype=np.float64)

    def to_canvas(self, pts: np.ndarray) -> np.ndarray:
        """(..., 2) original (x, y) -> canvas (x, y)."""
        pts = np.asarray(pts, dtype=np.float64)
        return pts * self.scale + (np.array(self.offset) - self.scale * np.array(self.crop[:2]))

    def to_original(self, pts: np.ndarray) -> np.ndarray:
        """(..., 2) canvas (x, y) -> original (x, y)."""
        pts = np.asarray(pts, dtype=np.float64)
        return (pts - np.array(self.offset)) / self.scale + np.array(self.crop[:2])

    def _span(self, x0: float = 0.0, y0: float = 0.0, kx: float = 1.0, ky: float = 1.0) -> tuple[int, int, int, int]:
        """Where the whole canvas lies on the original, to the nearest pixel: x, y, width, height; or in a
        picture of the original whose pixel (0, 0) is the original's (x0, y0), kx by ky pictures pixels
        per original pixel."""
        (fx0, fy0), (fx1, fy1) = self.to_original(np.array([[0.0, 0.0], self.canvas_hw[::-1]], np.float64))
        return (int(round((fx0 - x0) * kx)), int(round((fy0 - y0) * ky)),
                max(1, int(round((fx1 - fx0) * kx))), max(1, int(round((fy1 - fy0) * ky))))

    def canvas_rect(self) -> tuple[int, int, int, int]:
        """The part of the original the canvas covers, clipped to the image: x0, y0, x1, y1 (ends exclusive)."""
        h, w = self.src_hw
        X0, Y0, cw, ch = self._span()
        return max(0, X0), max(0, Y0), min(w, X0 + cw), min(h, Y0 + ch)

    def warp_to_original(self, canvas_map: np.ndarray, rect: tuple[int, int, int, int] | None = None,
                         size: tuple[int, int] | None = None) -> np.ndarray:
        """A (H, W) map over the canvas, resampled onto the original image's pixels (zero outside); or onto
        the part `rect` (x0, y0, x1, y1) of the original shown at `size` (w, h), so that a picture shown
        small is drawn small rather than drawn large and shrunk.

        The map is only an axis-aligned scale and shift, so this is one resize of the canvas to the size
        it has in the picture, pasted at its place (to the nearest pixel), not a warp of the image."""
        h, w = self.src_hw
        fx0, fy0, fx1, fy1 = rect or (0, 0, w, h)
        W, H = size or (fx1 - fx0, fy1 - fy0)
        kx, ky = W / (fx1 - fx0), H / (fy1 - fy0)
        out = np.zeros((H, W), np.float32)
        X0, Y0, cw, ch = self._span(fx0, fy0, kx, ky)
        x0, y0, x1, y1 = max(0, X0), max(0, Y0), min(W, X0 + cw), min(H, Y0 + ch)
        if x1 <= x0 or y1 <= y0:
            return out
        big = cv2.resize(canvas_map.astype(np.float32, copy=False), (cw, ch), interpolation=cv2.INTER_LINEAR)
        out[y0:y1, x0:x1] = big[y0 - Y0:y1 - Y0, x0 - X0:x1 - X0]
        return out


@dataclass(frozen=True)
class Window:
    """A part `rect` (x0, y0, x1, y1, in pixels) of an original image, as a picture of `size` (w, h): maps
    and overlays are drawn straight at the size a page shows them."""
    rect: Rect
    size: tuple[int, int]

    @classmethod
    def fit(cls, hw: tuple[int, int], rect: Rect | None = None, box: tuple[int, int] | None = None) -> Window:
        """`rect` of an image of shape hw (None: all of it), shrunk to fit inside box (w, h), never enlarged."""
        h, w = hw[:2]
        x0, y0, x1, y1 = (int(v) for v in (rect or (0, 0, w, h)))
        x0, y0 = min(max(0, x0), w - 1), min(max(0, y0), h - 1)
        x1, y1 = max(x0 + 1, min(w, x1)), max(y0 + 1, min(h, y1))
        k = 1.0 if box is None else min(1.0, box[0] / (x1 - x0), box[1] / (y1 - y0))
        return cls((x0, y0, x1, y1), (max(1, round((x1 - x0) * k)), max(1, round((y1 - y0) * k))))

    def picture(self, img: np.ndarray) -> np.ndarray:
        """The image's rect at this window's size (area-averaged)."""
        x0, y0, x1, y1 = self.rect
        sub = img[y0:y1, x0:x1]
        # Averaging keeps thin strokes when a picture shrinks a lot, but INTER_AREA's general (non-integer)
        # path was most of the time the Draw tab's pictures took (1-2 ms a picture). Its exact halving is
        # fast: halve while the picture is twice the window or more, then bilinear, which shrinking by less
        # than half reads every source pixel for (10x faster in all, on a 640x480 photo's encoder view)
        while sub.shape[1] >= 2 * self.size[0] and sub.shape[0] >= 2 * self.size[1]:
            h, w = sub.shape[:2]
            sub = cv2.resize(sub[:h - h % 2, :w - w % 2], (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        if sub.shape[1::-1] == self.size:
            return sub
        return cv2.resize(sub, self.size, interpolation=cv2.INTER_LINEAR)
