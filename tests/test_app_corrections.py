"""Corrections through the app (gradio_client): /correct saves, refuses and never loses a write; the folder
is never served; a fine-tune on corrections reads their held-out part better than the model it started from."""
from __future__ import annotations

import json
import os
import shutil
import signal
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

from appserver import AppServer, shipped_available
from drawings import mirrored_number

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from conftest import ROOT

pytestmark = pytest.mark.skipif(not shipped_available(), reason="needs the shipped checkpoint")


def start(tmp: Path) -> AppServer:
    shutil.copytree(ROOT / "checkpoints" / "nextnum", tmp / "checkpoints" / "nextnum",
                    ignore=shutil.ignore_patterns("resume.safetensors", "train.log"))
    return AppServer(tmp / "checkpoints", "nextnum", tmp / "app.log")  # corrections: tmp/corrections


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    # its own server: the tests count and read back every correction saved, so the store must be theirs alone
    tmp = tmp_path_factory.mktemp("corr")
    server = start(tmp)
    server.tmp = tmp
    yield server
    server.close()


def images(folder: Path, n: int, seed: int = 0) -> list[tuple[Path, str]]:
    """n mirror-written numbers of 1-3 digits as PNG files: (path, digits)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        text = "".join(str(d) for d in rng.integers(0, 10, i % 3 + 1))
        path = folder / f"{seed}-{i}.png"
        cv2.imwrite(str(path), cv2.cvtColor(mirrored_number(text, rng), cv2.COLOR_RGBA2BGRA))
        out.append((path, text))
    return out


def labels(app) -> dict[str, str]:
    return json.loads((app.tmp / "corrections" / "labels.json").read_text())


def test_correct_saves_the_image_as_read_with_its_digits(app, tmp_path):
    (path, text), = images(tmp_path, 1, seed=100)
    note = Client(app.url, verbose=False).predict(handle_file(str(path)), text, api_name="/correct")
    assert f"Saved as **{text}**" in note
    name = next(k for k, v in labels(app).items() if v == text and k.endswith(".png"))
    assert (app.tmp / "corrections" / name).read_bytes() == path.read_bytes()


@pytest.mark.parametrize("bad", ["", "12a", "123456", "1 2"])
def test_correct_refuses_a_bad_number_and_saves_nothing(app, tmp_path, bad):
    (path, _), = images(tmp_path, 1, seed=101)
    before = labels(app) if (app.tmp / "corrections" / "labels.json").exists() else {}
    with pytest.raises(Exception, match="1 to 5 digits"):
        Client(app.url, verbose=False).predict(handle_file(str(path)), bad, api_name="/correct")
    after = labels(app) if (app.tmp / "corrections" / "labels.json").exists() else {}
    assert after == before


def test_eight_clients_saving_at_once_lose_nothing(app, tmp_path):
    pics = images(tmp_path, 16, seed=102)
    before = len(labels(app)) if (app.tmp / "corrections" / "labels.json").exists() else 0

    def save(item):
        path, text = item
        return Client(app.url, verbose=False).predict(handle_file(str(path)), text, api_name="/correct")

    with ThreadPoolExecutor(8) as ex:
        notes = list(ex.map(save, pics))
    assert all("Saved as" in n for n in notes)
    assert len(labels(app)) == before + len(pics)


def test_the_corrections_folder_is_never_served(app):
    name = next(iter(labels(app)))
    for path in (app.tmp / "corrections" / name, app.tmp / "corrections" / "labels.json"):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"{app.url}/gradio_api/file={path}")
        assert e.value.code in (403, 404)


def test_an_app_killed_while_saving_leaves_a_valid_folder(tmp_path):
    server = start(tmp_path)  # its own: it is killed
    pics = images(tmp_path / "pics", 24, seed=103)

    def save(item):
        try:
            Client(server.url, verbose=False).predict(handle_file(str(item[0])), item[1], api_name="/correct")
        except Exception:  # the app died under it
            pass

    with ThreadPoolExecutor(8) as ex:
        futures = [ex.submit(save, p) for p in pics]
        while not (tmp_path / "corrections" / "labels.json").exists():
            pass
        os.kill(server.proc.pid, signal.SIGKILL)
        for f in futures:
            f.result()
    server.close()
    saved = json.loads((tmp_path / "corrections" / "labels.json").read_text())
    assert saved
    for name in saved:  # every listed image is whole: it decodes
        assert cv2.imread(str(tmp_path / "corrections" / name), cv2.IMREAD_UNCHANGED) is not None


@pytest.mark.slow
def test_fine_tuning_on_corrections_reads_the_held_out_ones_better(tmp_path):
    server = start(tmp_path)  # its own: a corrections folder of exactly these 60 images
    try:
        client = Client(server.url, verbose=False)
        with ThreadPoolExecutor(4) as pool:  # saved 4 at a time, as several visitors would
            list(pool.map(lambda p: client.predict(handle_file(str(p[0])), p[1], api_name="/correct"),
                          images(tmp_path / "pics", 60, seed=104)))
        out = client.predict("corrections", 20, 0.0005, 32, 5, 64, "fixed", "nextnum", True, api_name="/train")
        metrics = json.loads((tmp_path / "checkpoints" / "fixed" / "metrics.json").read_text())
    finally:
        server.close()
    corr = metrics["corrections"]
    assert corr["held_out"] >= 5 and corr["trained_on"] + corr["held_out"] == 60
    assert corr["held_out_after"] > corr["held_out_before"], corr
    assert "held-out corrections" in out[0]
