"""The bench scripts run on their tiny settings and end with one line of valid JSON (the figures are not tested)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "checkpoints" / "nextnum"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    """The shipped model when there is one, else a smoke model trained on the committed sample."""
    if (SHIPPED / "model.safetensors").is_file():
        return SHIPPED
    from nextnum.config import Config
    from nextnum.data import load_fixture
    from nextnum.train import train
    out = tmp_path_factory.mktemp("bench") / "smoke"
    train(Config.load(ROOT / "configs" / "smoke.json"), out, bank=load_fixture(), resume=False)
    return out


def run_bench(script: str, ckpt: Path, timeout: float = 240) -> dict:
    r = subprocess.run([sys.executable, str(ROOT / "bench" / script), "--quick", "--json", "--checkpoint", str(ckpt)],
                       capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    assert r.returncode == 0, f"{script} exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    lines = r.stdout.strip().splitlines()
    assert "|" in r.stdout, f"{script} printed no table"
    return json.loads(lines[-1])


def test_read_latency(ckpt):
    res = run_bench("read_latency.py", ckpt)
    assert res["bench"] == "read_latency"
    for key in ("photo/explain=True/threads=1", "sketch/explain=False/threads=1"):
        assert res["predict"][key]["total"]["p50"] > 0
    assert res["model"]["threads=1"]["generate"]["p50"] > 0
    assert "skipped" in res["onnx"] or res["onnx"]["tokens_equal"] == 1.0
    assert "skipped" in res["tesseract"] or 0 <= res["tesseract"]["photo"]["accuracy"] <= 1


def test_streaming(ckpt):
    res = run_bench("streaming.py", ckpt)
    assert res["every_frame"]["fps"] > 0 and res["throttled"]["fps"] > 0
    assert res["every_frame"]["heavy_every"] == 1


@pytest.mark.slow
def test_serving(ckpt):
    res = run_bench("serving.py", ckpt)
    assert [r["users"] for r in res["runs"]] == [1, 2]
    assert all(r["errors"] == 0 and r["ok"] == r["requests"] for r in res["runs"])


@pytest.mark.slow
def test_memory(ckpt):
    res = run_bench("memory.py", ckpt)
    assert res["import_torch"]["peak"] > 0 and res["app_load"]["peak"] >= res["app_idle"]["final"] > 0
    assert res["load"]["errors"] == 0
