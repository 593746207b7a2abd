"""The running app against a hostile visitor: no event reads a file the client names, bombs are refused from
their header, request bodies are bounded, Stop is answered with the queue full, and in public the saved
corrections stay private. app.py runs in a subprocess on loopback (appserver.py) with the shipped model."""
from __future__ import annotations

import base64
import io
import json
import shutil
import uuid
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from appserver import AppServer, shipped_available
from procmem import memory_mb

httpx = pytest.importorskip("httpx")
pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

from nextnum import inputs  # noqa: E402
from conftest import ROOT, SHIPPED

pytestmark = pytest.mark.skipif(not shipped_available(), reason="needs the shipped checkpoint")
QUEUE = 4  # NEXTNUM_QUEUE for the local server: events that may wait
VOLATILE = ("duration", "average_duration", "eta", "rank", "queue_size", "event_id", "time")


def start(tmp: Path, **env: str) -> AppServer:
    (tmp / "checkpoints").mkdir()
    shutil.copytree(SHIPPED, tmp / "checkpoints" / "nextnum")
    settings = {"GRADIO_TEMP_DIR": str(tmp / "cache"), "NEXTNUM_CORRECTIONS": str(tmp / "corrections"),
                "NEXTNUM_STREAM_SECONDS": "6", "NEXTNUM_STREAMS": "1", "NEXTNUM_QUEUE": str(QUEUE), **env}
    app = AppServer(tmp / "checkpoints", "nextnum", tmp / "app.log", env=settings)
    app.tmp = tmp
    return app


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # its own server: a short queue (NEXTNUM_QUEUE) that the tests fill, and short stream limits
    app = start(tmp_path_factory.mktemp("local"))
    yield app
    app.close()


@pytest.fixture(scope="module")
def public(tmp_path_factory):
    # its own server: --public, what anyone may reach
    app = start(tmp_path_factory.mktemp("public"), NEXTNUM_PUBLIC="1")
    yield app
    app.close()


def png_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", **kw)
    return buf.getvalue()


def bombs(d: Path) -> dict[str, Path]:
    """Small files that would take gigabytes to decode: a float TIFF, a 12000² PNG, a PNG with a large zTXt."""
    d.mkdir(exist_ok=True)
    out = {"float.tiff": d / "float.tiff", "big.png": d / "big.png", "ztxt.png": d / "ztxt.png"}
    Image.new("F", (6000, 6000)).save(out["float.tiff"], compression="tiff_adobe_deflate")
    out["big.png"].write_bytes(png_bytes(Image.new("L", (12000, 12000), 255), optimize=False, compress_level=9))
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "x" * (3 * 2**20), zip=True)  # inflates past PIL's text-chunk limit
    out["ztxt.png"].write_bytes(png_bytes(Image.new("L", (3000, 3000), 255), pnginfo=info))
    return out


# ---------------------------------------------------------------- no event reads a file the client names

class Queue:
    """Gradio's queue protocol, spoken directly: any event by fn_index, hidden ones included."""

    def __init__(self, app: AppServer) -> None:
        self.http = httpx.Client(base_url=app.url, timeout=60)
        self.config = self.http.get("/config").json()
        self.types = {c["id"]: c["type"] for c in self.config["components"]}

    def call(self, dep: dict, data: list) -> object:
        session = uuid.uuid4().hex[:12]
        r = self.http.post("/gradio_api/queue/join", json={
            "data": data, "fn_index": dep["id"], "session_hash": session, "event_data": None,
            "trigger_id": dep["targets"][0][0] if dep["targets"] else None})
        if r.status_code != 200:
            return {"http": r.status_code}
        with self.http.stream("GET", f"/gradio_api/queue/data?session_hash={session}") as s:
            for line in s.iter_lines():
                if line.startswith("data:"):
                    m = json.loads(line[5:])
                    if m["msg"] == "process_completed":
                        return strip(m.get("output"))
        return None


