"""Checkpoints: a folder of model.safetensors + config.json + metrics.json, saved atomically.

The whole folder is written under a temporary name and swapped in with renames, so a crash
mid-save leaves the previous checkpoint (or none), never a half-written one. Nothing is
unpickled on load. PyTorch is imported only to save or load the model itself: reading a checkpoint's
config and metrics (read) needs none.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .atomic import sync_folder
from .config import Config

if TYPE_CHECKING:
    import torch

    from .model import NextNum

log = logging.getLogger(__name__)

WEIGHTS, CONFIG, METRICS = "model.safetensors", "config.json", "metrics.json"
SHIPPED = Path(__file__).resolve().parent.parent / "checkpoints" / "nextnum"


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, corrupt, truncated or does not match its config."""


def _link_or_copy(src: str | Path, dst: str | Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def save_file(tensors: dict[str, torch.Tensor], filename: str) -> None:
    """safetensors.torch.save_file, imported only when a checkpoint is saved (reading saves none)."""
    from safetensors.torch import save_file as save
    save(tensors, filename)


def write_files(path: Path, files: dict[str, bytes | dict[str, torch.Tensor]]) -> None:
    """Atomically replace folder `path` with one holding `files` (bytes, or tensors -> safetensors)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _drop_stale(path)
    tag = uuid.uuid4().hex[:8]
    tmp, old = path.parent / f".{path.name}.tmp-{tag}", path.parent / f".{path.name}.old-{tag}"
    tmp.mkdir()
    try:
        for name, content in files.items():
            if isinstance(content, bytes):
                (tmp / name).write_bytes(content)
            else:
                save_file({k: v.detach().cpu().contiguous() for k, v in content.items()}, str(tmp / name))
            with open(tmp / name, "rb+") as f:
                os.fsync(f.fileno())
        if path.is_dir():  # keep what else lives there (train.log, resume state): hard links, no copies
            for f in path.iterdir():
                if f.name in files:
                    continue
                if f.is_dir():
                    shutil.copytree(f, tmp / f.name, copy_function=_link_or_copy)
                elif f.is_file():
                    _link_or_copy(f, tmp / f.name)
        sync_folder(tmp)
        if path.exists():
            os.rename(path, old)  # the only window without `path`; load() recovers from it
        os.rename(tmp, path)
        sync_folder(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


STALE_SECONDS = 3600  # a save takes seconds: temporary folders this old belong to a process that died


def _drop_stale(path: Path) -> None:
    """Delete what killed saves of `path` left behind: its hidden .tmp-* folders (and .old-* ones once
    `path` itself is there), if older than STALE_SECONDS, so that a save in progress elsewhere is spared."""
    now = time.time()
    stale = list(path.parent.glob(f".{path.name}.tmp-*"))
    if path.exists():
        stale += path.parent.glob(f".{path.name}.old-*")
    for p in stale:
        try:
            if now - p.stat().st_mtime > STALE_SECONDS:
                shutil.rmtree(p, ignore_errors=True)
        except OSError:  # another process removed it first
            pass


def save(path: str | Path, model: NextNum, cfg: Config, metrics: dict[str, Any] | None = None) -> None:
    """Save weights, config and metrics into the folder `path` (replacing it atomically)."""
    write_files(Path(path), {
        WEIGHTS: model.state_dict(),
        CONFIG: (json.dumps(cfg.to_dict(), indent=2) + "\n").encode(),
        METRICS: (json.dumps(metrics or {}, indent=2) + "\n").encode(),
    })


def _recover(path: Path) -> None:
    """If a save died between its two renames, put the previous folder back."""
    if path.exists():
        return
    olds = sorted(path.parent.glob(f".{path.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if olds:
        log.warning("recovering %s from an interrupted save (%s)", path, olds[-1].name)
        os.rename(olds[-1], path)


def read_json(file: Path) -> dict[str, Any]:
    try:
        return json.loads(file.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{file}: missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{file}: not valid JSON ({e})") from None


def read(path: str | Path | None = None) -> tuple[Config, dict]:
    """(config, metrics) of a checkpoint folder, without loading its weights (nor PyTorch); None = the
    shipped model. CheckpointError when the folder, its config or its weights file is missing, or the config is broken."""
    path = Path(path) if path is not None else SHIPPED
    _recover(path)
    if not path.is_dir():
        raise CheckpointError(f"{path}: no such checkpoint folder")
    try:
        cfg = Config.from_dict(read_json(path / CONFIG))
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path / CONFIG}: not a usable NextNum config ({e})") from None
    metrics_file = path / METRICS
    metrics = read_json(metrics_file) if metrics_file.exists() else {}
    if not (path / WEIGHTS).exists():
        raise CheckpointError(f"{path / WEIGHTS}: missing")
    return cfg, metrics


def weights(path: str | Path | None = None) -> dict[str, Any]:
    """A checkpoint's weights as numpy arrays, by name, without PyTorch (None = the shipped model)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file
    file = (Path(path) if path is not None else SHIPPED) / WEIGHTS
    try:
        return load_file(str(file))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{file}: corrupt or truncated safetensors file ({e})") from None


def load(path: str | Path | None = None, device: str | torch.device = "cpu") -> tuple[NextNum, Config, dict]:
    """Load (model in eval mode, config, metrics) from a checkpoint folder; None = the shipped model."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from .model import NextNum
    path = Path(path) if path is not None else SHIPPED
    cfg, metrics = read(path)
    try:
        model = NextNum(cfg.model)
    except (TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path / CONFIG}: not a usable NextNum config ({e})") from None
    weights = path / WEIGHTS
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{weights}: corrupt or truncated safetensors file ({e})") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise CheckpointError(f"{weights}: weights do not match {path / CONFIG} ({' '.join(first[:3])})") from None
    return model.to(device).eval(), cfg, metrics
