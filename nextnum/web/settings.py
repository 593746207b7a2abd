"""The app's settings: parsed once from the command line and the NEXTNUM_* environment (server.main), then
passed to whatever needs them. No other module reads the environment for a setting."""
from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Settings:
    checkpoint: str | None = None  # folder to start with (default: the shipped model)
    checkpoints_dir: str = str(ROOT / "checkpoints")  # folder of checkpoints listed and trained into
    data: str = str(ROOT.parent / "shared" / "data")  # MNIST for the Train tab
    train_on_fixture: bool = False  # train on the built-in sample even when MNIST is there
    corrections_dir: str | None = None  # default: corrections/ beside the checkpoints folder
    port: int | None = None
    share: bool = False
    public: bool = False  # a deployment anyone may reach: corrections private, no training
    threads: int = 1  # PyTorch's threads
    log: str = "INFO"
    stream_seconds: float = 30.0  # a webcam session holds a worker this long
    streams: int = 4  # webcam sessions served at once; more wait their turn
    cache_seconds: int = 3600  # uploads and returned pictures older than this are deleted, checked this often
    # Gradio keeps ~250 KB per session (a copy of the page's config, and the State values) for the newest this
    # many sessions; its default of 10,000 would let API callers, each call a new session, take 2.5 GB, and
    # 1,000 held 250 MB after 16 API clients had called for a minute, 100 left the app +50 MB after 3 minutes
    # (bench/memory_soak.py --mix)
    sessions: int = 50
    queue: int = 20  # events that may wait; more are answered 503
    heavy: int = 2  # decodes and readings at once, across every event (one per core of a 2-vCPU Space)
    corrections_mb: int = 200  # in public: the most the corrections folder may hold

    @property
    def corrections_root(self) -> Path:
        return Path(self.corrections_dir) if self.corrections_dir else Path(self.checkpoints_dir).resolve().parent / "corrections"


def parse(argv: list[str] | None = None, env: Mapping[str, str] = os.environ) -> Settings:
    """Settings from the command line, each default taken from the environment (NEXTNUM_*; SPACE_ID, which a
    Hugging Face Space sets, makes --public the default)."""
    d = Settings()
    get = lambda k, v: env.get(f"NEXTNUM_{k}", v)  # noqa: E731
    public = get("PUBLIC", "1" if env.get("SPACE_ID") else "")
    ap = argparse.ArgumentParser(description="NextNum web app")
    ap.add_argument("--checkpoint", help="checkpoint folder to start with (default: checkpoints/nextnum)")
    ap.add_argument("--checkpoints-dir", default=get("CHECKPOINTS", d.checkpoints_dir),
                    help="folder of checkpoints the app lists and trains into (env NEXTNUM_CHECKPOINTS)")
    ap.add_argument("--data", default=get("DATA", d.data),
                    help="MNIST root for the Train tab (env NEXTNUM_DATA); without it the built-in sample is used")
    ap.add_argument("--corrections-dir", default=get("CORRECTIONS", None),
                    help="folder the Save correction buttons write to (env NEXTNUM_CORRECTIONS; "
                         "default: corrections/ beside the checkpoints folder)")
    ap.add_argument("--port", type=int, default=None, help="port (default: GRADIO_SERVER_PORT or 7860)")
    ap.add_argument("--share", action="store_true", help="also make a temporary public gradio.live link")
    ap.add_argument("--public", action="store_true", default=public not in ("", "0"),
                    help="for a deployment anyone may reach (env NEXTNUM_PUBLIC=1; on by itself on a Hugging Face "
                         "Space, which sets SPACE_ID; NEXTNUM_PUBLIC=0 turns it off): the saved corrections are "
                         "neither shown, zipped nor scored, and training is off")
    ap.add_argument("--threads", type=int, default=int(get("THREADS", d.threads)),
                    help="PyTorch's threads (training); 1 is fastest for this small model, beside a training run")
    a = ap.parse_args(argv)
    return Settings(checkpoint=a.checkpoint, checkpoints_dir=a.checkpoints_dir, data=a.data,
                    train_on_fixture=get("TRAIN_DATA", "") == "fixture", corrections_dir=a.corrections_dir,
                    port=a.port, share=a.share, public=a.public, threads=max(1, a.threads),
                    log=get("LOG", d.log).upper(), stream_seconds=float(get("STREAM_SECONDS", d.stream_seconds)),
                    streams=int(get("STREAMS", d.streams)), cache_seconds=int(get("CACHE_SECONDS", d.cache_seconds)),
                    sessions=int(get("SESSIONS", d.sessions)), queue=int(get("QUEUE", d.queue)),
                    heavy=max(1, int(get("HEAVY", d.heavy))), corrections_mb=int(get("CORRECTIONS_MB", d.corrections_mb)))
