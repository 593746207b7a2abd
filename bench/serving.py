"""Serving: the app on loopback, N gradio_client users each sending a bounded number of /predict requests.

    python bench/serving.py --checkpoint checkpoints/nextnum [--users 1 4 8] [--requests 25] [--rounds 3] [--json]
    python bench/serving.py --quick --json

Starts `python app.py` in a subprocess on a free loopback port (as tests/appserver.py does, with the
app's own settings: queue, concurrency limits, 1 torch thread). Each user is one gradio_client Client
(its own session; `--client page`: one kept-alive connection for everything, as a browser tab) in its own thread, uploading 640x480 webcam-like photos (bench/realsets.py) to
/predict one after another, as the Upload tab does: the latency is the whole round trip the user
waits for (upload, queue, reading with the pictures the Upload tab shows while its stages accordion is
closed: the digit maps, the combined map and the encoder's; encoding the output images). Output
files are not downloaded unless --download: then every client takes every picture of each reading
before its request counts as done, as a browser does: a picture inside the answer (a JPEG data URL, as
the app sends them) is decoded; a file is fetched over the client's own kept-alive connection
(`--download browser`, the default), or with gradio_client's own downloader (`--download
gradio_client`: a new HTTP client, temporary folder and hash per file, which costs the client ~25 ms of
CPU per file on these same cores).
/list_checkpoints (no model work at all) shows what Gradio and the clients cost on their own. At the
most users the two endpoints take turns for --rounds rounds (no-op, /predict, no-op, ...), because
this VM's speed drifts by tens of percent within a minute: p95_ratio is /predict's p95 over the
no-op's, each over all its rounds pooled, and round_ratios gives each /predict round over the mean of
the no-op runs just before and after it. Prints a table; --json adds one JSON line last. Errors must be 0.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import tempfile
import threading
import time
import uuid
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


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process pid has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def picture_urls(out: Any) -> list[str]:
    """The URL of every picture in a reading's outputs (images, gallery items): a file to fetch (http) or the
    picture itself (a data URL)."""
    if isinstance(out, dict):
        url = out.get("url")
        own = [url] if isinstance(url, str) and url.startswith(("http", "data:")) else []
        return own + [u for k, v in out.items() if k != "url" for u in picture_urls(v)]
    return [u for v in out for u in picture_urls(v)] if isinstance(out, (list, tuple)) else []


class PageClient:
    """One visitor's page: one kept-alive connection and one session for the upload, the event and its
    stream, and the pictures, as a browser tab does (Gradio's REST call route standing in for the page's
    queue stream): the load without gradio_client's own costs (a new HTTP client per upload and per call)."""

    def __init__(self, url: str) -> None:
        import httpx
        self.h, self.session = httpx.Client(base_url=url, timeout=60), uuid.uuid4().hex

    def call(self, api: str, data: list) -> list:
        r = self.h.post(f"/gradio_api/call/{api}", json={"data": data, "session_hash": self.session})
        r.raise_for_status()
        with self.h.stream("GET", f"/gradio_api/call/{api}/{r.json()['event_id']}") as s:
            lines = list(s.iter_lines())
        if not any(ln.startswith("event: complete") for ln in lines):
            raise RuntimeError(f"{api}: {lines[-2:]}")
        return json.loads([ln[5:] for ln in lines if ln.startswith("data:")][-1])

    def predict(self, path: str | None = None, *args: str, api_name: str) -> list:
        if api_name != "/predict":
            return self.call(api_name.strip("/"), list(args))
        with open(path, "rb") as f:
            up = self.h.post("/gradio_api/upload", files=[("files", (Path(path).name, f))])
        up.raise_for_status()
        image = {"path": up.json()[0], "orig_name": Path(path).name, "meta": {"_type": "gradio.FileData"}}
        return self.call("predict", [image, *args, False])  # False: the stages accordion is closed

    def close(self) -> None:
        self.h.close()


def fetch_pictures(b, out: Any) -> tuple[int, int, int]:
    """Fetch every picture of one reading's outputs as a page would, over the httpx client b.
    Returns (pictures, of them files fetched, bytes)."""
    pictures = files = size = 0
    for u in picture_urls(out):
        if u.startswith("data:"):  # inside the answer already: decoded, as the page does
            size += len(base64.b64decode(u.split(",", 1)[1]))
        else:
            r = b.get(u)
            r.raise_for_status()
            size += len(r.content)
            files += 1
        pictures += 1
    return pictures, files, size


