"""bench/browser.py's page side: drawing digits with the mouse, watching the reading, timing requests, the fake camera's video."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

import _common as C

ROOT = Path(__file__).resolve().parent.parent
# each digit as mouse strokes, points as fractions of the digit's box (x right, y down)
STROKES = {
    "0": [[(.5, 0), (.1, .25), (.1, .75), (.5, 1), (.9, .75), (.9, .25), (.5, 0)]],
    "1": [[(.5, 0), (.5, 1)]],
    "2": [[(.1, .25), (.5, 0), (.9, .25), (.1, 1), (.95, 1)]],
    "3": [[(.1, .1), (.85, .15), (.4, .45), (.9, .7), (.5, 1), (.1, .85)]],
    "4": [[(.6, 0), (.05, .65), (.95, .65)], [(.65, .3), (.65, 1)]],
    "5": [[(.9, 0), (.2, 0), (.15, .45), (.7, .45), (.9, .7), (.5, 1), (.1, .85)]],
    "6": [[(.8, 0), (.25, .45), (.15, .8), (.5, 1), (.85, .75), (.5, .55), (.15, .7)]],
    "7": [[(.05, 0), (.95, 0), (.4, 1)]],
    "8": [[(.85, .15), (.5, 0), (.15, .2), (.85, .75), (.5, 1), (.15, .75), (.85, .2)]],
    "9": [[(.85, .3), (.5, 0), (.15, .25), (.5, .5), (.85, .3), (.8, 1)]],
}
# in the page: mouse-ups, changes of the watched reading and pictures loaded, on the page's clock (ms)
WATCH_JS = """([digits, card]) => {
  const nn = window.__nn = {ups: [], changes: [], loads: []};
  document.addEventListener('pointerup', () => nn.ups.push(performance.now()), true);
  document.addEventListener('load', e => {
    if (e.target.tagName === 'IMG') nn.loads.push([performance.now(), e.target.closest('#cam_view') ? 'cam' : '']);
  }, true);
  let last = null;
  const tick = () => {
    const d = document.querySelector(digits), h = document.querySelector(card);
    const v = (d ? d.value : '') + '\\u0000' + (h ? h.innerHTML : '');
    if (v !== last) { last = v; nn.changes.push([performance.now(), d ? d.value : '']); }
    requestAnimationFrame(tick);
  };
  tick();
}"""


class Requests:
    """Every request the page makes: kind (the path's first part), start and end on the wall clock (ms)."""

    def __init__(self, page) -> None:
        self.done: list[tuple[str, float, float]] = []
        self.started: list[tuple[str, float]] = []
        page.on("request", lambda r: self.started.append((kind(r.url), time.time() * 1000)))
        page.on("requestfinished", self._finished)

    def _finished(self, r) -> None:
        t = r.timing
        self.done.append((kind(r.url), t["startTime"], t["startTime"] + max(t["responseEnd"], 0)))

    def count(self, what: str) -> int:
        return sum(k == what for k, _ in self.started)


def kind(url: str) -> str:
    path = url.split("/gradio_api/", 1)[-1]
    return path.split("/")[0].split("?")[0].split("=")[0]  # upload, component_server, queue, file, stream, ...


def watch(page, digits: str = "#draw_digits textarea", card: str = "#draw_reading") -> None:
    page.evaluate(WATCH_JS, [digits, card])


def clear(page, quiet: float = 0.8) -> None:
    """Click the tab's Clear button and wait until the reading is empty and has stayed so a moment."""
    page.get_by_role("button", name="Clear", exact=True).click()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and page.locator("#draw_digits textarea").input_value():
        time.sleep(0.1)
    time.sleep(quiet)


def draw_number(page, text: str, h: float = 0.5) -> None:
    """Draw text's digits side by side on the sketchpad, h of its height tall."""
    page.locator("#sketch canvas").first.scroll_into_view_if_needed()
    box = page.locator("#sketch canvas").first.bounding_box()
    w, gap = 0.07 * h / 0.5, 0.045 * h / 0.5
    left = 0.5 - (len(text) * w + (len(text) - 1) * gap) / 2
    for i, d in enumerate(text):
        x0 = left + i * (w + gap)
        for stroke in STROKES[d]:
            pts = [(box["x"] + (x0 + px * w) * box["width"], box["y"] + ((1 - h) / 2 + py * h) * box["height"])
                   for px, py in stroke]
            page.mouse.move(*pts[0])
            page.mouse.down()
            for p in pts[1:]:
                page.mouse.move(*p, steps=3)  # each move redraws the canvas: few steps keep drawing quick
            page.mouse.up()


def wait_settled(page, quiet: float, timeout: float = 90) -> dict[str, Any]:
    """After the last mouse-up: wait until the reading and the pictures have not changed for `quiet` s.
    Returns the times (ms after the mouse-up) of the last change of the reading and the last picture."""
    deadline = time.monotonic() + timeout
    while True:
        nn = page.evaluate("({ups: window.__nn.ups, changes: window.__nn.changes.slice(-3), "
                           "loads: window.__nn.loads.slice(-3), now: performance.now()})")
        up = nn["ups"][-1] if nn["ups"] else None
        last = max([up or 0] + [c[0] for c in nn["changes"]] + [x[0] for x in nn["loads"]])
        if nn["now"] - last >= quiet * 1000 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    after = [c for c in nn["changes"] if up is not None and c[0] > up]
    pics = [x[0] for x in nn["loads"] if up is not None and x[0] > up and x[1] != "cam"]
    return {"up_ms": up, "settle_ms": round(after[-1][0] - up, 1) if after else None,
            "pictures_ms": round(pics[-1] - up, 1) if pics else None,
            "read": page.locator("#draw_digits textarea").input_value()}


def attribute(page, reqs: Requests, up_ms: float, traces: list[dict[str, Any]]) -> dict[str, Any]:
    """Where one number's time went, in ms after its last mouse-up: the requests the page made (first
    start, last end of each kind) and the server phases of the last event Gradio ran for it."""
    up = page.evaluate("performance.timeOrigin") + up_ms  # the wall clock, as request.timing and Gradio use
    out: dict[str, Any] = {}
    for k in ("upload", "component_server", "queue", "file"):
        spans = [(s - up, e - up) for kk, s, e in reqs.done if kk == k and s >= up]
        if spans:
            out[k] = (min(s for s, _ in spans), max(e for _, e in spans), len(spans))
    mine = [t for t in traces if t["timestamp"] * 1000 >= up - 50 and t.get("fn_name") != "predict_frame"]
    if mine:
        t = mine[-1]
        start = t["timestamp"] * 1000 - up
        out["server"] = {"start": start, "queue_wait": t["queue_wait_ms"], "preprocess": t["preprocess_ms"],
                         "handler": t["fn_call_ms"], "postprocess": t["postprocess_ms"], "total": t["total_ms"],
                         "events": len(mine)}
    return out


def summarise(profile: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the numbers of each step's start and end (ms after the mouse-up) and of the server phases."""
    out: dict[str, Any] = {}
    for k in ("upload", "component_server", "queue", "file"):
        spans = [p[k] for p in profile if k in p]
        if spans:
            out[k] = {"start": C.stats([s[0] for s in spans])["p50"], "end": C.stats([s[1] for s in spans])["p50"],
                      "requests": C.stats([s[2] for s in spans])["p50"]}
    server = [p["server"] for p in profile if "server" in p]
    if server:
        out["server"] = {k: C.stats([s[k] for s in server])["p50"] for k in server[0]}
    return out


def profile_rows(s: dict[str, Any]) -> list[list[Any]]:
    names = {"upload": "files uploaded by the page", "component_server": "component calls (an image editor's blobs)",
             "queue": "reading requested (queue/join)", "file": "pictures fetched"}
    rows = [[f"{names[k]} ({s[k]['requests']:.0f} requests)", s[k]["start"], s[k]["end"], s[k]["end"] - s[k]["start"]]
            for k in ("upload", "component_server", "queue", "file") if k in s]
    if "server" in s:
        v = s["server"]
        rows.append([f"server: the last reading's event ({v['events']:.0f} events ran)", v["start"],
                     v["start"] + v["total"], v["total"]])
        rows += [[f"  server {k}", "", "", v[k]] for k in ("queue_wait", "preprocess", "handler", "postprocess")]
    return rows


def stream_phases(traces: list[dict[str, Any]]) -> dict[str, Any]:
    """Per frame, from the webcam stream's trace (Gradio adds it when the stream ends): mean ms of each phase."""
    t = [x for x in traces if x.get("fn_name") == "predict_frame"]
    if not t:
        return {}
    t = t[-1]
    n = max(1, t["n_iterations"])
    return {"frames": t["n_iterations"], **{k: round(t[f"{k}_ms"] / n, 2)
                                             for k in ("preprocess", "fn_call", "postprocess", "total")}}


def write_video(path: Path, number: str = "385", frames: int = 60, fps: int = 30) -> None:
    """A y4m video for Chromium's fake camera: paper with a written number inside the webcam guide box,
    and a dot that moves below it, so no two frames (nor the pictures made from them) are the same."""
    h, w = 480, 640
    paper = np.full((h, w), 225, np.uint8)
    paper[170:310, 100:540] = cv2.resize(cv2.imread(str(ROOT / "examples" / f"{number}.png"), 0), (440, 140))
    chroma = np.full(2 * (h // 2) * (w // 2), 128, np.uint8).tobytes()
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for i in range(frames):
            g = paper.copy()
            cv2.circle(g, (40 + i * (w - 80) // frames, 440), 8, 40, -1)
            f.write(b"FRAME\n" + g.tobytes() + chroma)
