"""The running app under load: no error or leak, streams that end at their limit, a bounded queue, old files deleted."""
from __future__ import annotations

import base64
import json
import queue
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

from procmem import memory_mb

httpx = pytest.importorskip("httpx")
pytest.importorskip("gradio_client")
from gradio_client import handle_file  # noqa: E402

from reliability_app import CACHE_S, MB, QUEUE_MAX, STREAM_S, call, client  # noqa: E402
from reliability_app import files, reference, server  # noqa: E402, F401 (fixtures)

from conftest import ROOT  # noqa: E402


# ---------------------------------------------------------------- load

def data_url(img: np.ndarray) -> dict:
    return {"url": "data:image/png;base64," + base64.b64encode(cv2.imencode(".png", img)[1].tobytes()).decode(),
            "meta": {"_type": "gradio.FileData"}}


def fetch_image(h, filedata: dict) -> None:
    """What a browser does with a returned image: decode it from its data URL, or fetch it whole from the
    file route (where the load test first failed: two requests returning the same picture raced on one
    cache file)."""
    url = filedata["url"]
    if url.startswith("data:"):
        data = base64.b64decode(url.split(",", 1)[1])
    else:
        r = h.get(url)
        r.raise_for_status()
        assert len(r.content) == int(r.headers["content-length"])
        data = r.content
    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) is not None


def test_8_clients_x_50_requests_without_an_error(server, files):
    frame = cv2.imread(str(files["frame.png"]))[::2, ::2]  # 320x240, the digits inside the guide box
    frames = [frame] * 4 + [np.pad(cv2.resize(cv2.imread(str(ROOT / "examples" / n)), (240, 80)),
                                   ((80, 80), (40, 40), (0, 0)), constant_values=225)
                            for n in ("17.png", "385.png", "2026.png", "61854.png")]
    upload_bytes = files["digits.png"].read_bytes()
    errors, done, deadline, mid = [], [0] * 8, [time.monotonic() + 30], []

    def user(i: int, n: int = 50) -> None:  # one browser tab: its own connection and session
        session = uuid.uuid4().hex
        with httpx.Client(base_url=server.url, timeout=30) as h:
            for k in range(n):
                if time.monotonic() > deadline[0]:
                    errors.append(f"user {i}: out of time after {k} requests")
                    return
                try:
                    if k % 10 == 9:  # every tenth an upload with the full set of pictures back
                        path = h.post("/gradio_api/upload", files=[("files", ("d.png", upload_bytes, "image/png"))])
                        out = call(h, "predict", [{"path": path.json()[0], "orig_name": "d.png",
                                                   "meta": {"_type": "gradio.FileData"}}, "rollout", "mean", False],
                                   session)
                        assert out[0].isdigit(), out[0]
                        for pic in [out[3], out[4]] + [g["image"] for g in out[2]]:
                            fetch_image(h, pic)
                    else:  # webcam frames, 4 users showing the same number (the same pictures come back)
                        out = call(h, "predict_frame_once", [data_url(frames[i]), True], session)
                        fetch_image(h, out[0])
                    done[i] += 1
                    if sum(done) == 200 and not mid:
                        mid.append(memory_mb(server.proc.pid)["VmRSS"])
                except Exception as e:  # noqa: BLE001 - every failure is counted, none stops the others
                    errors.append(f"user {i} request {k}: {type(e).__name__}: {e}")

    with ThreadPoolExecutor(8) as ex:  # warm up (the first concurrent requests grow the app ~85 MB, once)
        list(ex.map(lambda i: user(i, 10), range(8)))
    assert not errors, errors[:5]
    rss0, t, done[:], mid[:] = memory_mb(server.proc.pid)["VmRSS"], time.monotonic(), [0] * 8, []
    deadline[0] = t + 120  # each user gives up after this, so the test ends by itself (about 20 s on 2 quiet cores)
    with ThreadPoolExecutor(8) as ex:
        list(ex.map(user, range(8)))
    took, end = time.monotonic() - t, memory_mb(server.proc.pid)["VmRSS"]
    print(f"\n400 requests in {took:.1f} s ({400 / took:.1f}/s), app RSS {rss0:.0f} -> {mid[:1]} -> {end:.0f} MB")
    assert not errors, errors[:5]
    assert sum(done) == 400 and server.alive()
    # the first few hundred concurrent requests grow the app by ~85 MB, once (threads, allocator, caches);
    # after that, a leak of 200 KB a request (a picture kept per request) would show here
    assert end - mid[0] < 40, f"the app grew by {end - mid[0]:.0f} MB over the last 200 requests"


# ---------------------------------------------------------------- webcam streams and the queue

