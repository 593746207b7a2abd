"""Two CPU processes under torchrun (gloo, loopback) train the smoke config into a normal checkpoint."""
import json
import os
import subprocess
import sys

import pytest

from nextnum import checkpoint
from conftest import ROOT

pytestmark = pytest.mark.slow


def test_torchrun_two_processes(tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # --standalone: a rendezvous on a free localhost port
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "nextnum.train", "--config", str(ROOT / "configs" / "smoke.json"),
           "--fixture", "--out", str(out)]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    model, cfg, metrics = checkpoint.load(out)  # the same kind of checkpoint one process writes
    assert metrics["processes"] == 2 and metrics["status"] == "finished"
    assert metrics["steps"] == cfg.train.steps
    assert metrics["history"][-1]["samples_seen"] == 2 * cfg.train.steps * cfg.train.batch
    assert not (out / "train.log").read_text().count("Traceback")
    printed = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
    assert len(printed) == 1, "only rank 0 reports"


def test_a_run_started_as_a_module_logs_resume_warnings_to_its_train_log(tmp_path):
    """python -m nextnum.train names its module __main__; the resume state's warnings still reach train.log."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "resume.safetensors").write_bytes(b"not a safetensors file")
    cmd = [sys.executable, "-m", "nextnum.train", "--config", str(ROOT / "configs" / "smoke.json"), "--fixture",
           "--out", str(out), "--steps", "2"]
    r = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "ignoring unreadable resume state" in (out / "train.log").read_text()
