"""Shared bits of the bench scripts: checkpoint choice, test images, percentiles, tables, the app launcher."""
from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))  # appserver.py and procmem.py: the app launcher and memory reader the tests use too

DATA = ROOT.parent / "shared" / "data"


def checkpoint_path(arg: str | None) -> Path:
    """--checkpoint, else the shipped model; a clear error when neither is there."""
    from nextnum.checkpoint import SHIPPED
    p = Path(arg) if arg else SHIPPED
    if not (p / "model.safetensors").is_file():
        sys.exit(f"error: no checkpoint at {p}: pass --checkpoint PATH (a folder with model.safetensors)")
    return p


def machine() -> dict[str, Any]:
    """What the figures were measured on, and how busy the machine was when the run started."""
    import torch
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "loadavg_1m": round(load[0], 2)}


def stats(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms, np.float64)
    if a.size == 0:
        return {"n": 0, "p50": float("nan"), "p95": float("nan"), "mean": float("nan")}
    return {"n": int(a.size), "p50": round(float(np.percentile(a, 50)), 3),
            "p95": round(float(np.percentile(a, 95)), 3), "mean": round(float(a.mean()), 3)}


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table (also readable in a terminal)."""
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return "-" if not np.isfinite(v) else f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"
        return "-" if v is None else str(v)
    cells = [[fmt(v) for v in r] for r in rows]
    w = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = lambda r: "| " + " | ".join(c.ljust(w[i]) for i, c in enumerate(r)) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("-" * (x + 2) for x in w) + "|"] + [line(r) for r in cells])


def emit_json(res: dict[str, Any]) -> None:
    print(json.dumps(res, default=float), flush=True)


# ---------------------------------------------------------------- images


def digit_bank():
    """MNIST t10k when ../shared/data has it (what the figures use), else the committed test sample."""
    from nextnum.data import load_fixture, load_mnist
    try:
        return load_mnist(DATA, train=False), "MNIST t10k"
    except FileNotFoundError:
        return load_fixture(), "tests/fixtures sample"


def photos(n: int, seed: int = 1, bank=None) -> list[tuple[np.ndarray, str]]:
    """n 640x480 webcam-like RGB frames of handwritten 1-5 digit numbers on paper (bench/realsets.py)."""
    import cv2
    import realsets
    bank = bank if bank is not None else digit_bank()[0]
    out = []
    for i in range(n):
        rng = np.random.default_rng([seed, 2, i])
        text = "".join(str(d) for d in rng.integers(0, 10, int(rng.integers(1, 6))))
        jpeg, _ = realsets.photo(text, "photo-mnist", bank, {}, rng)
        bgr = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        out.append((cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), text))
    return out


def sketches(n: int, seed: int = 1, bank=None) -> list[tuple[np.ndarray, str]]:
    """n sketchpad composites (800-1200 x 300-400, black brush strokes on white) of 1-5 digit numbers."""
    import realsets
    bank = bank if bank is not None else digit_bank()[0]
    out = []
    for i in range(n):
        rng = np.random.default_rng([seed, 0, i])
        text = "".join(str(d) for d in rng.integers(0, 10, int(rng.integers(1, 6))))
        img, _ = realsets.sketch(text, "sketch-mnist", bank, {}, rng)
        out.append((img, text))
    return out


# ---------------------------------------------------------------- the app in a subprocess


class App:
    """python app.py on a free loopback port serving one checkpoint: tests/appserver.py's AppServer
    (the one launcher), with the bench's threads and a quiet log; close() ends it."""

    def __init__(self, ckpt: Path, workdir: Path, threads: int = 1, timeout: float = 120,
                 env: dict[str, str] | None = None) -> None:
        """env: more settings for the app (e.g. GRADIO_PROFILING=1 for Gradio's per-request phase timings)."""
        from appserver import AppServer
        workdir.mkdir(parents=True, exist_ok=True)
        ckpt = Path(ckpt).resolve()
        self.server = AppServer(ckpt.parent, ckpt.name, workdir / "app.log", timeout,
                                env={"NEXTNUM_THREADS": str(threads), "NEXTNUM_LOG": "WARNING", **(env or {})})
        self.url, self.proc, self.startup_s = self.server.url, self.server.proc, self.server.startup_s

    def close(self) -> None:
        self.server.close()