class Tab:
    """One browser tab on Gradio's queue protocol: join an event, read the session's messages, send frames."""

    def __init__(self, server) -> None:
        self.url, self.hash = server.url, uuid.uuid4().hex[:12]
        self.http = httpx.Client(base_url=self.url, timeout=30)
        self.messages: queue.Queue = queue.Queue()
        self._sse: httpx.Client | None = None
        cfg = self.http.get("/config").json()
        self.dep = next(d for d in cfg["dependencies"] if d.get("api_name") == "predict_frame")

    def body(self, frame: dict) -> dict:
        return {"data": [frame, None, None, True], "fn_index": self.dep["id"], "session_hash": self.hash,
                "event_data": None, "trigger_id": self.dep["targets"][0][0]}

    def join(self, frame: dict) -> httpx.Response:
        return self.http.post("/gradio_api/queue/join", json=self.body(frame))

    def listen(self) -> None:
        def read() -> None:
            try:
                with httpx.Client(base_url=self.url, timeout=httpx.Timeout(30, read=60)) as c:
                    self._sse = c
                    with c.stream("GET", f"/gradio_api/queue/data?session_hash={self.hash}") as r:
                        for line in r.iter_lines():
                            if line.startswith("data:"):
                                self.messages.put({**json.loads(line[5:]), "t": time.monotonic()})
            except Exception as e:  # noqa: BLE001 - closed by close()
                self.messages.put({"msg": "closed", "error": repr(e), "t": time.monotonic()})
        threading.Thread(target=read, daemon=True).start()

    def wait(self, msg: str, timeout: float) -> dict:
        end = time.monotonic() + timeout
        while True:
            m = self.messages.get(timeout=max(0.01, end - time.monotonic()))
            if m["msg"] == msg:
                return m
            assert m["msg"] not in ("process_completed", "closed") or msg == "close_stream", m

    def seen(self) -> list[str]:
        return [m["msg"] for m in list(self.messages.queue)]

    def send(self, event_id: str, frame: dict) -> None:
        self.http.post(f"/gradio_api/stream/{event_id}", json=self.body(frame)).raise_for_status()

    def close(self) -> None:
        if self._sse is not None:
            self._sse.close()
        self.http.close()


def test_streams_end_at_their_time_limit_and_free_the_worker(server, files):
    frame = data_url(cv2.imread(str(files["frame.png"]))[::2, ::2])
    a, b, crowd = Tab(server), Tab(server), Tab(server)
    try:
        ea = a.join(frame).json()["event_id"]
        a.listen()
        started = a.wait("process_starts", 30)["t"]
        result: dict = {}

        def film_for_a() -> None:  # like the browser: the next frame as soon as a result comes
            while True:
                m = a.messages.get(timeout=STREAM_S + 30)
                if m["msg"] == "process_streaming":
                    result["frames"] = result.get("frames", 0) + 1
                    time.sleep(0.1)
                    a.send(ea, frame)
                elif m["msg"] == "process_completed":
                    result["ended"] = m["t"]
                    return
        feeder = threading.Thread(target=film_for_a, daemon=True)
        feeder.start()

        eb = b.join(frame).json()["event_id"]  # a second user while the only webcam worker is taken
        b.listen()
        assert b.wait("estimation", 10)["rank"] == 0
        # the queue is bounded: once QUEUE_MAX events wait, more are turned away (503), not piled up
        codes = [crowd.join(frame).status_code for _ in range(QUEUE_MAX + 5)]
        assert codes == [200] * (QUEUE_MAX - 1) + [503] * 6, codes
        crowd.listen()
        time.sleep(0.5)
        crowd.close()  # that tab is closed: its waiting events are dropped

        feeder.join(STREAM_S + 30)
        took = result["ended"] - started
        # ends at its limit: an upper bound that allows for a busy 2-core CI still catches a stream that goes on
        assert STREAM_S - 0.5 < took < STREAM_S + 15 and result["frames"] >= 3, result
        got = b.wait("process_starts", 10)["t"]  # b waited the whole time a streamed (its start's timestamp)...
        print(f"\nstream ended after {took:.1f} s ({result['frames']} frames); the next user started "
              f"{got - result['ended']:.2f} s later")
        assert got >= result["ended"] - 0.2 and got - result["ended"] < 5  # ...and was served once a ended
        b.wait("process_streaming", 10)
        b.send(eb, frame)
        b.http.post(f"/gradio_api/stream/{eb}/close").raise_for_status()  # stop the camera early
        b.wait("process_completed", 10)
    finally:
        for t in (a, b, crowd):
            t.close()
    deadline = time.monotonic() + 10
    while httpx.get(f"{server.url}/gradio_api/queue/status").json()["queue_size"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert httpx.get(f"{server.url}/gradio_api/queue/status").json()["queue_size"] == 0


def test_limits_are_set_where_the_app_is_built(built_app):
    demo = built_app
    fns = {f.api_name: f for f in demo.fns.values()}
    stream = fns["predict_frame"]
    assert (stream.time_limit, stream.concurrency_limit) == (30, 4)  # Settings' defaults
    assert fns["train"].concurrency_id == "train" and fns["train"].concurrency_limit == 2
    assert fns["stop_training"].queue is False  # stop is sent outside the queue: never behind anything
    assert demo.delete_cache == (3600, 3600)


def test_temporary_files_are_deleted_on_a_schedule(server, reference):
    # files are deleted once older than CACHE_S, looked for every CACHE_S seconds
    time.sleep(max(0.0, reference["at"] + 2 * CACHE_S + 1 - time.time()))
    left = [p for p in reference["files"] if Path(p).exists()]
    assert not left, left
    assert client(server).predict(handle_file(str(ROOT / "examples" / "17.png")), api_name="/predict")[0].isdigit()
    size = sum(f.stat().st_size for f in server.cache.rglob("*") if f.is_file()) / MB
    assert size < 50, f"{size:.0f} MB of temporary files"