def strip(v: object) -> object:
    """A response without what changes from call to call (timings, ids, queue position)."""
    if isinstance(v, dict):
        return {k: strip(x) for k, x in v.items() if k not in VOLATILE}
    if isinstance(v, list):
        return [strip(x) for x in v]
    return v


def test_no_event_reads_a_file_the_client_names(server, tmp_path):
    """Every event with a Python function, hidden ones too, given a server path in each of its inputs (as a
    string and as a file reference), answers exactly as it does for a path that does not exist: nothing
    is read, and nothing tells which files exist."""
    secret, missing = tmp_path / "secret" / "4072.png", tmp_path / "absent" / "4072.png"
    secret.parent.mkdir()
    shutil.copy(ROOT / "examples" / "4072.png", secret)
    q = Queue(server)
    tried = 0
    for dep in (d for d in q.config["dependencies"] if d.get("backend_fn")):
        for i, cid in enumerate(dep["inputs"]):
            if q.types[cid] == "state":  # held by the server: what a client sends there is not used
                continue
            for shape in (str, dict):
                answers = []
                for path in (secret, missing):
                    data = [None] * len(dep["inputs"])
                    data[i] = str(path) if shape is str else {"path": str(path), "orig_name": "4072.png",
                                                              "meta": {"_type": "gradio.FileData"}}
                    answers.append(json.dumps(q.call(dep, data)).replace(str(path), "<path>"))
                    answers[-1] = answers[-1].replace(str(path)[:20], "<path>")  # a message quoting its start
                tried += 1
                assert answers[0] == answers[1], (dep.get("api_name"), q.types[cid], shape, answers)
                assert "4072" not in answers[0].replace("(like 4072)", ""), (dep.get("api_name"), answers[0])
    assert tried > 30  # every input of every event: the Draw pad, the webcam, uploads, menus, the Train tab


@pytest.mark.parametrize("value", ["/etc/passwd", "/no/such/file.png", "examples/4072.png", "app.py",
                                   "file:///etc/passwd", "data:text/plain;base64,aGk="])
def test_a_drawing_is_read_only_from_a_data_url(server, value):
    with pytest.raises(Exception) as e:
        Client(server.url, verbose=False).predict(value, api_name="/read_sketch")
    said = str(e.value)
    assert value not in said and "such" not in said
    assert inputs.NOT_A_DRAWING in said or "data URL" in said


def test_the_api_reads_a_drawing_through_the_pad_event(server):
    """/read_sketch is the Draw tab's own event: a drawing as the page sends it reads as the file does."""
    url = "data:image/png;base64," + base64.b64encode((ROOT / "examples" / "4072.png").read_bytes()).decode()
    c = Client(server.url, verbose=False, download_files=False)
    assert c.predict(url, api_name="/read_sketch")[0] == c.predict(
        handle_file(str(ROOT / "examples" / "4072.png")), api_name="/predict")[0]


# ---------------------------------------------------------------- bombs, bodies, the queue

def test_bombs_are_refused_on_every_path_without_being_decoded(server, tmp_path):
    files = bombs(tmp_path / "bombs")
    c = Client(server.url, verbose=False, download_files=False)
    rss0 = memory_mb(server.proc.pid)["VmRSS"]
    for name, path in files.items():
        for api, args in (("/predict", [handle_file(str(path))]), ("/predict_frame_once", [handle_file(str(path)), True]),
                          ("/correct", [handle_file(str(path)), "12"])):
            with pytest.raises(Exception) as e:
                c.predict(*args, api_name=api)
            assert "NextNum reads images of at most" in str(e.value) or "not an image NextNum can read" in str(e.value), \
                (name, api, str(e.value))
            assert str(tmp_path) not in str(e.value)
        url = "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()
        if len(url) < inputs.MAX_DATA_URL:
            with pytest.raises(Exception, match="NextNum reads images of at most|not an image NextNum can read"):
                c.predict(url, api_name="/read_sketch")
    grew = memory_mb(server.proc.pid)["VmRSS"] - rss0
    assert grew < 300, f"the app grew by {grew:.0f} MB refusing small files"  # decoding one would take GBs
    assert not (server.tmp / "corrections").exists() or not any((server.tmp / "corrections").glob("*.png"))


