"""The running app's checkpoints: killed saves and bad folders keep the good model; one run at a time; stop keeps the best."""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

pytest.importorskip("httpx")
pytest.importorskip("gradio_client")
from reliability_app import app_log, chosen, client, upload  # noqa: E402
from reliability_app import files, server  # noqa: E402, F401 (fixtures)

from nextnum import checkpoint  # noqa: E402
from conftest import ROOT  # noqa: E402


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