def load(url: str, users: int, requests: int, files: list[tuple[str, str]], api_name: str = "/predict",
         sample=None, app_pid: int | None = None, download: str | None = None,
         folder: str | None = None, client: str = "gradio_client") -> dict[str, Any]:
    """users concurrent clients x requests each; sample() (if given) is called every 50 ms meanwhile. With
    app_pid: the CPU time per request of the app and of the clients (this process), while they ran. With
    download: each client fetches every output file of each reading ("browser": over one kept-alive
    connection per client; "gradio_client": its own downloader, into folder). client: gradio_client
    Clients, or PageClients."""
    import httpx
    from gradio_client import Client, handle_file
    own = download == "gradio_client"
    page = client == "page"
    clients = [PageClient(url) if page else Client(url, verbose=False, download_files=folder if own else False)
               for _ in range(users)]
    browsers = [(c.h if page else httpx.Client(timeout=60)) if download == "browser" else None for c in clients]
    fetched = [0, 0, 0]  # pictures, of them files fetched, bytes
    lat: list[float] = []
    errors: list[str] = []
    right = [0]
    lock = threading.Lock()
    start = threading.Barrier(users + 1)

    def user(k: int) -> None:
        c, b = clients[k], browsers[k]
        start.wait()
        for i in range(requests):
            path, text = files[(k * requests + i) % len(files)]
            t = time.perf_counter()
            try:
                if api_name == "/predict":
                    out = c.predict(path if page else handle_file(path), "rollout", "mean", api_name="/predict")
                    if b is not None:
                        got = fetch_pictures(b, out[1:])
                        with lock:
                            fetched[:] = [a + g for a, g in zip(fetched, got)]
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
    t0, app0, own0 = time.perf_counter(), cpu_s(app_pid) if app_pid else 0.0, time.process_time()
    while any(t.is_alive() for t in threads):
        if sample is not None:
            sample()
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    cpu = {"app_cpu_ms": round((cpu_s(app_pid) - app0) * 1000 / max(1, len(lat)), 1),
           "client_cpu_ms": round((time.process_time() - own0) * 1000 / max(1, len(lat)), 1)} if app_pid else {}
    for c in clients + [b for b in browsers if b is not None and not page]:
        try:
            c.close()
        except Exception:
            pass
    per = max(1, len(lat))
    got = {"pictures_per_req": round(fetched[0] / per, 2), "files_per_req": round(fetched[1] / per, 2),
           "kb_per_req": round(fetched[2] / 1024 / per, 1)} if download == "browser" else {}
    return {"users": users, "requests": users * requests, "ok": len(lat), "errors": len(errors),
            "error_examples": errors[:3], "wall_s": round(wall, 2), "req_per_s": round(len(lat) / wall, 1),
            "latency_ms": C.stats(lat), "_lat": lat, **cpu, **got,
            "read_right": right[0] / max(1, len(lat)) if api_name == "/predict" else None}


def alternate(url: str, users: int, requests: int, rounds: int, files: list[tuple[str, str]],
              pid: int | None = None, **download: Any) -> dict[str, Any]:
    """rounds of /predict at `users`, each between two no-op runs at `users`: the ratio of their p95s,
    pooled over the rounds, and each round's ratio to the mean of its two neighbours."""
    floors = [load(url, users, requests, files, api_name="/list_checkpoints", app_pid=pid, **download)]
    runs = []
    for _ in range(rounds):
        runs.append(load(url, users, requests, files, app_pid=pid, **download))
        floors.append(load(url, users, requests, files, api_name="/list_checkpoints", app_pid=pid, **download))
    predict = C.stats([ms for r in runs for ms in r["_lat"]])
    floor = C.stats([ms for f in floors for ms in f["_lat"]])
    each = [r["latency_ms"]["p95"] / ((a["latency_ms"]["p95"] + b["latency_ms"]["p95"]) / 2)
            for r, a, b in zip(runs, floors, floors[1:])]
    return {"users": users, "rounds": runs, "floors": floors, "predict_ms": predict, "floor_ms": floor,
            "p95_ratio": round(predict["p95"] / floor["p95"], 2), "round_ratios": [round(x, 2) for x in each]}


