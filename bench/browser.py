"""Real time as the user sees it: headless Chromium draws numbers on the Draw tab and films one with the webcam.

    python bench/browser.py --checkpoint checkpoints/nextnum [--numbers 20] [--webcam-seconds 15] [--json]
    python bench/browser.py --quick --json                    # 3 numbers, 3 s of webcam: checks the script runs
    python bench/browser.py --url http://127.0.0.1:7860       # an app that is already running
    python bench/browser.py --trace runs/trace.zip            # also a Playwright trace (playwright show-trace)

Starts `python app.py` (1 torch thread, Gradio's per-request profiling on) unless --url is given, and
Debian's Chromium through Playwright (headless, software rendering, a fake camera).
- Draw tab: each number is drawn with the mouse, stroke by stroke, on a cleared sketchpad. Settle time:
  from the last mouse-up to the last change of the reading (digits and reading card); pictures: to the
  last picture loaded.
- Webcam tab: the fake camera plays a y4m video of a written number (a dot moves beside it, so every
  frame differs). Readings shown per second: new annotated frames loaded into the page.
- Where the time goes: the requests the page makes after each mouse-up (request.timing), against the
  server's own phases for the same events (Gradio's GRADIO_PROFILING traces: queue wait, preprocess,
  handler, postprocess), as medians in ms after the mouse-up.
Prints tables; --json adds one JSON line last.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
import _page as P  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless=new", "--disable-gpu", "--no-sandbox", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]


def server_traces(url: str) -> list[dict[str, Any]]:
    """Gradio's per-event phase timings (empty when the app runs without GRADIO_PROFILING=1)."""
    try:
        with urllib.request.urlopen(f"{url}/gradio_api/profiling/traces", timeout=10) as r:
            return [t for t in json.load(r) if t.get("fn_name") != "gradio_file_upload"]
    except OSError:
        return []


def numbers(n: int, seed: int = 0, longest: int = 4) -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join(str(d) for d in rng.integers(0, 10, int(rng.integers(1, longest + 1)))) for _ in range(n)]


