"""Helpers for the app tests: small checkpoints to serve, and app.py launched in a subprocess on loopback."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from conftest import ROOT, SHIPPED  # noqa: F401 (the bench scripts import them from here too)


def shipped_available() -> bool:
    return (SHIPPED / "model.safetensors").is_file() and (SHIPPED / "config.json").is_file()


TINY = {"smoke-a": 0, "smoke-b": 1}  # two smoke models, by their seeds


def train_tiny(root: Path) -> None:
    """Train the TINY models into root: 10 steps of configs/smoke.json on the committed digit sample."""
    import torch
    from nextnum.config import Config
    from nextnum.data import load_fixture
    from nextnum.train import train
    torch.set_num_threads(1)
    for name, seed in TINY.items():
        cfg = Config.load(ROOT / "configs" / "smoke.json")
        cfg.train.steps, cfg.train.seed = 10, seed
        train(cfg, root / name, bank=load_fixture(), resume=False)


def make_checkpoints(root: Path, tiny: Path | None = None) -> str:
    """Fill root with two smoke models (different seeds: copied from `tiny`, the tests' session-wide ones,
    or trained now), a broken folder, and a copy of the shipped model when there is one. Returns the name to
    start the app with."""
    root.mkdir(parents=True, exist_ok=True)
    if tiny is None:
        train_tiny(root)
    else:
        for name in TINY:
            shutil.copytree(tiny / name, root / name)
    broken = root / "broken"
    broken.mkdir()
    shutil.copy(root / "smoke-a" / "config.json", broken / "config.json")
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    (root / ".half-written").mkdir()  # hidden folders are temporary: never listed
    if shipped_available():
        shutil.copytree(SHIPPED, root / "nextnum")
        return "nextnum"
    return "smoke-a"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """python app.py on a free loopback port, as a fresh clone would run it (no MNIST: the Train tab
    uses the built-in sample); terminated by close()."""

    def __init__(self, checkpoints: Path, start_with: str, log_file: Path, timeout: float = 90,
                 env: dict[str, str] | None = None) -> None:
        """env: extra settings for the app (e.g. NEXTNUM_THREADS, NEXTNUM_LOG); bench/ reuses this."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_ANALYTICS_ENABLED": "False",
               "NEXTNUM_CHECKPOINTS": str(checkpoints), "NEXTNUM_TRAIN_DATA": "fixture",
               "NEXTNUM_DATA": str(checkpoints / "no-mnist-here"), "NEXTNUM_THREADS": "1", **(env or {})}
        self.log_file = log_file
        self._log = open(log_file, "w")
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(self.port),
                                      "--checkpoint", str(checkpoints / start_with)],
                                     cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        t0 = time.monotonic()
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.close()
                raise RuntimeError(f"app.py exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self.alive():
                self.startup_s = time.monotonic() - t0
                return
            time.sleep(0.3)
        self.close()
        raise RuntimeError(f"app.py did not answer within {timeout}s:\n{self.log_tail()}")

    def alive(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/gradio_api/info", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def log_tail(self, n: int = 4000) -> str:
        self._log.flush()
        return self.log_file.read_text()[-n:]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
