"""The app server the reliability tests run against, the bad files they send, and the clients that send them.

app.py runs in a subprocess on a loopback port (see appserver.py), with short limits so that each test ends by
itself: webcam streams of STREAM_S seconds, one at a time, and temporary files deleted after CACHE_S seconds.
Its checkpoints folder holds damaged checkpoints beside the tiny ones (see damage). Each test module that
imports the fixtures below starts its own server.

Bad input goes through gradio_client, as an API user sends it; the load test and the webcam stream
speak Gradio's HTTP protocol directly (gradio_client spends ~100 ms of CPU per call, and cannot drive
a .stream() event at all)."""
from __future__ import annotations

import base64
import json
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from appserver import AppServer, make_checkpoints
from drawings import typed
from test_reliability import write_bad_files

pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

STREAM_S = 3  # NEXTNUM_STREAM_SECONDS: a webcam session's time limit
CACHE_S = 6  # NEXTNUM_CACHE_SECONDS: uploads and returned images older than this are deleted
QUEUE_MAX = 20  # app.py: demo.queue(max_size=20)
MB = 1024 * 1024


# ---------------------------------------------------------------- the app and its files

def damage(root: Path, outside: Path) -> None:
    """Checkpoints that look like checkpoints but are not usable, and leftovers the app keeps hidden."""
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
