// The Draw tab's pad (a gr.HTML's js_on_load: element is its root, props.value what the app reads; PAD =
// {width, height, brush, retry} is set before this runs).
// - Strokes are kept in drawing units (PAD.width x PAD.height), so that Undo can redraw without the last one;
//   a picture handed over by show(url) (an example) sits under them.
// - The canvas on the page has as many pixels as the screen shows (devicePixelRatio) and is sharp; what the
//   app reads is drawn again at PAD.width x PAD.height and sent as one PNG data URL per finished stroke,
//   Undo and Clear (setting props.value fires the pad's change event).
// - Only the primary pointer draws (the first finger, the pen, the mouse's left button): a second finger or
//   a palm neither draws nor takes the stroke over.
// - When the server's queue is full, the drawing is kept and sent again (by the #PAD.retry button) until
//   it is taken.
const pad = element.querySelector('.nn-pad'), canvas = pad.querySelector('canvas');
const label = pad.querySelector('.nn-label'), idle = label.textContent;
const W = PAD.width, H = PAD.height, BRUSH = PAD.brush;
const ctx = canvas.getContext('2d');
let strokes = [], base = null, current = null, drawing = null;  // drawing: the pointerId drawing now

function paint(c, scale) {
  c.setTransform(scale, 0, 0, scale, 0, 0);
  c.fillStyle = '#fff'; c.fillRect(0, 0, W, H);
  if (base) {
    const f = Math.min(W / base.width, H / base.height), w = base.width * f, h = base.height * f;
    c.drawImage(base, (W - w) / 2, (H - h) / 2, w, h);
  }
  pen(c);
  for (const s of strokes) { dot(c, s[0]); for (let i = 1; i < s.length; i++) segment(c, s[i - 1], s[i]); }
}
const pen = (c) => { c.strokeStyle = c.fillStyle = '#000'; c.lineWidth = BRUSH; c.lineCap = c.lineJoin = 'round'; };
const dot = (c, [x, y]) => { c.beginPath(); c.arc(x, y, BRUSH / 2, 0, 2 * Math.PI); c.fill(); };
const segment = (c, a, b) => { c.beginPath(); c.moveTo(...a); c.lineTo(...b); c.stroke(); };

// the page's canvas: its CSS width times devicePixelRatio, in pixels; drawn in drawing units
let scale = 1;
function fit() {
  const css = canvas.clientWidth;
  const px = css ? Math.max(1, Math.round(css * (window.devicePixelRatio || 1))) : W;
  if (px !== canvas.width) { canvas.width = px; canvas.height = Math.round(px * H / W); }
  scale = canvas.width / W;
  paint(ctx, scale);
}
new ResizeObserver(fit).observe(canvas);
matchMedia(`(resolution: ${window.devicePixelRatio || 1}dppx)`).addEventListener?.('change', fit);

function rendered() {  // the drawing the app reads: PAD.width x PAD.height, whatever the screen
  const off = document.createElement('canvas');
  off.width = W; off.height = H;
  paint(off.getContext('2d'), 1);
  return off.toDataURL('image/png');
}
const send = () => { props.value = strokes.length || base ? rendered() : ''; };
const at = (e) => { const r = canvas.getBoundingClientRect();
                    return [(e.clientX - r.left) * W / r.width, (e.clientY - r.top) * H / r.height]; };

canvas.addEventListener('pointerdown', (e) => {
  if (!e.isPrimary || e.button !== 0 || drawing !== null) return;
  e.preventDefault(); canvas.setPointerCapture(e.pointerId);
  drawing = e.pointerId;
  current = [at(e)]; strokes.push(current);
  ctx.setTransform(scale, 0, 0, scale, 0, 0); pen(ctx); dot(ctx, current[0]);
});
canvas.addEventListener('pointermove', (e) => {
  if (e.pointerId !== drawing) return;
  const p = at(e);
  ctx.setTransform(scale, 0, 0, scale, 0, 0); pen(ctx); segment(ctx, current[current.length - 1], p);
  current.push(p);
});
const finish = (e) => { if (e.pointerId === drawing) { drawing = null; current = null; send(); } };
canvas.addEventListener('pointerup', finish);
canvas.addEventListener('pointercancel', finish);
pad.querySelector('.nn-undo').addEventListener('click', () => {
  if (strokes.length) strokes.pop(); else base = null;
  paint(ctx, scale); send();
});
pad.querySelector('.nn-clear').addEventListener('click', () => { strokes = []; base = null; paint(ctx, scale); send(); });

// an example: shown under the strokes, which are cleared
pad.show = (url) => {
  const img = new Image();
  img.onload = () => { strokes = []; base = img; paint(ctx, scale); send(); };
  img.src = url;
};

// a full queue: the server answers 503 to the pad's event; keep the drawing and send it again
let retry = null, wait = 1000;
const mine = (body) => typeof body === 'string' && props.value && body.includes(props.value.slice(-80));
if (!window.__nnFetch) {  // one watcher for the page, whatever the number of pads
  window.__nnFetch = window.fetch;
  window.fetch = async (...args) => {
    const res = await window.__nnFetch(...args);
    const url = String(args[0]?.url ?? args[0]);
    if (url.includes('/queue/join')) window.dispatchEvent(new CustomEvent('nn-join', {detail: {status: res.status,
                                                                            body: args[1]?.body}}));
    return res;
  };
}
window.addEventListener('nn-join', (e) => {
  if (!mine(e.detail.body)) return;
  if (e.detail.status === 503) {
    label.textContent = 'busy, drawing kept — reading again';
    label.classList.add('nn-busy');
    clearTimeout(retry);
    retry = setTimeout(() => document.getElementById(PAD.retry)?.click(), wait);
    wait = Math.min(2 * wait, 8000);
  } else if (e.detail.status < 400) {
    label.textContent = idle; label.classList.remove('nn-busy'); wait = 1000;
  }
});
fit();
