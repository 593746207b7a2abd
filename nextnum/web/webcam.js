// The Webcam tab (runs once, as a gr.HTML's js_on_load; NN = {roi, seconds} is set before it):
// - the guide box, NN.roi of the frame, drawn over the live preview where the person aims, placed on the
//   picture the <video> shows (object-fit keeps its aspect inside the element);
// - the stream stopped at NN.seconds by pressing Gradio's own Stop: the server ends a stream at its time
//   limit, but Gradio's page goes on sending frames to it until Stop is pressed. The page counts from when
//   its button first says Stop (the stream is open), polled 4 times a second, and stops a second early:
//   under load the server's own count may have started before the page saw the button change.
(() => {
  const root = () => document.getElementById('cam');
  let started = null, guide = null;
  const EARLY = 1;  // s
  function place(video) {
    const box = video.parentElement;
    if (getComputedStyle(box).position === 'static') box.style.position = 'relative';
    if (!guide || guide.parentElement !== box) {
      guide = document.createElement('div');
      guide.className = 'nn-guide';
      guide.innerHTML = '<span>digits inside this box</span>';
      box.appendChild(guide);
    }
    const vw = video.videoWidth, vh = video.videoHeight, ew = video.clientWidth, eh = video.clientHeight;
    if (!vw || !vh || !ew || !eh) { guide.style.display = 'none'; return; }
    const f = Math.min(ew / vw, eh / vh), w = vw * f, h = vh * f;  // the picture inside the element
    const left = video.offsetLeft + (ew - w) / 2, top = video.offsetTop + (eh - h) / 2;
    const [x0, y0, x1, y1] = NN.roi;
    Object.assign(guide.style, {display: 'block', left: `${left + x0 * w}px`, top: `${top + y0 * h}px`,
                                width: `${(x1 - x0) * w}px`, height: `${(y1 - y0) * h}px`});
  }
  function recordButton(el) {
    return el.querySelector('button[aria-label="capture photo"]');
  }
  function tick() {
    const el = root();
    if (!el) return;
    const video = el.querySelector('video');
    if (video) place(video); else if (guide) guide.style.display = 'none';
    const rec = recordButton(el);
    const streaming = !!rec && /stop/i.test(rec.textContent);
    if (!streaming) { started = null; return; }
    if (started === null) started = performance.now();
    const left = NN.seconds - EARLY - (performance.now() - started) / 1000;
    if (guide) guide.querySelector('span').textContent = left > 0
      ? `digits inside this box · stops in ${Math.ceil(left)} s` : 'digits inside this box';
    if (left <= 0) { started = null; rec.click(); }
  }
  setInterval(tick, 250);
})();
