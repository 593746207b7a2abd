"""The running app under bad input: a clear answer, no harm done, no file served or read outside its own, all logged."""
from __future__ import annotations

import http.client
import time

import numpy as np
import pytest

from procmem import memory_mb

httpx = pytest.importorskip("httpx")
pytest.importorskip("gradio_client")
from reliability_app import MB, app_log, call, client, draw, film, upload  # noqa: E402
from reliability_app import files, reference, server  # noqa: E402, F401 (fixtures)

from conftest import ROOT  # noqa: E402


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
