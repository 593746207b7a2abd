"""The app through gradio_client: app.py (conftest.app_server) runs in a subprocess on a free loopback port,
as a fresh clone would run it (no MNIST, so the Train tab uses the built-in sample), serving small smoke checkpoints
(and a copy of checkpoints/nextnum when it exists)."""
from __future__ import annotations

import base64

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from appserver import shipped_available
from conftest import EXAMPLES, ROOT

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

LABELS = json.loads((EXAMPLES / "labels.json").read_text())
# The shipped model reads all 6 examples (`python -m nextnum.evaluate --images examples`); no margin: the
# examples are the first thing a visitor reads, so a model that misreads one of them does not ship.
SHIPPED_EXAMPLES_READ = 6 - 0


@pytest.fixture
def client(app_server):
    return Client(app_server.url, verbose=False)  # a new client is a new session: its own live model


def read(client, path) -> tuple[str, dict]:
    out = client.predict(handle_file(str(path)), api_name="/predict")
    return out[0], out[-1]


def test_endpoints_are_named(app_server):
    with urllib.request.urlopen(f"{app_server.url}/gradio_api/info") as r:
        names = set(json.load(r)["named_endpoints"])
    assert {"/predict", "/predict_frame_once", "/train", "/stop_training", "/select_checkpoint"} <= names


def test_every_api_output_has_a_name_that_says_what_it_is(app_server):
    """An API user sees each output by its label: none is left as Gradio's "value_<id>"."""
    with urllib.request.urlopen(f"{app_server.url}/gradio_api/info") as r:
        endpoints = json.load(r)["named_endpoints"]
    unnamed = {ep: [o.get("label") for o in v["returns"]] for ep, v in endpoints.items()
               if any(not o.get("label") or str(o["label"]).startswith("value_") for o in v["returns"])}
    assert not unnamed, unnamed


def test_predict_reads_the_examples(client):
    right = []
    for name, truth in LABELS.items():
        text, info = read(client, EXAMPLES / name)
        assert isinstance(text, str) and text == info["text"] and len(text) <= 5 and (text.isdigit() or text == "")
        assert len(info["digits"]) == len(text) and all(0 <= d["prob"] <= 1 for d in info["digits"])
        right.append(text == truth)
    if shipped_available():  # MNIST test digits drawn large
        assert sum(right) >= SHIPPED_EXAMPLES_READ, f"read right: {right}"


def test_predict_returns_the_stage_pictures_only_when_asked(client):
    path = handle_file(str(EXAMPLES / "17.png"))
    plain = client.predict(path, api_name="/predict")
    asked = client.predict(path, "rollout", "mean", True, api_name="/predict")
    assert plain[0] == asked[0] and plain[5] == [] and plain[2]  # the digit maps always, no stages
    assert [s["caption"] for s in asked[5]] == ["original", "grayscale", "normalised", "binary", "ink box", "canvas"]
    sketch = "data:image/png;base64," + base64.b64encode((EXAMPLES / "17.png").read_bytes()).decode()  # as the pad sends
    assert client.predict(sketch, api_name="/read_sketch")[5] == []
    assert len(client.predict(sketch, "rollout", "mean", True, api_name="/read_sketch")[5]) == 6


def test_blank_and_bad_files_give_clear_messages(client, tmp_path):
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((300, 900), 255, np.uint8))
    text, info = read(client, blank)
    assert text == "" and "no digits found" in info["message"]

    fake = tmp_path / "notes.png"
    fake.write_text("this is text, not a picture")
    with pytest.raises(Exception, match="not an image"):
        read(client, fake)
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    with pytest.raises(Exception, match="Invalid file type"):
        read(client, txt)
    text, _ = read(client, EXAMPLES / "17.png")  # and the app still answers
    assert text.isdigit()


def test_webcam_twin_endpoint_reads_a_frame(client, tmp_path):
    frame = np.full((480, 640, 3), 225, np.uint8)  # a 640x480 frame, the number inside the guide box
    frame[170:310, 100:540] = cv2.resize(cv2.imread(str(EXAMPLES / "385.png")), (440, 140))
    cv2.imwrite(str(tmp_path / "frame.png"), frame)
    image, text, html, stats, gallery = client.predict(handle_file(str(tmp_path / "frame.png")), True,
                                                       api_name="/predict_frame_once")
    assert image["url"].startswith("data:image/jpeg;base64,") and not image["path"]  # inside the answer
    assert cv2.imdecode(np.frombuffer(base64.b64decode(image["url"].split(",", 1)[1]), np.uint8), 1).shape == (480, 640, 3)
    assert isinstance(text, str) and "latency" in stats
    if shipped_available():
        assert text == "385"


def test_checkpoint_switch_changes_the_model(client, app_server):
    _, before = read(client, EXAMPLES / "385.png")
    assert before["checkpoint"] == app_server.start_with
    client.predict("smoke-b", api_name="/select_checkpoint")
    _, after = read(client, EXAMPLES / "385.png")
    assert after["checkpoint"] == "smoke-b"
    assert after["digits"] != before["digits"]  # another model: other probabilities

    for bad in ("broken", "../checkpoints", ".half-written", "/etc"):  # refused; smoke-b stays live
        card = client.predict(bad, api_name="/select_checkpoint")[1]
        assert "Could not load" in card
        assert read(client, EXAMPLES / "385.png")[1]["checkpoint"] == "smoke-b"

    choices = [c[0] for c in client.predict(api_name="/list_checkpoints")["choices"]]
    assert "smoke-a" in choices and "smoke-b" in choices and not any(c.startswith(".") for c in choices)


