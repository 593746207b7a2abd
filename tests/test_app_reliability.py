"""The running app under bad input, load and faults: app.py in a subprocess on a loopback port (see
appserver.py), with short limits so that each test ends by itself: webcam sessions of STREAM_S seconds,
one at a time, and temporary files deleted after CACHE_S seconds.

Bad input goes through gradio_client, as an API user sends it; the load test and the webcam stream
speak Gradio's HTTP protocol directly (gradio_client spends ~100 ms of CPU per call, and cannot drive
a .stream() event at all)."""
from __future__ import annotations

import base64
import http.client
import json
import queue
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from appserver import AppServer, make_checkpoints
from drawings import typed
from procmem import memory_mb
from test_reliability import write_bad_files

httpx = pytest.importorskip("httpx")
pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

from nextnum import checkpoint  # noqa: E402
from conftest import ROOT

STREAM_S = 3  # NEXTNUM_STREAM_SECONDS: a webcam session's time limit
CACHE_S = 6  # NEXTNUM_CACHE_SECONDS: uploads and returned images older than this are deleted
QUEUE_MAX = 20  # app.py: demo.queue(max_size=20)
MB = 1024 * 1024


# ---------------------------------------------------------------- the app and its files

def damage(root: Path, outside: Path) -> None:
    """Checkpoints that look like checkpoints but are not usable, and leftovers that must stay hidden."""
    good = root / "smoke-a"
    for name in ("mismatch", "truncated", "badconfig"):
        shutil.copytree(good, root / name)
    cfg = json.loads((good / "config.json").read_text())
    cfg["model"]["dim"] = 32  # a valid config, but not the one these weights were trained with
    (root / "mismatch" / "config.json").write_text(json.dumps(cfg))
    w = root / "truncated" / "model.safetensors"
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    (root / "badconfig" / "config.json").write_text("{not json")
    shutil.copytree(root / "smoke-b", outside / "elsewhere")
    (root / "escape").symlink_to(outside / "elsewhere", target_is_directory=True)  # leads out of checkpoints/
    shutil.copytree(good, root / ".training-old-run-1234abcd")  # an app run that died mid-training
    shutil.copytree(good, root / ".smoke-a.tmp-1234abcd")  # a save that died before its renames


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_checkpoints):
    # its own server: damaged checkpoint folders, one webcam stream at a time, short stream and cache limits
    tmp = tmp_path_factory.mktemp("reliability")
    root = tmp / "checkpoints"
    start_with = make_checkpoints(root, tiny_checkpoints)
    damage(root, tmp)
    env = {"GRADIO_TEMP_DIR": str(tmp / "cache"), "NEXTNUM_STREAM_SECONDS": str(STREAM_S), "NEXTNUM_STREAMS": "1",
           "NEXTNUM_CACHE_SECONDS": str(CACHE_S), "NEXTNUM_LOG": "INFO"}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        app = AppServer(root, start_with, tmp / "app.log")
    app.root, app.start_with, app.cache, app.tmp = root, start_with, tmp / "cache", tmp
    yield app
    app.close()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("inputs")
    f = write_bad_files(d)

    def png(name: str, img: np.ndarray, *flags: int) -> None:
        f[name] = d / name
        cv2.imwrite(str(f[name]), img, list(flags))
    ref = typed()
    png("white.png", np.full((300, 900), 255, np.uint8))
    png("black.png", np.zeros((300, 900), np.uint8))
    png("pixel.png", np.zeros((1, 1), np.uint8))
    png("transparent.png", np.zeros((300, 900, 4), np.uint8))
    dot = np.full((300, 900), 255, np.uint8)
    cv2.circle(dot, (450, 150), 7, 0, -1)
    png("dot.png", dot)
    beside = ref.copy()
    cv2.circle(beside, (850, 30), 7, 0, -1)
    png("digits-and-dot.png", beside)
    png("seven-digits.png", typed("1234567", org=(40, 200), scale=3.5))
    wide = np.full((30, 10_000), 255, np.uint8)
    cv2.putText(wide, "72", (5_000, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 0, 2)
    png("wide.png", wide)
    png("tall.png", np.ascontiguousarray(wide.T))
    big = np.full((4_000, 4_000), 255, np.uint8)  # inputs.MAX_PIXELS: the largest image read
    big[1_500:2_700, 200:3_800] = cv2.resize(ref, (3_600, 1_200), interpolation=cv2.INTER_NEAREST)
    png("4000x4000.png", big, cv2.IMWRITE_PNG_COMPRESSION, 3)
    frame = np.full((480, 640, 3), 225, np.uint8)
    frame[170:310, 100:540] = cv2.resize(cv2.cvtColor(ref, cv2.COLOR_GRAY2BGR), (440, 140))
    png("frame.png", frame)
    png("black-frame.png", np.zeros((480, 640, 3), np.uint8))
    (d / "notes.txt").write_text("not a picture")
    f["notes.txt"] = d / "notes.txt"
    return f


def client(server) -> Client:
    return Client(server.url, verbose=False, download_files=False)  # a new client is a new session


def upload(c: Client, path: Path) -> tuple[str, dict]:
    out = c.predict(handle_file(str(path)), api_name="/predict")
    return out[0], out[-1]


def draw(c: Client, path: Path | None) -> tuple[str, dict]:
    drawing = "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode() if path else ""  # as the pad sends
    out = c.predict(drawing, api_name="/read_sketch")
    return out[0], out[-1]


def film(c: Client, path: Path | None) -> tuple[str, str]:
    out = c.predict(handle_file(str(path)) if path else None, True, api_name="/predict_frame_once")
    return out[1], out[2]  # digits, reading html


def chosen(out: list) -> str:
    """The checkpoint menu's value in /select_checkpoint's answer (a gr.update)."""
    return out[0]["value"] if isinstance(out[0], dict) else out[0]


def app_log(server) -> str:
    server._log.flush()
    return server.log_file.read_text()


@pytest.fixture(scope="module")
def reference(server, files):
    """The reading of the plain digits; and the server files a first request made, for the cache test
    at the end (a picture no other test sends, so nothing makes the same files again)."""
    c = client(server)
    t = time.time()
    probe = files["digits.png"].parent / "probe.png"
    cv2.imwrite(str(probe), typed("31", org=(300, 210)))
    out = c.predict(handle_file(str(probe)), api_name="/predict")
    pictures = [o for o in [out[3], out[4]] + [g["image"] for g in out[2] + out[5]] if o]
    assert pictures and all(p["url"].startswith("data:image/jpeg;base64,") and not p["path"] for p in pictures)
    made = [str(p) for p in server.cache.rglob("probe.png")]  # the upload: the pictures it returned are inline
    assert made, "the upload left no file in the app's cache"
    text, info = upload(c, files["digits.png"])
    return {"text": text, "info": info, "files": made, "at": t}


# ---------------------------------------------------------------- bad input

BLANK = "no digits found: the image looks blank"
ERROR, READS, SAME = "error", "reads", "same"
CASES = {  # (endpoint, input file or None) -> what the app answers: a message, an error, or a reading
    ("upload", "white.png"): BLANK,
    ("upload", "black.png"): BLANK,
    ("upload", "pixel.png"): BLANK,
    ("upload", "transparent.png"): BLANK,
    ("upload", "dot.png"): "no digits found: only a dot",
    ("upload", "digits-and-dot.png"): SAME,
    ("upload", "16bit.png"): SAME,
    ("upload", "16bit-rgba.png"): SAME,
    ("upload", "float.tiff"): SAME,
    ("upload", "wide.png"): READS,
    ("upload", "tall.png"): READS,
    ("upload", "seven-digits.png"): READS,
    ("upload", "nan.tiff"): (ERROR, "NaN or infinite"),
    ("upload", "truncated.png"): (ERROR, "not an image NextNum can read"),
    ("upload", "corrupt-idat.png"): (ERROR, "not an image NextNum can read"),
    ("upload", "header-only.png"): (ERROR, "not an image NextNum can read"),
    ("upload", "text.png"): (ERROR, "not an image NextNum can read"),
    ("upload", "program.png"): (ERROR, "not an image NextNum can read"),
    ("upload", "empty.png"): (ERROR, "not an image NextNum can read"),
    ("upload", "huge-header.png"): (ERROR, "largest accepted side"),
    ("upload", "bomb.png"): (ERROR, "largest accepted side"),
    ("upload", "notes.txt"): (ERROR, "Invalid file type"),
    ("sketch", "white.png"): BLANK,
    ("sketch", "transparent.png"): BLANK,
    ("sketch", "dot.png"): "no digits found: only a dot",
    ("sketch", "digits-and-dot.png"): SAME,
    # a drawing is a data URL; a webcam frame is decoded by NextNum's decoder inside gr.Image (gradio_fixes)
    ("sketch", "text.png"): (ERROR, "the image sent inline is not an image NextNum can read"),
    ("webcam", None): "no camera frame yet",
    ("webcam", "black-frame.png"): BLANK,
    ("webcam", "truncated.png"): (ERROR, "truncated.png is not an image NextNum can read"),
}


@pytest.mark.parametrize("endpoint,name", list(CASES), ids=[f"{e}:{n}" for e, n in CASES])
def test_bad_input_gets_a_clear_answer(server, files, reference, endpoint, name):
    expect, c = CASES[endpoint, name], client(server)
    path = files[name] if name else None
    send = {"upload": upload, "sketch": draw, "webcam": film}[endpoint]
    if isinstance(expect, tuple):
        with pytest.raises(Exception, match=expect[1]):
            send(c, path)
        return
    text, info = send(c, path)
    said = info if endpoint == "webcam" else info["message"]
    if expect == SAME:
        assert text == reference["text"] and info["digits"] == reference["info"]["digits"]
    elif expect == READS:  # something, or nothing with a reason; never an error
        assert (text.isdigit() and 1 <= len(text) <= 5) or said.startswith("no digits found"), (text, said)
        if len(text) == 5:
            assert "5 digits is the most NextNum reads" in said
    else:
        assert text == "" and expect in said, said


def test_the_largest_upload_read_is_read_without_gigabytes(server, files):
    c = client(server)
    before = memory_mb(server.proc.pid)["VmHWM"]
    text, info = upload(c, files["4000x4000.png"])
    assert text.isdigit()
    peak = memory_mb(server.proc.pid)["VmHWM"] - before  # read shrunk to 2,000 px: its maps at full size took GBs
    assert peak < 400, f"peak memory grew by {peak:.0f} MB"


def test_valid_requests_still_work_after_bad_input(server, files, reference):
    c = client(server)
    assert upload(c, files["digits.png"])[0] == reference["text"]
    assert draw(c, files["digits.png"])[0] == reference["text"]
    assert film(c, files["frame.png"])[0].isdigit()


def test_an_upload_over_the_size_limit_is_refused_with_413(server, tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, 5 * MB + 1024, dtype=np.uint8).tobytes()
    with httpx.Client(base_url=server.url, timeout=30) as h:
        r = h.post("/gradio_api/upload", files=[("files", ("big.png", noise, "image/png"))])
        assert r.status_code == 413 and "maximum allowed size" in r.text
        ok = h.post("/gradio_api/upload", files=[("files", ("ok.png", noise[:4 * MB], "image/png"))])
        assert ok.status_code == 200
        assert h.get("/config").json()["max_file_size"] == 5 * MB
    (tmp_path / "big.png").write_bytes(noise)
    with pytest.raises(Exception, match="413|too large|exceed"):
        upload(client(server), tmp_path / "big.png")
    assert server.alive()


# ---------------------------------------------------------------- load

def data_url(img: np.ndarray) -> dict:
    return {"url": "data:image/png;base64," + base64.b64encode(cv2.imencode(".png", img)[1].tobytes()).decode(),
            "meta": {"_type": "gradio.FileData"}}


def call(h, api: str, data: list, session: str | None = None) -> list:
    """One request through Gradio's REST API (POST, then its event stream) -> the outputs."""
    r = h.post(f"/gradio_api/call/{api}", json={"data": data, "session_hash": session})
    r.raise_for_status()
    with h.stream("GET", f"/gradio_api/call/{api}/{r.json()['event_id']}") as s:
        lines = list(s.iter_lines())
    events = [ln[6:].strip() for ln in lines if ln.startswith("event:")]
    payload = [ln[5:] for ln in lines if ln.startswith("data:")]
    if not events or events[-1] != "complete":
        raise RuntimeError(f"{api}: {events[-1:] or 'no event'} {payload[-1:]}")
    return json.loads(payload[-1])


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


# ---------------------------------------------------------------- checkpoints: killed saves, bad folders

KILL = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    import torch
    torch.set_num_threads(1)
    from nextnum import checkpoint
    from nextnum.config import Config
    from nextnum.data import load_fixture
    from nextnum.train import train

    out, point, marker = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])

    def hang():  # tell the test where we are, then wait for its SIGKILL
        marker.write_text(point)
        time.sleep(600)

    if point == "writing the weights":
        real = checkpoint.save_file
        def save_file(tensors, filename, *a, **k):
            real(tensors, filename, *a, **k)
            os.truncate(filename, os.path.getsize(filename) // 2)
            hang()
        checkpoint.save_file = save_file
    else:
        real_rename, calls = os.rename, []
        def rename(src, dst):
            calls.append(src)
            if len(calls) == {"before the swap": 1, "between the renames": 2}[point]:
                hang()
            real_rename(src, dst)
        checkpoint.os.rename = rename
    cfg = Config.load("configs/smoke.json")
    cfg.train.seed = 7
    train(cfg, out, bank=load_fixture(), resume=False)  # the first validation saves over the old checkpoint
""")


def weights(path: Path) -> dict[str, torch.Tensor]:
    return checkpoint.load(path)[0].state_dict()


def test_training_killed_mid_save_leaves_the_previous_checkpoint(server, tmp_path):
    points = ["writing the weights", "before the swap", "between the renames"]
    runs = []
    for i, point in enumerate(points):
        out = server.root / f"killed-{i}"
        shutil.copytree(server.root / "smoke-b", out)
        marker = tmp_path / f"{i}.at"
        log = open(tmp_path / f"{i}.log", "w")
        runs.append((point, out, marker, subprocess.Popen([sys.executable, "-c", KILL, str(out), point, str(marker)],
                                                         cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)))
    deadline = time.monotonic() + 90
    try:
        for point, out, marker, proc in runs:
            while not marker.exists():
                assert proc.poll() is None, (tmp_path / f"{runs.index((point, out, marker, proc))}.log").read_text()
                assert time.monotonic() < deadline, f"{point}: never reached"
                time.sleep(0.1)
    finally:
        for *_, proc in runs:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    killed_at = time.time()
    hidden = sorted(p.name for p in server.root.iterdir() if p.name.startswith(".killed-"))
    assert any(".tmp-" in n for n in hidden) and any(".old-" in n for n in hidden), hidden  # partial folders
    assert not (server.root / "killed-2").exists()  # died between the renames: only the hidden .old- is left

    time.sleep(max(0.0, killed_at + 2.5 - time.time()))  # the app puts back folders renamed over 2 s ago
    c = client(server)
    listed = [ch[0] for ch in c.predict(api_name="/list_checkpoints")["choices"]]
    assert {"killed-0", "killed-1", "killed-2"} <= set(listed), listed
    assert not [n for n in listed if n.startswith(".") or ".tmp-" in n or ".old-" in n or n == "escape"], listed
    before = weights(server.root / "smoke-b")
    for point, out, *_ in runs:  # the previous weights, exactly, whatever moment the kill came at
        now = weights(out)
        assert all(torch.equal(now[k], before[k]) for k in before), point
        assert chosen(c.predict(out.name, api_name="/select_checkpoint")) == out.name, point
        assert upload(c, ROOT / "examples" / "17.png")[1]["checkpoint"] == out.name


@pytest.mark.parametrize("bad,why", [
    ("mismatch", "do not match"), ("truncated", "corrupt or truncated"), ("badconfig", "not valid JSON"),
    ("escape", "no checkpoint named"), ("gone", "no checkpoint named"),
    (".training-old-run-1234abcd", "not a checkpoint name"), (".smoke-a.tmp-1234abcd", "not a checkpoint name"),
    ("smoke-a/../smoke-b", "not a checkpoint name"),
])
def test_a_bad_checkpoint_is_refused_and_the_previous_model_stays_live(server, files, bad, why):
    c = client(server)
    assert chosen(c.predict("smoke-b", api_name="/select_checkpoint")) == "smoke-b"
    out = c.predict(bad, api_name="/select_checkpoint")
    assert chosen(out) == "smoke-b", out[0]
    assert "Could not load" in out[1] and "kept smoke-b" in out[1] and why in out[1], out[1]
    assert upload(c, files["digits.png"])[1]["checkpoint"] == "smoke-b"
    assert f"could not load the checkpoint {bad!r}" in app_log(server)


# ---------------------------------------------------------------- training: one at a time, stop keeps the best

def test_training_is_one_at_a_time_and_stop_keeps_the_best(server):
    a, b = client(server), client(server)
    job = a.submit("smoke", 20_000, 0.003, 16, 3, 16, "run-a", api_name="/train")
    deadline = time.monotonic() + 60
    while not any(isinstance(o[0], str) and o[0].startswith("step ") and "val sequence acc -" not in o[0]
                  for o in job.outputs()):  # trained past its first validation: a best checkpoint exists
        assert time.monotonic() < deadline and not job.done(), job.outputs()[-1:]
        time.sleep(0.2)
    assert "training is busy" in b.predict("smoke", 40, 0.003, 16, 3, 16, "run-b", api_name="/train")[0]
    assert "INFO nextnum.app: training not started: training is busy" in app_log(server)
    assert "Nothing of yours" in b.predict(api_name="/stop_training")  # b cannot stop a's run
    time.sleep(0.5)
    assert not job.done()
    t0 = time.monotonic()
    assert "Stopping" in a.predict(api_name="/stop_training")
    while not any(isinstance(o[0], str) and o[0].startswith(("Evaluating", "Training")) for o in job.outputs()):
        assert time.monotonic() - t0 < 60, "training did not stop"  # 0.2 s on quiet cores; CI may be busy
        time.sleep(0.05)
    stopped = time.monotonic() - t0
    final = job.result(timeout=60)
    print(f"\ntraining stopped {stopped:.1f} s after stop, saved and scored {time.monotonic() - t0:.1f} s after")
    assert stopped < 30, f"training went on for {stopped:.1f} s after stop"  # 0.2 s quiet; a busy CI
    assert "Training **stopped**" in final[0] and "checkpoints/run-a" in final[0], final[0]
    ck = server.root / "run-a"
    m = json.loads((ck / "metrics.json").read_text())
    vals = [h["val_seq_acc"] for h in m["history"]]
    assert m["status"] == "stopped" and m["best_val_seq_acc"] == max(vals) and len(vals) >= 1
    assert "stopped at step" in (ck / "train.log").read_text()
    assert not any(p.name.startswith(".training-run-a") for p in server.root.iterdir())
    assert chosen(b.predict("run-a", api_name="/select_checkpoint")) == "run-a"  # the kept weights load
    # the slot is free again: the second user trains now
    done = b.predict("smoke", 12, 0.003, 16, 3, 16, "run-b", api_name="/train")
    assert "Training **finished**" in done[0], done[0]


# ---------------------------------------------------------------- security

FORBIDDEN = ["/etc/passwd", "/proc/self/environ", "{ROOT}/app.py", "{ROOT}/README.md", "{ROOT}/nextnum/checkpoint.py",
             "{ROOT}/examples/17.png",
             "{ROOT}/checkpoints", "{CK}/smoke-a/model.safetensors", "{CK}/smoke-a/config.json", "{CK}/../app.log",
             "../../../../etc/passwd", "{CACHE}/../../../../../etc/passwd", "{CACHE}/..%2F..%2Fapp.log",
             "..%2F..%2F..%2Fetc%2Fpasswd", "%2e%2e/%2e%2e/%2e%2e/etc/passwd", "//etc/passwd", "file:///etc/passwd",
             "http://127.0.0.1:{PORT}/config", "http://169.254.169.254/latest/meta-data/"]


@pytest.mark.parametrize("path", FORBIDDEN)
def test_the_file_route_serves_nothing_outside_the_apps_files(server, path):
    path = path.format(ROOT=ROOT, CK=server.root, CACHE=server.cache, PORT=server.port)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)  # sends ../ as it is
    conn.request("GET", f"/gradio_api/file={path}")
    r = conn.getresponse()
    assert r.status == 403, (path, r.status, r.read()[:200])


def test_the_file_route_serves_what_a_visitor_uploaded(server, files):
    up = httpx.post(f"{server.url}/gradio_api/upload", files=[("files", ("d.png", files["digits.png"].read_bytes()))])
    assert httpx.get(f"{server.url}/gradio_api/file={up.json()[0]}").status_code == 200
    assert httpx.get(f"{server.url}/file=/etc/passwd").status_code == 404  # no route outside /gradio_api


@pytest.mark.parametrize("path", ["/etc/passwd", "{CK}/smoke-a/model.safetensors", "{ROOT}/examples/17.png"])
def test_an_input_cannot_name_a_file_on_the_server(server, path):
    path = path.format(ROOT=ROOT, CK=server.root)
    before = len(app_log(server))
    with httpx.Client(base_url=server.url, timeout=30) as h, pytest.raises(RuntimeError, match="error"):
        call(h, "predict", [{"path": path, "orig_name": "x.png", "meta": {"_type": "gradio.FileData"}}, "rollout",
                            "mean"])
    time.sleep(0.5)  # a handler that ran would have logged its reading or its refusal by now
    new = app_log(server)[before:]
    assert "nextnum.app" not in new, f"the app's function saw the file: {new}"  # refused before it ran


def test_limits_are_set_where_the_app_is_built(built_app):
    demo = built_app
    fns = {f.api_name: f for f in demo.fns.values()}
    stream = fns["predict_frame"]
    assert (stream.time_limit, stream.concurrency_limit) == (30, 4)  # Settings' defaults
    assert fns["train"].concurrency_id == "train" and fns["train"].concurrency_limit == 2
    assert fns["stop_training"].queue is False  # stop is sent outside the queue: never behind anything
    assert demo.delete_cache == (3600, 3600)


# ---------------------------------------------------------------- operations

def test_requests_and_handled_errors_are_logged(server, files):
    c, before = client(server), len(app_log(server))
    upload(c, files["digits.png"])
    for bad in ("text.png", "nan.tiff"):
        with pytest.raises(Exception, match="not an image NextNum can read|NaN or infinite"):
            upload(c, files[bad])
    c.predict("mismatch", api_name="/select_checkpoint")
    log = app_log(server)[before:]  # what these requests logged, whatever ran before
    assert "INFO nextnum.app: read '" in log and " ms" in log
    assert "INFO nextnum.app: refused an image: text.png is not an image" in log
    assert "INFO nextnum.app: refused an image: the image contains NaN or infinite values" in log
    assert "WARNING nextnum.app: could not load the checkpoint 'mismatch'" in log


def test_temporary_files_are_deleted_on_a_schedule(server, reference):
    # files are deleted once older than CACHE_S, looked for every CACHE_S seconds
    time.sleep(max(0.0, reference["at"] + 2 * CACHE_S + 1 - time.time()))
    left = [p for p in reference["files"] if Path(p).exists()]
    assert not left, left
    assert client(server).predict(handle_file(str(ROOT / "examples" / "17.png")), api_name="/predict")[0].isdigit()
    size = sum(f.stat().st_size for f in server.cache.rglob("*") if f.is_file()) / MB
    assert size < 50, f"{size:.0f} MB of temporary files"