def report(res: dict[str, Any], args: argparse.Namespace) -> None:
    alt = res["alternating"]

    def row(name: str, r: dict[str, Any], right: bool) -> list[Any]:
        return [name, r["requests"], r["errors"], r["req_per_s"], r["latency_ms"]["p50"], r["latency_ms"]["p95"],
                r.get("app_cpu_ms"), r.get("client_cpu_ms"), f"{r['read_right']:.0%}" if right else "-"]
    rows = [row(f"/predict, {r['users']} user(s)", r, True) for r in res["runs"] if r["users"] != alt["users"]]
    rows.append(row(f"/list_checkpoints (no model), {res['gradio_floor']['users']} user(s)", res["gradio_floor"], False))
    turns = [f for pair in zip(alt["floors"], alt["rounds"]) for f in pair] + alt["floors"][-1:]
    for k, r in enumerate(turns):
        name = "/predict" if k % 2 else "/list_checkpoints (no model)"
        rows.append(row(f"turn {k + 1}: {name}, {r['users']} user(s)", r, bool(k % 2)))
    mc = res["machine"]
    print(f"Serving on loopback ({mc['cpu']}, {mc['cores']} cores, load {mc['loadavg_1m']}; app started in "
          f"{res['startup_s']} s; {args.requests} requests per user, 640x480 photo uploads)\n")
    print(C.table(["endpoint, users", "requests", "errors", "requests/s", "p50 ms", "p95 ms", "app CPU ms/req",
                   "client CPU ms/req", "read right"], rows))
    print(f"\n/predict p95 / /list_checkpoints p95 at {alt['users']} users, {len(alt['rounds'])} rounds pooled: "
          f"{alt['predict_ms']['p95']:.0f} / {alt['floor_ms']['p95']:.0f} ms = {res['p95_ratio']:.2f}x "
          f"(each round: {', '.join(f'{x:.2f}x' for x in alt['round_ratios'])})")
    if args.download == "browser":
        r = alt["rounds"][0]
        print(f"each reading's pictures: {r['pictures_per_req']}, {r['kb_per_req']} KB; of them fetched as files over "
              f"one connection per client: {r['files_per_req']}")
    elif args.download:
        print("each reading's files fetched with gradio_client's downloader")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default=None, help="checkpoint folder (default: checkpoints/nextnum)")
    ap.add_argument("--users", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--requests", type=int, default=25, help="requests per user")
    ap.add_argument("--rounds", type=int, default=3, help="/predict rounds at the most users, between no-op runs")
    ap.add_argument("--photos", type=int, default=40, help="distinct photos, cycled")
    ap.add_argument("--quick", action="store_true", help="1 and 2 users x 2 requests, 1 round, the committed digits")
    ap.add_argument("--download", nargs="?", const="browser", choices=["browser", "gradio_client"], default=None,
                    help="clients fetch every output file: over one kept-alive connection each, as a browser does "
                         "(browser, the default), or with gradio_client's own downloader")
    ap.add_argument("--client", choices=["gradio_client", "page"], default="gradio_client",
                    help="each user a gradio_client Client (an API user), or a page: one kept-alive connection "
                         "for everything, as a browser tab")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.client == "page" and args.download == "gradio_client":
        ap.error("--download gradio_client needs --client gradio_client")
    if args.quick:
        args.users, args.requests, args.photos, args.rounds = [1, 2], 2, 4, 1
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    ckpt = C.checkpoint_path(args.checkpoint)
    res: dict[str, Any] = {"bench": "serving", "machine": C.machine(), "checkpoint": str(ckpt),
                           "requests_per_user": args.requests, "download": args.download, "client": args.client}
    if args.quick:
        from nextnum.data import load_fixture
        bank = load_fixture()
    else:
        bank = C.digit_bank()[0]
    top = max(args.users)
    with tempfile.TemporaryDirectory() as tmp:
        files = write_photos(Path(tmp), args.photos, bank)
        app = C.App(ckpt, Path(tmp) / "app")
        try:
            res["startup_s"] = round(app.startup_s, 1)
            load(app.url, 1, 2, files)  # warm-up: first request loads lazily imported modules
            pid = app.proc.pid
            res["gradio_floor"] = load(app.url, 1, args.requests, files, api_name="/list_checkpoints", app_pid=pid,
                                       client=args.client)
            dl = {"download": args.download, "folder": str(Path(tmp) / "downloads"), "client": args.client}
            res["runs"] = [load(app.url, n, args.requests, files, app_pid=pid, **dl)
                           for n in sorted(set(args.users)) if n != top]
            res["alternating"] = alternate(app.url, top, args.requests, args.rounds, files, pid, **dl)
        finally:
            app.close()
    res["runs"].append(res["alternating"]["rounds"][0])
    res["p95_ratio"] = res["alternating"]["p95_ratio"]
    report(res, args)
    if args.json:
        C.emit_json(drop_raw(res))
    return 1 if any(r["errors"] for r in res["runs"] + res["alternating"]["rounds"]) else 0


def drop_raw(o: Any) -> Any:
    """res without the raw latency lists (kept for pooling, too long for the JSON line)."""
    if isinstance(o, dict):
        return {k: drop_raw(v) for k, v in o.items() if k != "_lat"}
    return [drop_raw(v) for v in o] if isinstance(o, list) else o


if __name__ == "__main__":
    sys.exit(main())
