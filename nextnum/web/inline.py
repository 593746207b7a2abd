"""Pictures that travel inside an event's answer as JPEG data URLs: no file per picture to write, serve and fetch."""
from __future__ import annotations

import base64
from typing import Any

import cv2
import gradio as gr
import numpy as np
from gradio.components.gallery import GalleryData, GalleryImage
from gradio.data_classes import ImageData

QUALITY = 80  # JPEG quality: the maps are smooth colour over a photo or a drawing, shown at their own size


def jpeg_url(img: Any, quality: int = QUALITY) -> str:
    """An RGB, RGBA (alpha dropped) or grey uint8 picture as a data:image/jpeg;base64 URL."""
    a = np.asarray(img)
    bgr = a if a.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(a[..., :3]), cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"could not encode a picture of shape {a.shape} as JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def picture(img: Any) -> ImageData:
    return ImageData(url=jpeg_url(img), mime_type="image/jpeg")


class InlineImage(gr.Image):
    """gr.Image, drawn by its own frontend (a template), whose returned picture is a JPEG data URL in the
    answer. Gradio would write each picture into its cache, hash it, and serve it on a request of its own:
    with downloads, that took more of the app's time under 8 visitors than the reading did."""

    is_template = True

    def postprocess(self, value: Any) -> ImageData | None:
        return None if value is None else picture(value)


class InlineGallery(gr.Gallery):
    """gr.Gallery whose pictures (arrays, or (array, caption) pairs) travel as JPEG data URLs (InlineImage)."""

    is_template = True

    def postprocess(self, value: Any) -> GalleryData:
        items = [v if isinstance(v, (tuple, list)) else (v, None) for v in value or []]
        return GalleryData(root=[GalleryImage(image=picture(img), caption=cap) for img, cap in items])
