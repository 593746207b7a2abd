"""Is the app's memory flat over many requests? Launches app.py (as tests/appserver.py does) and reads
the resident memory (VmRSS) of its process while requests go in.

    python bench/memory_soak.py --requests 1000            # one gradio_client session, /predict
    python bench/memory_soak.py --requests 1000 --sessions  # every request a new session (REST API)
    python bench/memory_soak.py --quick --json              # 20 requests after 5: checks the script runs
    python bench/memory_soak.py --mix 16 --minutes 3 --json  # 16 clients mixing three endpoints, then idle

The first phase is one user uploading pictures again and again (the examples, in turn), through
gradio_client as an API user would. The second is many users, one request each: Gradio keeps a state
object per session (up to launch(state_session_capacity=...)), so this is the case where memory grows
until that cap. --mix N instead runs N clients at once for --minutes, each sending /predict (an upload),
/read_sketch (a drawing as a data URL) and /predict_frame_once (a webcam frame) in turn through Gradio's
REST API, then leaves the app idle for --idle seconds: the resident memory before, at its highest, and
after. Prints one line per `--every` requests and a summary; --json for the summary alone.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))


def rss_mb(pid: int) -> float:
    from procmem import memory_mb
    return memory_mb(pid)["VmRSS"]


def cache_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=1000, help="requests to send after the warm-up")
    ap.add_argument("--warmup", type=int, default=50, help="requests before the first measurement")
    ap.add_argument("--every", type=int, default=100, help="print the memory every this many requests")
    ap.add_argument("--sessions", action="store_true", help="a new session for every request (REST API)")
    ap.add_argument("--quick", action="store_true", help="20 requests after a warm-up of 5, memory every 10")
    ap.add_argument("--json", action="store_true", help="print only the summary, as JSON")
    ap.add_argument("--mix", type=int, default=0, help="N clients mixing /predict, /read_sketch, /predict_frame_once")
    ap.add_argument("--minutes", type=float, default=3.0, help="with --mix: how long the clients send")
    ap.add_argument("--idle", type=float, default=30.0, help="with --mix: seconds idle before the last reading")
    args = ap.parse_args(argv)
    if args.mix:
        return mix(args)
    if args.quick:
        args.requests, args.warmup, args.every = 20, 5, 10

    import httpx
    from gradio_client import Client, handle_file

    from appserver import AppServer, make_checkpoints

    examples = sorted((ROOT / "examples").glob("*.png"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        start = make_checkpoints(tmp / "checkpoints")  # the shipped model when there is one, else a smoke model
        os.environ["GRADIO_TEMP_DIR"] = str(tmp / "cache")  # the app's uploads and returned images, alone
        app = AppServer(tmp / "checkpoints", start, tmp / "app.log")
        try:
            if args.sessions:
                http = httpx.Client(base_url=app.url, timeout=60)

                def request(i: int) -> None:  # Gradio's REST API: each call is a new session
                    path = http.post("/gradio_api/upload", files=[("files", ("x.png", examples[i % len(examples)]
                                                                              .read_bytes(), "image/png"))]).json()[0]
                    data = [{"path": path, "orig_name": "x.png", "meta": {"_type": "gradio.FileData"}},
                            "rollout", "mean", False]  # no stage pictures, as the Upload tab's page reads
                    r = http.post("/gradio_api/call/predict", json={"data": data})
                    with http.stream("GET", f"/gradio_api/call/predict/{r.json()['event_id']}") as s:
                        body = "".join(s.iter_text())
                    assert "event: complete" in body, body[-300:]
            else:
                client = Client(app.url, verbose=False, download_files=False)

                def request(i: int) -> None:
                    client.predict(handle_file(str(examples[i % len(examples)])), api_name="/predict")

            for i in range(args.warmup):
                request(i)
            rss = [rss_mb(app.proc.pid)]
            t0 = time.perf_counter()
            for i in range(1, args.requests + 1):
                request(i)
                if i % args.every == 0 or i == args.requests:
                    rss.append(rss_mb(app.proc.pid))
                    if not args.json:
                        print(f"{i:6d} requests  RSS {rss[-1]:7.1f} MB  ({rss[-1] - rss[0]:+6.1f})  "
                              f"{i / (time.perf_counter() - t0):5.1f} req/s", flush=True)
            summary = {"mode": "new session per request" if args.sessions else "one gradio_client session",
                       "endpoint": "/predict", "checkpoint": start, "requests": args.requests, "warmup": args.warmup,
                       "rss_start_mb": round(rss[0], 1), "rss_end_mb": round(rss[-1], 1),
                       "rss_max_mb": round(max(rss), 1), "growth_mb": round(rss[-1] - rss[0], 1),
                       "growth_kb_per_request": round((rss[-1] - rss[0]) * 1024 / args.requests, 1),
                       "cache_mb": round(cache_mb(tmp / "cache"), 3),  # deleted after an hour (delete_cache)
                       "seconds": round(time.perf_counter() - t0, 1)}
            print(json.dumps(summary))
        finally:
            app.close()
    return 0


def rest(http, api: str, data: list) -> None:
    """One call through Gradio's REST API (POST, then its event stream); raises unless it completed."""
    r = http.post(f"/gradio_api/call/{api}", json={"data": data})
    r.raise_for_status()
    with http.stream("GET", f"/gradio_api/call/{api}/{r.json()['event_id']}") as s:
        body = "".join(s.iter_text())
    if "event: complete" not in body:
        raise RuntimeError(body[-300:])