def test_one_upload_request_is_bounded_in_all_its_bytes(server):
    part = b"\x89PNG" + bytes(3 * 2**20)
    h = httpx.Client(base_url=server.url, timeout=60)
    one = h.post("/gradio_api/upload", files=[("files", ("a.png", part, "image/png"))])
    assert one.status_code == 200
    many = h.post("/gradio_api/upload", files=[("files", (f"{i}.png", part, "image/png")) for i in range(4)])
    assert many.status_code == 413  # each file under the 5 MB limit, the request over its 8 MB


def test_messages_name_no_server_path(server):
    c = Client(server.url, verbose=False, download_files=False)
    count, gallery = c.predict(api_name="/corrections")
    assert str(server.tmp) not in count and "corrections`" not in count
    with pytest.raises(Exception) as e:
        c.predict(handle_file(str(ROOT / "README.md")), api_name="/predict")
    assert str(server.tmp) not in str(e.value) and "gradio" not in str(e.value).lower()


# ---------------------------------------------------------------- public

def test_in_public_the_corrections_stay_private_and_nothing_trains(public):
    c = Client(public.url, verbose=False, download_files=False)
    apis = set(c.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert "/corrections_zip" not in apis and "/corrections_accuracy" not in apis
    saved = c.predict(handle_file(str(ROOT / "examples" / "4072.png")), "4072", api_name="/correct")
    assert "Saved" in saved
    count, gallery = c.predict(api_name="/corrections")
    assert gallery == [] and "1 corrections" in count.replace(",", "")
    status = c.predict("smoke", 5, 0.001, 8, 2, 40, "x", "fresh weights", False, api_name="/train")[0]
    assert "Training is off" in status
    assert not (public.tmp / "checkpoints" / "x").exists()


def test_bad_files_in_the_corrections_folder_are_skipped_not_fatal(server):
    folder = server.tmp / "corrections"
    c = Client(server.url, verbose=False, download_files=False)
    c.predict(handle_file(str(ROOT / "examples" / "4072.png")), "4072", api_name="/correct")
    labels = json.loads((folder / "labels.json").read_text())
    (folder / "bomb-12.png").write_bytes(png_bytes(Image.new("L", (12000, 12000), 255)))
    (folder / "labels.json").write_text(json.dumps({**labels, "bomb-12.png": "12"}))
    said = c.predict(api_name="/corrections_accuracy")
    assert "of the 1 corrections" in said, said


def test_stop_is_answered_while_the_queue_is_full(server):
    """Webcam streams hold the only stream worker and fill the queue; Stop, which the page sends outside the
    queue, still answers. (Last in this file: the streams hold the queue for a few seconds.)"""
    q = Queue(server)
    dep = next(d for d in q.config["dependencies"] if d.get("api_name") == "predict_frame")
    frame = {"url": "data:image/png;base64," + base64.b64encode(png_bytes(Image.new("RGB", (64, 48)))).decode(),
             "meta": {"_type": "gradio.FileData"}}
    codes = [q.http.post("/gradio_api/queue/join", json={
        "data": [frame, None, None, True], "fn_index": dep["id"], "session_hash": uuid.uuid4().hex[:12],
        "event_data": None, "trigger_id": dep["targets"][0][0]}).status_code for _ in range(QUEUE + 3)]
    assert 503 in codes, codes  # the queue is full
    stop = next(d for d in q.config["dependencies"] if d.get("api_name") == "stop_training")
    said = q.http.post("/gradio_api/run/stop_training", json={"data": [None], "fn_index": stop["id"],
                                                               "session_hash": uuid.uuid4().hex[:12]})
    assert said.status_code == 200 and said.json()["data"] == ["Nothing of yours is training."], said.text