def wait_for_a_step(job, timeout: float = 60) -> None:
    """Until the run has reported its first training step."""
    deadline = time.monotonic() + timeout
    while not any(isinstance(o[0], str) and o[0].startswith("step ") for o in job.outputs()):
        assert time.monotonic() < deadline and not job.done(), job.outputs()[-1:]
        time.sleep(0.2)


@pytest.mark.slow
def test_a_second_run_is_refused_while_one_trains(app_server, client):
    job = client.submit("smoke", 20_000, 0.003, 16, 3, 16, "long-run", api_name="/train")  # ends only when stopped
    try:
        wait_for_a_step(job)
        other = Client(app_server.url, verbose=False)  # a second user while the first trains
        busy = other.predict("smoke", 24, 0.003, 16, 3, 16, "second-run", api_name="/train")[0]
        assert "training is busy" in busy, busy
        assert read(other, EXAMPLES / "17.png")[0].isdigit()  # reading keeps working meanwhile
        assert not job.done() and not (app_server.root / "second-run").exists()
    finally:
        client.predict(api_name="/stop_training")
        job.result(timeout=90)


@pytest.mark.slow
def test_training_streams_progress_and_adds_a_checkpoint(app_server, client):
    job = client.submit("smoke", 60, 0.003, 16, 3, 16, "ui-run", api_name="/train")
    final = job.result(timeout=90)
    lines = [o[0] for o in job.outputs() if isinstance(o[0], str)]
    assert any(line.startswith("step ") and "ETA" in line for line in lines), lines
    assert "finished" in final[0] and "checkpoints/ui-run" in final[0]
    assert {"step", "value", "metric"} <= set(final[1]["columns"])  # loss curve, then accuracy curves
    assert final[4]["data"], "evaluation table by length"
    metrics = json.loads((app_server.root / "ui-run" / "metrics.json").read_text())
    assert metrics["status"] == "finished" and "by_length" in metrics["evaluation"]
    assert not (app_server.root / "ui-run" / "resume.safetensors").exists()
    assert not [p for p in app_server.root.iterdir() if p.name.startswith(".training")]
    client.predict("ui-run", api_name="/select_checkpoint")
    assert read(client, EXAMPLES / "17.png")[1]["checkpoint"] == "ui-run"


@pytest.mark.slow
def test_training_can_start_from_a_checkpoint_of_the_same_shape(app_server, client):
    wide = client.predict("smoke", 12, 0.003, 16, 3, 24, "too-wide", "smoke-a", api_name="/train")[0]
    assert "Cannot start" in wide and "dim 16 in the checkpoint, 24 in the config" in wide
    assert "Cannot start" in client.predict("smoke", 12, 0.003, 16, 3, 16, "x", "../smoke-a", api_name="/train")[0]
    assert not (app_server.root / "too-wide").exists() and not (app_server.root / "x").exists()
    job = client.submit("smoke", 12, 0.003, 16, 3, 16, "tuned", "smoke-a", api_name="/train")
    final = job.result(timeout=90)
    assert any("from the weights of smoke-a" in o[0] for o in job.outputs() if isinstance(o[0], str))
    assert "finished" in final[0] and "checkpoints/tuned" in final[0]
    assert "tuned" in [c[0] for c in final[6]["choices"]]  # it can be the next run's starting point (the token State is not returned)
    metrics = json.loads((app_server.root / "tuned" / "metrics.json").read_text())
    assert Path(metrics["init"]).name == "smoke-a" and metrics["init_metrics"]["status"] == "finished"


@pytest.mark.slow
def test_stopping_training_keeps_the_best_checkpoint(app_server, client):
    job = client.submit("smoke", 20_000, 0.003, 16, 3, 16, "stopped-run", api_name="/train")
    wait_for_a_step(job)
    assert "Stopping" in client.predict(api_name="/stop_training")
    final = job.result(timeout=120)  # a run of 20,000 steps that did not stop would take far longer
    assert "stopped" in final[0] and (app_server.root / "stopped-run" / "model.safetensors").is_file()
    assert "Nothing of yours" in Client(app_server.url, verbose=False).predict(api_name="/stop_training")


def test_safe_defaults(app_server):
    for path in ("/etc/passwd", str(ROOT / "app.py"), str(app_server.root / "smoke-a" / "config.json"), "../../etc/passwd"):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"{app_server.url}/gradio_api/file={path}")
        assert e.value.code in (403, 404), path
    with urllib.request.urlopen(f"{app_server.url}/config") as r:
        config = json.load(r)
    assert config["max_file_size"] == 5 * 1024 * 1024
    assert config["run_history"] is False  # no copy of people's drawings in their browser, rewritten at each event
    assert app_server.alive()