def mix(args: argparse.Namespace) -> int:
    """--mix: N clients for --minutes, then --idle seconds; prints the summary."""
    import base64
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from appserver import AppServer, make_checkpoints
    examples = sorted((ROOT / "examples").glob("*.png"))
    urls = ["data:image/png;base64," + base64.b64encode(p.read_bytes()).decode() for p in examples]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        start = make_checkpoints(tmp / "checkpoints")
        os.environ["GRADIO_TEMP_DIR"] = str(tmp / "cache")
        app = AppServer(tmp / "checkpoints", start, tmp / "app.log")
        done, errors, peak, stop = [0], [], [0.0], threading.Event()

        def client(k: int) -> None:
            http = httpx.Client(base_url=app.url, timeout=120)
            i = k
            while not stop.is_set():
                i += 1
                try:
                    up = lambda: {"path": http.post("/gradio_api/upload", files=[("files", (  # noqa: E731
                        "x.png", examples[i % len(examples)].read_bytes(), "image/png"))]).json()[0],
                        "orig_name": "x.png", "meta": {"_type": "gradio.FileData"}}
                    if i % 3 == 0:
                        rest(http, "predict", [up(), "rollout", "mean", False])
                    elif i % 3 == 1:
                        rest(http, "read_sketch", [urls[i % len(urls)], "rollout", "mean", False])
                    else:
                        rest(http, "predict_frame_once", [up(), True])
                    done[0] += 1
                except Exception as e:  # noqa: BLE001 - counted and reported
                    errors.append(repr(e)[:200])
        try:
            for i in range(6):  # warm: the model loaded, each endpoint once
                rest(httpx.Client(base_url=app.url, timeout=120), "read_sketch", [urls[i % len(urls)], "rollout", "mean", False])
            before = rss_mb(app.proc.pid)
            t0 = time.perf_counter()
            with ThreadPoolExecutor(args.mix) as ex:
                futures = [ex.submit(client, k) for k in range(args.mix)]
                while time.perf_counter() - t0 < args.minutes * 60:
                    time.sleep(2)
                    peak[0] = max(peak[0], rss_mb(app.proc.pid))
                stop.set()
                for f in futures:
                    f.result()
            loaded = rss_mb(app.proc.pid)
            time.sleep(args.idle)
            after = rss_mb(app.proc.pid)
        finally:
            app.close()
    summary = {"mode": f"{args.mix} clients mixing /predict, /read_sketch, /predict_frame_once",
               "minutes": args.minutes, "requests": done[0], "errors": len(errors), "first_errors": errors[:3],
               "rss_before_mb": round(before, 1), "rss_max_mb": round(peak[0], 1), "rss_end_of_load_mb": round(loaded, 1),
               "rss_after_idle_mb": round(after, 1), "idle_s": args.idle, "growth_after_idle_mb": round(after - before, 1)}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
