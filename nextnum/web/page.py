"""The page's own CSS and JavaScript (page.css, webcam.js beside this module), read once, and the title."""
from __future__ import annotations

import json
from pathlib import Path

from .views import DIGITS_BOX

HERE = Path(__file__).resolve().parent
TITLE = ("<div class='nn-title'><h1>NextNum</h1><p>Reads handwritten numbers of 1–5 digits with a tiny Vision "
         "Transformer, and shows where it looked for each digit.</p></div>")
MAP_ASPECT = DIGITS_BOX  # width:height of a per-digit map as views draws it


def head() -> str:
    """page.css as a <style> for the document's head (a gr.HTML's head= puts it there once)."""
    css = (HERE / "page.css").read_text(encoding="utf-8").replace("MAP_ASPECT", "%d / %d" % MAP_ASPECT)
    return "<style>\n" + css + "</style>"


def maps_height(columns: int, rows: int, width: int = 480) -> int:
    """A per-digit gallery's height in px for `rows` rows of maps `columns` to a row, at a typical width:
    Gradio wants a number (see app.digit_maps); page.css lets the gallery hug its maps at any width."""
    w, h = MAP_ASPECT
    return round(rows * (width / columns * h / w + 28))


def webcam_js(roi: tuple[float, float, float, float], seconds: float) -> str:
    """webcam.js for a gr.HTML's js_on_load: the guide box `roi` (x0, y0, x1, y1 as fractions of the frame)
    drawn over the live preview, and a stream stopped by the page itself after `seconds`."""
    settings = json.dumps({"roi": list(roi), "seconds": seconds})
    return f"const NN = {settings};\n" + (HERE / "webcam.js").read_text(encoding="utf-8")
