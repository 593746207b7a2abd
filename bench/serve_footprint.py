"""The serving app's footprint: seconds from start to the first page and the first reading, resident memory
idle and after 100 readings, and whether PyTorch was loaded.

    python bench/serve_footprint.py [--checkpoint checkpoints/nextnum] [--readings 100] [--json]
    /path/to/serve-venv/bin/python bench/serve_footprint.py --json   # an install from requirements-serve.txt

Runs `python app.py` with the Python running this script, twice: once timed from the process's start
to the first answer of GET / (the page) and to the first /predict reading (an example upload, with every
picture the Upload tab shows); once for memory, 2 s after the page answered (idle, nothing read yet) and
after --readings /predict readings of examples/*.png in turn through one gradio_client session. Memory
is the process's VmRSS (and its peak, VmHWM) from /proc; "torch loaded" is whether libtorch is mapped
into the process. Prints a table; --json adds one JSON line last.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from appserver import free_port  # noqa: E402
from procmem import memory_mb  # noqa: E402


def start(ckpt: Path, workdir: Path) -> tuple[subprocess.Popen, str, float]:
    """app.py on a free loopback port serving a copy of ckpt; the process, its URL and its start time."""
    root = workdir / "checkpoints"
    shutil.copytree(ckpt, root / ckpt.name)
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_ANALYTICS_ENABLED": "False",
           "NEXTNUM_CHECKPOINTS": str(root), "NEXTNUM_TRAIN_DATA": "fixture", "NEXTNUM_LOG": "WARNING",
           "NEXTNUM_DATA": str(workdir / "no-mnist"), "NEXTNUM_CORRECTIONS": str(workdir / "corrections")}
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), "--checkpoint",
                             str(root / ckpt.name)], cwd=ROOT, env=env, stdout=open(workdir / "app.log", "w"),
                            stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}", t0


def wait_page(proc: subprocess.Popen, url: str, t0: float, timeout: float = 180) -> float:
    """Seconds from t0 until GET / answers 200 with the page."""
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"app.py exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/", timeout=2) as r:
                if r.status == 200 and b"<html" in r.read(4096).lower():
                    return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"no page from {url} within {timeout}s")


def mem(pid: int) -> dict[str, Any]:
    m = memory_mb(pid)
    maps = Path(f"/proc/{pid}/maps").read_text()
    return {"rss_mb": round(m["VmRSS"], 1), "peak_mb": round(m["VmHWM"], 1), "torch_loaded": "libtorch" in maps}


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "nextnum"))
    ap.add_argument("--readings", type=int, default=100)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    from gradio_client import Client, handle_file
    examples = sorted((ROOT / "examples").glob("*.png"))
    res: dict[str, Any] = {"bench": "serve_footprint", "python": sys.executable, "checkpoint": args.checkpoint,
                           "torch_installed": __import__("importlib").util.find_spec("torch") is not None,
                           "loadavg_1m": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        proc, url, t0 = start(Path(args.checkpoint), Path(tmp) / "timed")
        try:
            res["first_page_s"] = round(wait_page(proc, url, t0), 2)
            out = Client(url, verbose=False).predict(handle_file(str(examples[0])), api_name="/predict")
            res["first_reading_s"] = round(time.monotonic() - t0, 2)
            res["first_reading_text"] = out[0]
        finally:
            stop(proc)
        proc, url, t0 = start(Path(args.checkpoint), Path(tmp) / "memory")
        try:
            wait_page(proc, url, t0)
            time.sleep(2)
            res["idle"] = mem(proc.pid)
            client = Client(url, verbose=False)
            labels = json.loads((ROOT / "examples" / "labels.json").read_text())
            right = sum(client.predict(handle_file(str(p)), api_name="/predict")[0] == labels.get(p.name)
                        for p in (examples[i % len(examples)] for i in range(args.readings)))
            res["after_readings"] = {**mem(proc.pid), "readings": args.readings, "read_right": right}
        finally:
            stop(proc)
    print(f"app.py with {sys.executable} (torch installed: {res['torch_installed']}; load {res['loadavg_1m']:.2f})")
    print(f"  start -> first page {res['first_page_s']} s, -> first reading {res['first_reading_s']} s "
          f"({res['first_reading_text']!r})")
    for k in ("idle", "after_readings"):
        m = res[k]
        print(f"  {k:<15} RSS {m['rss_mb']} MB (peak {m['peak_mb']} MB), torch loaded: {m['torch_loaded']}")
    print(f"  {res['after_readings']['read_right']}/{args.readings} readings right")
    if args.json:
        print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