def draw_phase(page, reqs: P.Requests, url: str, texts: list[str], quiet: float, height: float = 0.5) -> dict[str, Any]:
    """Draw each number and time its reading; the profile of where each number's time went."""
    page.get_by_role("tab", name="Draw").click()
    rows, profile = [], []
    for text in texts:
        P.clear(page)
        P.draw_number(page, text, height)
        res = P.wait_settled(page, quiet)
        res.update(text=text)
        rows.append(res)
        if res["up_ms"] is not None:
            profile.append(P.attribute(page, reqs, res["up_ms"], server_traces(url)))
    settle = [r["settle_ms"] for r in rows if r["settle_ms"] is not None]
    thirds = [rows[k * len(rows) // 3:(k + 1) * len(rows) // 3] for k in range(3)]
    by_position = [C.stats([r["settle_ms"] for r in part if r["settle_ms"] is not None])["p50"] for part in thirds]
    pictures = [r["pictures_ms"] for r in rows if r["pictures_ms"] is not None]
    return {"numbers": len(rows), "read_right": sum(r["read"] == r["text"] for r in rows) / max(1, len(rows)),
            "read_nothing": sum(r["read"] == "" for r in rows) / max(1, len(rows)), "height": height,
            "unchanged": sum(r["settle_ms"] is None for r in rows), "settle_ms": C.stats(settle),
            "settle_p50_by_third": by_position,  # the first, middle and last third of the numbers drawn
            "last_over_first_third": round(by_position[2] / by_position[0], 2) if by_position[0] else None,
            "pictures_ms": C.stats(pictures), "profile": P.summarise(profile), "rows": rows}


def count_cam(page) -> int:
    return page.evaluate("window.__nn.loads.filter(x => x[1] === 'cam').length")


def webcam_phase(page, reqs: P.Requests, url: str, seconds: float, warmup: float = 3.0) -> dict[str, Any]:
    """Stream the fake camera for warmup + seconds; readings shown per second over the last `seconds`."""
    page.get_by_role("tab", name="Webcam").click()
    page.get_by_role("button", name="Click to Access Webcam").click()
    record = page.get_by_role("button", name="capture photo").first
    record.wait_for(timeout=30_000)
    record.click()
    t_start = time.monotonic()
    try:
        time.sleep(warmup)
        t0, n0, s0, u0 = page.evaluate("performance.now()"), count_cam(page), reqs.count("stream"), reqs.count("upload")
        marks = [(t0, n0)]
        for _ in range(max(1, round(seconds / 15))):  # readings shown in each 15 s
            time.sleep(seconds / max(1, round(seconds / 15)))
            marks.append((page.evaluate("performance.now()"), count_cam(page)))
        t1, n1, s1, u1 = marks[-1][0], marks[-1][1], reqs.count("stream"), reqs.count("upload")
        read = page.locator("#cam_digits textarea").input_value()
    finally:
        record.click()  # stop streaming
        streamed = time.monotonic() - t_start
    time.sleep(2)  # Gradio files the stream's trace when it ends
    phases = P.stream_phases(server_traces(url))
    span = (t1 - t0) / 1000
    blocks = [round((b - a) / ((tb - ta) / 1000), 2) for (ta, a), (tb, b) in zip(marks, marks[1:])]
    return {"seconds": round(span, 2), "readings_per_s": round((n1 - n0) / span, 2), "readings_per_s_by_15s": blocks,
            "frames_sent_per_s": round((s1 - s0) / span, 2),
            "uploads": u1 - u0,  # files the page uploaded meanwhile: none come from the webcam itself
            "frames_read_per_s": round(phases["frames"] / streamed, 2) if phases else None,
            "server_ms_per_frame": phases, "read": read}


def run(url: str, args: argparse.Namespace, video: Path) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM,
                                     args=ARGS + [f"--use-file-for-fake-video-capture={video}"])
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        if args.trace:
            context.tracing.start(screenshots=True, snapshots=True)
        page = context.new_page()
        reqs = P.Requests(page)
        t = time.perf_counter()
        page.goto(url, wait_until="load")  # not networkidle: the app keeps connections open
        page.wait_for_selector("#sketch canvas", timeout=60_000)
        res: dict[str, Any] = {"page_load_s": round(time.perf_counter() - t, 2)}
        P.watch(page)
        res["draw"] = draw_phase(page, reqs, url, numbers(args.numbers, args.seed, args.longest), args.quiet, args.height)
        res["webcam"] = webcam_phase(page, reqs, url, args.webcam_seconds) if args.webcam_seconds > 0 else None
        if args.trace:
            Path(args.trace).parent.mkdir(parents=True, exist_ok=True)
            context.tracing.stop(path=args.trace)
        browser.close()
    return res


def report(res: dict[str, Any]) -> None:
    d, w, mc = res["draw"], res["webcam"], res["machine"]
    print(f"Real time in headless Chromium ({mc['cpu']}, {mc['cores']} cores, load {mc['loadavg_1m']}; "
          f"software rendering; checkpoint {res['checkpoint']})\n")
    rows = [["Draw: last mouse-up -> reading settled", d["settle_ms"]["p50"], d["settle_ms"]["p95"],
             f"{d['numbers']} numbers, {d['read_right']:.0%} read right, "
             f"{d['unchanged']} unchanged"],
            ["Draw: last mouse-up -> last picture loaded", d["pictures_ms"]["p50"], d["pictures_ms"]["p95"], ""]]
    print(C.table(["what", "p50 ms", "p95 ms", "note"], rows))
    print("\nWhere a Draw reading's time goes (median ms after the last mouse-up; server phases from Gradio)\n")
    print(C.table(["step", "starts", "ends", "median duration"], P.profile_rows(d["profile"])))
    if w:
        ph = w["server_ms_per_frame"] or {}
        print(f"\nWebcam over {w['seconds']} s: {w['readings_per_s']} readings shown/s; {w['frames_sent_per_s']} "
              f"frames sent/s by the page, {w['frames_read_per_s']} read/s by the server; last reading {w['read']!r}; "
              f"{w['uploads']} files uploaded by the page meanwhile")
        if ph:
            print(C.table(["server, per frame (mean ms)", "preprocess", "handler", "postprocess", "total"],
                          [[f"{ph['frames']} frames", ph["preprocess"], ph["fn_call"], ph["postprocess"], ph["total"]]]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default=None, help="checkpoint folder (default: checkpoints/nextnum)")
    ap.add_argument("--url", default=None, help="an app already running (default: start app.py here)")
    ap.add_argument("--numbers", type=int, default=20, help="numbers drawn on the Draw tab")
    ap.add_argument("--webcam-seconds", type=float, default=15.0, help="seconds of webcam counted (0: skip)")
    ap.add_argument("--quiet", type=float, default=3.0, help="a reading unchanged this long (s) has settled")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--height", type=float, default=0.5, help="digit height, share of the pad's (0.3: drawn small)")
    ap.add_argument("--longest", type=int, default=4, help="digits in the longest number drawn")
    ap.add_argument("--trace", default=None, help="write a Playwright trace zip here")
    ap.add_argument("--quick", action="store_true", help="3 numbers, 3 s of webcam")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.numbers, args.webcam_seconds, args.quiet = 3, 3.0, 1.0
    if not Path(CHROMIUM).exists():
        sys.exit(f"error: {CHROMIUM} not found (apt-get install chromium)")
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    ckpt = C.checkpoint_path(args.checkpoint)
    res: dict[str, Any] = {"bench": "browser", "machine": C.machine(), "checkpoint": str(ckpt)}
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "number.y4m"
        P.write_video(video)
        env = {"GRADIO_PROFILING": "1", "NEXTNUM_STREAM_SECONDS": str(max(30, int(args.webcam_seconds) + 15))}
        app = None if args.url else C.App(ckpt, Path(tmp) / "app", env=env)  # a stream long enough to measure
        try:
            res["startup_s"] = None if app is None else round(app.startup_s, 1)
            res.update(run(args.url or app.url, args, video))
        finally:
            if app is not None:
                app.close()
    report(res)
    if args.json:
        C.emit_json(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
