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


def test_thin_one(ckpt):
    res = run_bench("thin_one.py", ckpt)
    assert res["bench"] == "thin_one" and [r["gap"] for r in res["rows"]] == [0.2, 0.45, 0.7]
    for r in res["rows"]:
        assert r["read"].isdigit() and 0 <= r["confidence"] <= 1
        assert r["second_map_right_of_gap"] is None or 0 <= r["second_map_right_of_gap"] <= 1


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


def test_train_speed_runs_and_chains_a_fine_tuned_run(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "train_speed.py"), "--config", str(ROOT / "configs" / "smoke.json"),
                        "--fixture", "--steps", "15", "--out", str(tmp_path), "--json"],
                       capture_output=True, text=True, cwd=ROOT, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["steps"] == 15 and 0 <= res["best_val_seq_acc"] <= 1 and (tmp_path / "train_curve.png").stat().st_size > 0
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from train_speed import lineage
    finally:
        sys.path.remove(str(ROOT / "bench"))
    parent = {"steps": 100, "train_seconds": 60.0, "best_val_seq_acc": 0.5,
              "history": [{"step": 60, "elapsed_s": 40.0, "val_seq_acc": 0.5, "samples_seen": 3840},
                          {"step": 100, "elapsed_s": 60.0, "val_seq_acc": 0.4, "samples_seen": 6400}]}
    child = {"steps": 50, "train_seconds": 30.0, "best_val_seq_acc": 0.7, "init_metrics": parent,
             "history": [{"step": 50, "elapsed_s": 30.0, "val_seq_acc": 0.7, "samples_seen": 3200}]}
    whole = lineage(child)
    assert [h["step"] for h in whole["history"]] == [60, 100, 150]
    assert [h["elapsed_s"] for h in whole["history"]] == [40.0, 60.0, 90.0]
    assert whole["history"][-1]["samples_seen"] == 9600 and whole["train_seconds"] == 90.0
    # the child started from the parent's best checkpoint (step 60), after the parent's 100 steps of time
    assert whole["stage_starts"] == [{"step": 100, "seconds": 60.0, "from_step": 60}]
    assert whole["best_val_seq_acc"] == 0.7
    grandchild = {"steps": 10, "train_seconds": 5.0, "best_val_seq_acc": 0.8, "init_metrics": child,
                  "history": [{"step": 10, "elapsed_s": 5.0, "val_seq_acc": 0.8, "samples_seen": 640}]}
    assert [st["from_step"] for st in lineage(grandchild)["stage_starts"]] == [60, 150]
    assert lineage(parent) is parent


def test_realsets_font_styles_build_a_labelled_folder(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "realsets.py"), "--out", str(tmp_path), "--n", "3",
                        "--styles", "sketch-font", "photo"], capture_output=True, text=True, cwd=ROOT, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    for style in ("sketch-font", "photo"):
        labels = json.loads((tmp_path / style / "labels.json").read_text())
        assert len(labels) == 3 and all(v.isdigit() and 1 <= len(v) <= 5 for v in labels.values())
        assert all((tmp_path / style / name).stat().st_size > 0 for name in labels)
