"""The Draw tab's sketchpad: a plain canvas whose value is the drawing as one PNG data URL, sent once per stroke."""
from __future__ import annotations

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
.nn-bar button { padding: 2px 12px; border: 1px solid var(--border-color-primary); border-radius: var(--radius-sm);
  background: var(--button-secondary-background-fill); color: var(--button-secondary-text-color); cursor: pointer; }
canvas { display: block; width: 100%; height: auto; background: #fff; cursor: crosshair; touch-action: none;
  border: 1px solid var(--border-color-primary); border-radius: var(--radius-md); }
"""  # height: auto keeps the canvas's own width:height

# Runs once when the pad is shown (element: its root; props.value: what the app reads). The pad keeps its
# strokes so that Undo can redraw without the last one; a picture shown by show(url) (an example) sits
# under them. Each finished stroke, Undo and Clear set props.value, and Gradio fires the pad's change event.
JS = """
const pad = element.querySelector('.nn-pad'), canvas = pad.querySelector('canvas');
const ctx = canvas.getContext('2d'), W = canvas.width, H = canvas.height, BRUSH = %(brush)d;
let strokes = [], base = null, current = null;
const pen = () => { ctx.strokeStyle = ctx.fillStyle = '#000'; ctx.lineWidth = BRUSH;
                    ctx.lineCap = ctx.lineJoin = 'round'; };
const dot = ([x, y]) => { ctx.beginPath(); ctx.arc(x, y, BRUSH / 2, 0, 2 * Math.PI); ctx.fill(); };
const segment = (a, b) => { ctx.beginPath(); ctx.moveTo(...a); ctx.lineTo(...b); ctx.stroke(); };
function paint() {
  ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, W, H);
  if (base) {
    const f = Math.min(W / base.width, H / base.height), w = base.width * f, h = base.height * f;
    ctx.drawImage(base, (W - w) / 2, (H - h) / 2, w, h);
  }
  pen();
  for (const s of strokes) { dot(s[0]); for (let i = 1; i < s.length; i++) segment(s[i - 1], s[i]); }
}
const send = () => { props.value = strokes.length || base ? canvas.toDataURL('image/png') : ''; };
const at = (e) => { const r = canvas.getBoundingClientRect();
                    return [(e.clientX - r.left) * W / r.width, (e.clientY - r.top) * H / r.height]; };
canvas.addEventListener('pointerdown', (e) => {
  if (e.button !== 0) return;
  e.preventDefault(); canvas.setPointerCapture(e.pointerId);
  current = [at(e)]; strokes.push(current); pen(); dot(current[0]);
});
canvas.addEventListener('pointermove', (e) => {
  if (!current) return;
  const p = at(e); segment(current[current.length - 1], p); current.push(p);
});
const finish = () => { if (current) { current = null; send(); } };
canvas.addEventListener('pointerup', finish);
canvas.addEventListener('pointercancel', finish);
pad.querySelector('.nn-undo').addEventListener('click', () => {
  if (strokes.length) strokes.pop(); else base = null;
  paint(); send();
});
pad.querySelector('.nn-clear').addEventListener('click', () => { strokes = []; base = null; paint(); send(); });
pad.show = (url) => {
  const img = new Image();
  img.onload = () => { strokes = []; base = img; paint(); send(); };
  img.src = url;
};
paint();
""" % {"brush": BRUSH}


def show_example_js(elem_id: str) -> str:
    """JavaScript for an event from a hidden gr.Image that gr.Examples fills: show the example on the pad
    `elem_id`, which then hands it to the app as a drawing."""
    return """(image) => { const url = image?.url;
  if (url) document.querySelector('#%s .nn-pad')?.show(url); }""" % elem_id


def sketchpad(elem_id: str) -> gr.HTML:
    """The pad, as a gr.HTML whose value (a str) is "" while blank, else the drawing as a PNG data URL."""
    return gr.HTML("", html_template=TEMPLATE, css_template=CSS, js_on_load=JS, elem_id=elem_id,
                   apply_default_css=False, padding=False)
