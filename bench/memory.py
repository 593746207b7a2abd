"""Memory: peak resident set size of the CLI and the app, beside a bare `import torch`.

    python bench/memory.py --checkpoint checkpoints/nextnum [--requests 25] [--json]
    python bench/memory.py --quick --json

Each process's own peak resident memory (VmHWM, Linux /proc; read before the interpreter's teardown)
and its private memory (RssAnon) at the end: `python -c "import torch"` (the baseline), the same with
gradio (what the web framework alone adds), `python -m nextnum.read` on one 640x480 photo, and
`python app.py` idle after startup and after N gradio_client users sent /predict requests
(bench/serving.py's load). Prints a table; --json adds one JSON line last.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
import serving  # noqa: E402


# runs a module or code as `python -m`/`-c` would, then reports the process's own peak (VmHWM) before the
# interpreter's teardown, so every row is the same measure as the app's (read from /proc while it runs)
_WRAP = """
import os, runpy, sys
kind, target, *rest = sys.argv[1:]
sys.argv = [target] + rest
code = 0
try:
    runpy.run_module(target, run_name="__main__", alter_sys=True) if kind == "-m" else exec(target)
except SystemExit as e:
    code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
sys.path.insert(0, {tests!r})
from procmem import memory_mb
m = memory_mb()
print("__PEAK__", m["VmHWM"], m["VmRSS"], m["RssAnon"], flush=True)
os._exit(code)
"""


def peak_rss_mb(args: list[str]) -> dict[str, float]:
    """Peak and final RSS and private (anonymous) memory in MB of `python -m MOD ...` or `python -c CODE`."""
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    r = subprocess.run([sys.executable, "-c", _WRAP.format(tests=str(C.ROOT / "tests"))] + args, capture_output=True, text=True, cwd=C.ROOT, env=env)
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("__PEAK__")), None)
    if r.returncode != 0 or line is None:
        raise RuntimeError(f"{' '.join(args)} failed ({r.returncode}):\n{r.stdout[-1000:]}{r.stderr[-2000:]}")
    hwm, rss, anon = (float(v) for v in line.split()[1:])
    return {"peak": round(hwm, 1), "final": round(rss, 1), "private": round(anon, 1)}


def proc_mem(pid: int) -> dict[str, float]:
    """Peak and current RSS and private (anonymous) memory of a running process in MB, from /proc."""
    from procmem import memory_mb
    m = memory_mb(pid)
    return {"peak": round(m["VmHWM"], 1), "final": round(m["VmRSS"], 1), "private": round(m["RssAnon"], 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default=None, help="checkpoint folder (default: checkpoints/nextnum)")
    ap.add_argument("--users", type=int, default=8)
    ap.add_argument("--requests", type=int, default=25, help="requests per user under load")
    ap.add_argument("--quick", action="store_true", help="2 users x 2 requests, the committed digit sample, no "
                                                          "'import torch, gradio' baseline")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.users, args.requests = 2, 2
    ckpt = C.checkpoint_path(args.checkpoint)
    res: dict[str, Any] = {"bench": "memory", "machine": C.machine(), "checkpoint": str(ckpt)}
    if args.quick:
        from nextnum.data import load_fixture
        bank = load_fixture()
    else:
        bank = C.digit_bank()[0]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = serving.write_photos(tmp, 8, bank)
        res["import_torch"] = peak_rss_mb(["-c", "import torch"])
        if not args.quick:  # a baseline for the report, not a check of the script
            res["import_torch_gradio"] = peak_rss_mb(["-c", "import torch, gradio"])
        res["predict_cli"] = peak_rss_mb(["-m", "nextnum.read", files[0][0], "--checkpoint", str(ckpt)])
        app = C.App(ckpt, tmp / "app")
        try:
            time.sleep(2)
            res["app_idle"] = proc_mem(app.proc.pid)
            peak = [0.0]

            def sample() -> None:
                peak[0] = max(peak[0], proc_mem(app.proc.pid)["private"])
            run = serving.load(app.url, args.users, args.requests, files, sample=sample)
            res["load"] = {k: run[k] for k in ("users", "requests", "errors", "req_per_s")}
            res["app_load"] = {**proc_mem(app.proc.pid), "private_peak_sampled": peak[0]}
        finally:
            app.close()
    base = res["import_torch"]["peak"]
    rows = [["python -c 'import torch' (baseline)", res["import_torch"]],
            ["python -c 'import torch, gradio'", res.get("import_torch_gradio")],
            ["python -m nextnum.read, one 640x480 photo", res["predict_cli"]],
            ["app.py idle, 2 s after startup", res["app_idle"]],
            [f"app.py after {args.users} users x {args.requests} /predict", res["app_load"]]]
    rows = [[name, m["peak"], m["peak"] - base, m["private"]] for name, m in rows if m is not None]
    mc = res["machine"]
    print(f"Resident memory, MB ({mc['cpu']}, {mc['cores']} cores; torch {mc['torch']}). Peak = the process's "
          "VmHWM; private = RssAnon (not shared library pages) at the end\n")
    print(C.table(["process", "peak RSS", "peak above import torch", "private"], rows))
    if res["load"]["errors"]:
        print(f"\n{res['load']['errors']} requests failed under load")
    if args.json:
        C.emit_json(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
