"""Reading needs no PyTorch: with the shipped graph, a Predictor and the app read, draw every view and save
corrections without importing torch; the Train tab says how to install it when it is missing."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, SHIPPED

from appserver import AppServer, shipped_available
from nextnum import runtime as R

pytestmark = [pytest.mark.skipif(not shipped_available(), reason="needs checkpoints/nextnum"),
              pytest.mark.skipif(not R.has_onnxruntime(), reason="needs onnxruntime")]
NO_GRAPH = ("checkpoints/nextnum/.onnx/ holds no graph for these weights and this code: run "
            "`python -m nextnum.export --cache` and commit the new graph (git add -f)")

READ = """
import json, sys
import nextnum
from nextnum import Predictor
from nextnum.corrections import Corrections
from nextnum.web import views
p = Predictor.load()
pred = p.predict('examples/4072.png')
out = views.reading_views(pred, 'nextnum', 'layer 2', 'head 3')
views.encoder_view(pred, 'rollout', 'mean')
card = views.model_card(p, 'nextnum')[0]
Corrections(sys.argv[1]).save('examples/4072.png', '4072')
print(json.dumps({'torch': 'torch' in sys.modules, 'reads_with': p.reads_with, 'text': pred.text,
                  'pictures': sum(x is not None for x in out), 'card': card}))
"""


def graph_shipped() -> bool:
    from nextnum.checkpoint import read, weights
    cfg, _ = read(SHIPPED)
    return R.cached_graph(R.graph_places(R.graph_key(cfg.model, weights(SHIPPED)), SHIPPED)) is not None


def test_a_reading_with_every_view_and_a_correction_imports_no_torch(tmp_path):
    assert graph_shipped(), NO_GRAPH
    out = subprocess.run([sys.executable, "-c", READ, str(tmp_path / "corrections")], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["reads_with"] == "onnxruntime" and res["text"] == "4072"
    assert res["torch"] is False, "reading imported torch"
    params = json.loads((SHIPPED / "metrics.json").read_text())["parameters"]
    assert res["pictures"] == 7 and f"{params:,}" in res["card"]  # the card counts the parameters from the file
    assert len(list((tmp_path / "corrections").rglob("*.png"))) == 1


def test_the_app_serving_a_reading_loads_no_torch(tmp_path):
    """python app.py, asked for a reading through the API: the torch library is never mapped into it."""
    if not Path("/proc/self/maps").exists():
        pytest.skip("needs /proc (Linux)")
    assert graph_shipped(), NO_GRAPH
    from gradio_client import Client, handle_file
    root = tmp_path / "checkpoints"
    shutil.copytree(SHIPPED, root / "nextnum")
    app = AppServer(root, "nextnum", tmp_path / "app.log")  # its own: a process that has never trained or imported torch
    try:
        c = Client(app.url, verbose=False)
        res = c.predict(handle_file(str(ROOT / "examples" / "4072.png")), api_name="/predict")
        maps = Path(f"/proc/{app.proc.pid}/maps").read_text()
    finally:
        app.close()
    assert res[0] == "4072"
    assert "libtorch" not in maps, "the app imported torch to serve a reading"


def test_without_pytorch_the_train_tab_says_how_to_install_it(tmp_path, monkeypatch):
    from nextnum.config import Config
    from nextnum.web import train_runs as training
    monkeypatch.setattr(training, "has_torch", lambda: False)
    note, _ = training.training_data(tmp_path, force_fixture=True)
    assert "pip install -r requirements.txt" in note
    slot = training.TrainingSlot(tmp_path, lambda: None)
    with pytest.raises(ValueError, match=r"Training needs PyTorch.*pip install -r requirements\.txt"):
        slot.start(Config.load(ROOT / "configs" / "smoke.json"), "run-1")
