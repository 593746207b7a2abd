"""Serving: the app on loopback, N gradio_client users each sending a bounded number of /predict requests.

    python bench/serving.py --checkpoint checkpoints/nextnum [--users 1 4 8] [--requests 25] [--json]
    python bench/serving.py --quick --json

Starts `python app.py` in a subprocess on a free loopback port (as tests/appserver.py does, with the
app's own settings: queue, concurrency limits, 1 torch thread). Each user is one gradio_client Client
(its own session) in its own thread, uploading 640x480 webcam-like photos (bench/realsets.py) to
/predict one after another, as the Upload tab does: the latency is the whole round trip the user
waits for (upload, queue, reading with every attention view, encoding the output images). Output
files are not downloaded (download_files=False): a browser fetches them afterwards, in parallel.
/list_checkpoints rows (no model work at all), with 1 user and with the most users (just before and
just after the /predict rows), show what Gradio and the clients cost on their own; p95_ratio is
/predict's p95 at the most users over that floor's (the mean of its two runs). Prints a table;
--json adds one JSON line last. Errors must be 0.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


def write_photos(folder: Path, n: int, bank) -> list[tuple[str, str]]:
    import cv2
    out = []
    for i, (img, text) in enumerate(C.photos(n, seed=3, bank=bank)):
        p = folder / f"photo{i:03d}.jpg"
        cv2.imwrite(str(p), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
        out.append((str(p), text))
    return out


def load(url: str, users: int, requests: int, files: list[tuple[str, str]], api_name: str = "/predict",
         sample=None) -> dict[str, Any]:
    """users concurrent clients x requests each; sample() (if given) is called every 50 ms meanwhile."""
    from gradio_client import Client, handle_file
    clients = [Client(url, verbose=False, download_files=False) for _ in range(users)]
    lat: list[float] = []
    errors: list[str] = []
    right = [0]
    lock = threading.Lock()
    start = threading.Barrier(users + 1)

    def user(k: int) -> None:
        c = clients[k]
        start.wait()
        for i in range(requests):
            path, text = files[(k * requests + i) % len(files)]
            t = time.perf_counter()
            try:
                if api_name == "/predict":
                    out = c.predict(handle_file(path), "rollout", "mean", api_name="/predict")
                    ok = out[0] == text
                else:
                    c.predict(api_name=api_name)
                    ok = False
                ms = (time.perf_counter() - t) * 1000
                with lock:
                    lat.append(ms)
                    right[0] += ok
            except Exception as e:  # counted, not raised: the figure to report is how many failed
                with lock:
                    errors.append(f"{type(e).__name__}: {e}"[:200])

    threads = [threading.Thread(target=user, args=(k,), daemon=True) for k in range(users)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    while any(t.is_alive() for t in threads):
        if sample is not None:
            sample()
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    for c in clients:
        try:
            c.close()
        except Exception:
            pass
    return {"users": users, "requests": users * requests, "ok": len(lat), "errors": len(errors),
            "error_examples": errors[:3], "wall_s": round(wall, 2), "req_per_s": round(len(lat) / wall, 1),
            "latency_ms": C.stats(lat), "read_right": right[0] / max(1, len(lat)) if api_name == "/predict" else None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default=None, help="checkpoint folder (default: checkpoints/nextnum)")
    ap.add_argument("--users", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--requests", type=int, default=25, help="requests per user")
    ap.add_argument("--photos", type=int, default=40, help="distinct photos, cycled")
    ap.add_argument("--quick", action="store_true", help="1 and 2 users x 2 requests, the committed digit sample")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.users, args.requests, args.photos = [1, 2], 2, 4
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    ckpt = C.checkpoint_path(args.checkpoint)
    res: dict[str, Any] = {"bench": "serving", "machine": C.machine(), "checkpoint": str(ckpt),
                           "requests_per_user": args.requests}
    if args.quick:
        from nextnum.data import load_fixture
        bank = load_fixture()
    else:
        bank = C.digit_bank()[0]
    with tempfile.TemporaryDirectory() as tmp:
        files = write_photos(Path(tmp), args.photos, bank)
        app = C.App(ckpt, Path(tmp) / "app")
        try:
            res["startup_s"] = round(app.startup_s, 1)
            load(app.url, 1, 2, files)  # warm-up: first request loads lazily imported modules
            res["gradio_floor"] = load(app.url, 1, args.requests, files, api_name="/list_checkpoints")
            # the same no-op endpoint under the heaviest load: what Gradio and the clients alone cost
            res["gradio_floor_max"] = load(app.url, max(args.users), args.requests, files,
                                           api_name="/list_checkpoints")
            res["runs"] = [load(app.url, n, args.requests, files) for n in args.users]
            # the no-op endpoint again at the most users, right after: the ratio's floor is the mean of both
            res["gradio_floor_max_after"] = load(app.url, max(args.users), args.requests, files,
                                                 api_name="/list_checkpoints")
        finally:
            app.close()
    floor = (res["gradio_floor_max"]["latency_ms"]["p95"] + res["gradio_floor_max_after"]["latency_ms"]["p95"]) / 2
    top = max(res["runs"], key=lambda r: r["users"])
    res["p95_ratio"] = round(top["latency_ms"]["p95"] / floor, 2)
    rows = [[f"/predict, {r['users']} user(s)", r["requests"], r["errors"], r["req_per_s"], r["latency_ms"]["p50"],
             r["latency_ms"]["p95"], f"{r['read_right']:.0%}"] for r in res["runs"]]
    for f in (res["gradio_floor"], res["gradio_floor_max"], res["gradio_floor_max_after"]):
        rows.append([f"/list_checkpoints (no model), {f['users']} user(s)", f["requests"], f["errors"], f["req_per_s"],
                     f["latency_ms"]["p50"], f["latency_ms"]["p95"], "-"])
    mc = res["machine"]
    print(f"Serving on loopback ({mc['cpu']}, {mc['cores']} cores, load {mc['loadavg_1m']}; app started in "
          f"{res['startup_s']} s; {args.requests} requests per user, 640x480 photo uploads)\n")
    print(C.table(["endpoint, users", "requests", "errors", "requests/s", "p50 ms", "p95 ms", "read right"], rows))
    print(f"\n/predict p95 at {top['users']} users / /list_checkpoints p95 at {top['users']} users (before and after, "
          f"mean {floor:.0f} ms): {res['p95_ratio']:.2f}x")
    if args.json:
        C.emit_json(res)
    return 1 if any(r["errors"] for r in res["runs"]) else 0


if __name__ == "__main__":
    sys.exit(main())
