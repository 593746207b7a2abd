"""The Draw tab's sketchpad: a plain canvas whose value is the drawing as one PNG data URL, sent once per stroke."""
from __future__ import annotations

import json
from pathlib import Path

import gradio as gr

WIDTH, HEIGHT = 900, 300  # px of the drawing the app reads (the canvas is shown scaled to the page's width)
BRUSH = 14  # stroke width, px of the drawing: what the models were checked on (tests/drawings.py)

# Why not gr.Sketchpad: Gradio's image editor renders through WebGL and, after each stroke, exports its
# background, layer and composite as three PNGs and uploads each before the app can read anything. In
# headless Chromium (software rendering, 2 cores) that took 0.6 s of every 0.9-1.0 s from mouse-up to
# reading. A 2D canvas encodes one PNG in milliseconds, and the value travels with the event itself.

TEMPLATE = f"""<div class="nn-pad">
  <div class="nn-bar">
    <span class="nn-label">Write a number (1–5 digits)</span>
    <button type="button" class="nn-undo" title="Take back the last stroke">Undo</button>
    <button type="button" class="nn-clear" title="Wipe the drawing">Clear</button>
  </div>
  <canvas width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="Sketchpad: draw here"></canvas>
</div>"""

CSS = """
.nn-bar { display: flex; align-items: center; gap: 6px; margin-bottom: 4px; }
.nn-label { flex: 1; font-size: var(--block-label-text-size); color: var(--block-label-text-color); }
.nn-label.nn-busy { color: #a60; font-weight: 600; }
.nn-bar button { padding: 2px 12px; border: 1px solid var(--border-color-primary); border-radius: var(--radius-sm);
  background: var(--button-secondary-background-fill); color: var(--button-secondary-text-color); cursor: pointer; }
canvas { display: block; width: 100%; height: auto; background: #fff; cursor: crosshair; touch-action: none;
  border: 1px solid var(--border-color-primary); border-radius: var(--radius-md); }
"""  # height: auto keeps the canvas's own width:height

# the pad's behaviour (strokes, Undo, Clear, examples, a sharp canvas, the primary pointer, a full queue)
JS_FILE = Path(__file__).with_name("sketchpad.js")


def pad_js(retry_id: str) -> str:
    """sketchpad.js for js_on_load, with its settings: the drawing's size, the brush, and the button that
    sends the drawing again when the queue was full (`retry_id`)."""
    settings = {"width": WIDTH, "height": HEIGHT, "brush": BRUSH, "retry": retry_id}
    return f"const PAD = {json.dumps(settings)};\n" + JS_FILE.read_text(encoding="utf-8")


def show_example_js(elem_id: str) -> str:
    """JavaScript for an event from a hidden gr.Image that gr.Examples fills: show the example on the pad
    `elem_id`, which then hands it to the app as a drawing."""
    return """(image) => { const url = image?.url;
  if (url) document.querySelector('#%s .nn-pad')?.show(url); }""" % elem_id


def sketchpad(elem_id: str, retry_id: str) -> gr.HTML:
    """The pad, as a gr.HTML whose value (a str) is "" while blank, else the drawing as a PNG data URL
    (pad_js says what the other ids are for)."""
    return gr.HTML("", html_template=TEMPLATE, css_template=CSS, js_on_load=pad_js(retry_id),
                   elem_id=elem_id,
                   apply_default_css=False, padding=False)
