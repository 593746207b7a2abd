"""The bench scripts on their --quick settings: each ends with one line of JSON whose figures add up
(counts, settings that took effect, a fake Tesseract's known answers); the timings themselves are not tested."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, SHIPPED


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


def run_bench(script: str, ckpt: Path | None, *args: str, timeout: float = 480, env: dict | None = None) -> dict:
    """bench/<script> --quick --json [--checkpoint ckpt] args: its last line, parsed."""
    r = subprocess.run([sys.executable, str(ROOT / "bench" / script), "--quick", "--json",
                        *(["--checkpoint", str(ckpt)] if ckpt else []), *args],
                       capture_output=True, text=True, cwd=ROOT, timeout=timeout, env=env)
    assert r.returncode == 0, f"{script} exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return json.loads(r.stdout.strip().splitlines()[-1])


FAKE_TESSERACT = """#!{python}
# stands in for Tesseract: answers from a JSON file of {{image stem: text}}, and insists on read_latency's options
import json, pathlib, sys
if sys.argv[1:] == ["--version"]:
    print("tesseract 0.0-fake")
    sys.exit(0)
image, out, *opts = sys.argv[1:]
assert out == "stdout" and opts == ["--psm", "7", "-c", "tessedit_char_whitelist=0123456789"], opts
print(json.loads(pathlib.Path({answers!r}).read_text())[pathlib.Path(image).stem])
"""


def test_read_latency(ckpt, tmp_path):
    import os
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import _common as C
    finally:
        sys.path.remove(str(ROOT / "bench"))
    from nextnum.data import load_fixture
    bank = load_fixture()  # --quick draws the same images from the committed sample
    truth = {f"{kind}{i}": text for kind, make in (("photo", C.photos), ("sketch", C.sketches))
             for i, (_, text) in enumerate(make(3, 1, bank))}
    answers = {k: v if k not in ("photo1", "sketch2") else "x" for k, v in truth.items()}  # two wrong answers
    (tmp_path / "answers.json").write_text(json.dumps(answers))
    fake = tmp_path / "bin" / "tesseract"
    fake.parent.mkdir()
    fake.write_text(FAKE_TESSERACT.format(python=sys.executable, answers=str(tmp_path / "answers.json")))
    fake.chmod(0o755)
    res = run_bench("read_latency.py", ckpt, env={**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}"})
    assert res["bench"] == "read_latency" and res["n"] == 3
    for key in ("photo/explain=True/threads=1", "sketch/explain=False/threads=1",
                "photo/explain=False/runtime=onnx/threads=1"):
        assert res["predict"][key]["total"]["n"] == 3 and res["predict"][key]["total"]["p50"] > 0
    assert res["model"]["threads=1"]["generate"]["n"] == 6  # the 6 canvases, one pass
    assert res["onnx"]["tokens_equal"] == 1.0 and res["onnx"]["max_prob_diff"] < 1e-3  # onnxruntime is required
    tess = res["tesseract"]
    assert tess["version"] == "tesseract 0.0-fake"
    assert tess["photo"]["accuracy"] == pytest.approx(2 / 3) and tess["sketch"]["accuracy"] == pytest.approx(2 / 3)
    assert tess["photo"]["n"] == tess["sketch"]["n"] == 3


def test_thin_one(ckpt):
    res = run_bench("thin_one.py", ckpt)
    assert res["bench"] == "thin_one" and [r["gap"] for r in res["rows"]] == [0.2, 0.45, 0.7]
    for r in res["rows"]:
        assert r["read"].isdigit() and 0 <= r["confidence"] <= 1
        assert r["second_map_right_of_gap"] is None or 0 <= r["second_map_right_of_gap"] <= 1


def test_streaming_draws_the_maps_on_the_frames_each_setting_says(ckpt):
    res = run_bench("streaming.py", ckpt)
    every, throttled = res["every_frame"], res["throttled"]
    assert every["fps"] > 0 and throttled["fps"] > 0 and every["frames"] == throttled["frames"] == 10
    assert every["read_frames"] == throttled["read_frames"] >= 5  # the same frames, most of them read
    assert every["heavy_frames"] == every["read_frames"]  # every frame that read digits drew their maps...
    k = throttled["heavy_every"]  # ...and with the app's schedule only frames 1, 1 + k, 1 + 2k, ...
    assert k > 1 and 1 <= throttled["heavy_frames"] <= len(range(0, 10, k)) < throttled["read_frames"]


@pytest.mark.slow
def test_serving_to_pages_that_fetch_every_picture(ckpt):
    # the gradio_client users are bench/memory.py's load (test_memory)
    res = run_bench("serving.py", ckpt, "--download", "--client", "page")
    assert [r["users"] for r in res["runs"]] == [1, 2] and res["download"] == "browser" and res["client"] == "page"
    # each reading: a map per digit, the combined map and the encoder's, inside the answer: no file to fetch
    assert all(r["pictures_per_req"] >= 3 and r["files_per_req"] == 0 and r["kb_per_req"] > 1 for r in res["runs"])
    assert all(r["errors"] == 0 and r["ok"] == r["requests"] for r in res["runs"])
    alt = res["alternating"]  # at the most users: no-op, /predict, no-op; the ratio pools each endpoint's turns
    assert alt["users"] == 2 and len(alt["rounds"]) == 1 and len(alt["floors"]) == 2
    assert alt["floor_ms"]["n"] == sum(f["ok"] for f in alt["floors"]) == 8
    assert res["p95_ratio"] == round(alt["predict_ms"]["p95"] / alt["floor_ms"]["p95"], 2)
    assert all(r["app_cpu_ms"] > 0 and r["client_cpu_ms"] > 0 for r in res["runs"] + alt["floors"])


@pytest.mark.slow
def test_memory(ckpt):
    res = run_bench("memory.py", ckpt)
    assert res["import_torch"]["peak"] > 0 and res["app_load"]["peak"] >= res["app_idle"]["final"] > 0
    assert res["load"]["errors"] == 0


def test_train_speed_runs_and_chains_a_fine_tuned_run(tmp_path):
    res = run_bench("train_speed.py", None, "--out", str(tmp_path))
    assert res["steps"] == 15 and 0 <= res["best_val_seq_acc"] <= 1
    assert (tmp_path / "train_curve.png").stat().st_size > 0
    metrics = json.loads((tmp_path / "checkpoint" / "metrics.json").read_text())
    assert res["best_val_seq_acc"] == metrics["best_val_seq_acc"]  # the run it trained, summarised
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
    shipped = {**parent, "best_step": 100}  # a shipped snapshot hands on the step it shipped (bench/ship.py)
    assert lineage({**child, "init_metrics": shipped})["stage_starts"][0]["from_step"] == 100


def test_step_cost_times_the_config_it_names():
    res = run_bench("step_cost.py", None)
    (row,) = res["rows"]
    assert row["config"].endswith("smoke.json") and res["steps"] == 3 and row["batch"] == 16
    assert row["tokens"] == row["grid"][0] * row["grid"][1] and row["draw_cpu_ms"] > 0 and row["learn_cpu_ms"] > 0
    assert row["samples_per_cpu_s"] == pytest.approx(16 / ((row["draw_cpu_ms"] + row["learn_cpu_ms"]) / 1000), rel=0.01)


def test_compare_curves_summarises_and_draws_each_run(tmp_path):
    hist = [{"step": 250, "samples_seen": 16000, "cpu_s": 100.0, "elapsed_s": 150.0, "val_seq_acc": 0.3},
            {"step": 500, "samples_seen": 32000, "cpu_s": 200.0, "elapsed_s": 320.0, "val_seq_acc": 0.6},
            {"step": 750, "samples_seen": 48000, "cpu_s": 320.0, "elapsed_s": 500.0, "val_seq_acc": 0.55}]
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps({"status": "finished", "parameters": 10, "history": hist}))
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "compare_curves.py"), "--runs", f"a={tmp_path / 'a'}",
                        f"b={tmp_path / 'b'}", "--out", str(tmp_path / "c.png"), "--json"],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout.strip().splitlines()[-1])["runs"]
    assert [x["run"] for x in rows] == ["a", "b"]
    assert rows[0]["val_last"] == 0.55 and rows[0]["val_best"] == 0.6 and rows[0]["best_step"] == 500
    assert rows[0]["samples"] == 48000 and rows[0]["samples_per_cpu_s"] == 150.0
    assert (tmp_path / "c.png").stat().st_size > 0


def test_realsets_builds_a_labelled_folder_per_style(tmp_path):
    import cv2
    res = run_bench("realsets.py", None, "--out", str(tmp_path))
    assert res["images"] == {"sketch-mnist": 3, "sketch-font": 3, "photo": 3, "photo-mnist": 3, "sketch-pens": 3, "photo-pens": 3}
    for style in res["images"]:
        labels = json.loads((tmp_path / style / "labels.json").read_text())
        assert len(labels) == 3 and all(v.isdigit() and 1 <= len(v) <= 5 for v in labels.values())
        for name in labels:
            img = cv2.imread(str(tmp_path / style / name), cv2.IMREAD_UNCHANGED)  # webcam frames, sketchpads
            assert img is not None and (img.shape[:2] == (480, 640) if "photo" in style else img.shape[1] >= 800)


@pytest.mark.slow
def test_memory_soak(tmp_path):
    res = run_bench("memory_soak.py", None, timeout=600)
    assert res["requests"] == 20 and res["warmup"] == 5 and res["mode"] == "one gradio_client session"
    assert 100 < res["rss_start_mb"] <= res["rss_max_mb"] and res["rss_end_mb"] <= res["rss_max_mb"]
    assert res["growth_mb"] == pytest.approx(res["rss_end_mb"] - res["rss_start_mb"], abs=0.11)
    assert res["cache_mb"] > 0  # the uploads went to the app's own cache folder (the pictures come back inline)


def test_views(ckpt):
    """Threshold 0 rereads nothing; a higher threshold rereads at least as often; each view left out once."""
    res = run_bench("views.py", ckpt)
    sweep = res["sweep"]
    assert res["pages"] == 20 and [s["threshold"] for s in sweep] == sorted(s["threshold"] for s in sweep)
    rereads = [s["reread"] for s in sweep]
    assert rereads[0] == 0 and rereads == sorted(rereads) and all(0 <= s["accuracy"] <= 1 for s in sweep)
    assert [r["view"] for r in res["left_out"]] == res["views"] and len(res["views"]) == 8


@pytest.mark.parametrize("views_below", [0.0, 0.9])
def test_ship_sets_the_second_look_and_says_how_to_check_it(tmp_path, views_below):
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from ship import ship
    finally:
        sys.path.remove(str(ROOT / "bench"))
    snap = tmp_path / "run" / "snapshots" / "000010"
    snap.mkdir(parents=True)
    (tmp_path / "run" / "metrics.json").write_text(json.dumps({"history": [{"step": 10, "samples_seen": 640}]}))
    (snap / "metrics.json").write_text(json.dumps({"steps": 10, "best_val_seq_acc": 0.5}))
    (snap / "config.json").write_text(json.dumps({"model": {"dim": 8}}))
    (snap / "model.safetensors").write_bytes(b"weights")
    ship(snap, tmp_path / "out", "train it", False, None, views_below)
    cfg = json.loads((tmp_path / "out" / "config.json").read_text())
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert cfg["model"].get("views_below", 0.0) == views_below and metrics["samples"] == 640
    assert ("second_look" in metrics) == bool(views_below)
