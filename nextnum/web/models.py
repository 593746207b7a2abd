"""The checkpoints the app may load: listed, looked up by name (never joined blindly into a path), cached."""
from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import checkpoint

if TYPE_CHECKING:  # loaded on first use: it pulls in OpenCV
    from ..predictor import Predictor

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # checkpoint names: one plain folder, never hidden


def is_checkpoint(path: Path) -> bool:
    """A folder with weights and a config (what checkpoint.save writes)."""
    return path.is_dir() and (path / checkpoint.WEIGHTS).is_file() and (path / checkpoint.CONFIG).is_file()


class Checkpoints:
    """The checkpoints the app may load: plain (non-hidden) folders directly under `root`, plus one
    operator-given folder (--checkpoint) that may live elsewhere. Names from the UI or the API are
    looked up here, never joined blindly into a path, so a client cannot name anything else."""

    def __init__(self, root: str | Path, extra: str | Path | None = None, cache_size: int = 4) -> None:
        self.root = Path(root).resolve()
        self.extra: tuple[str, Path] | None = None
        self._startup: str | None = None
        if extra is not None:
            p = Path(extra).resolve()
            self._startup = p.name
            if p.parent != self.root:  # outside root: listed under its own name (marked if that is taken)
                self._startup = p.name if not (self.root / p.name).exists() else f"{p.name} (--checkpoint)"
                self.extra = (self._startup, p)
        self._cache: OrderedDict[tuple[str, int], Any] = OrderedDict()
        self._lock = threading.Lock()
        self._size = cache_size

    def names(self) -> list[str]:
        """The names to offer: the --checkpoint folder, then the shipped model, then the rest by name."""
        self._recover_interrupted()
        found = sorted(p.name for p in self.root.iterdir() if not p.name.startswith(".") and NAME_RE.match(p.name)
                       and p.resolve().parent == self.root and is_checkpoint(p)) if self.root.is_dir() else []
        if "nextnum" in found:  # the shipped model first
            found.insert(0, found.pop(found.index("nextnum")))
        return ([self.extra[0]] if self.extra else []) + found

    def _recover_interrupted(self, after_s: float = 2.0) -> None:
        """Put back a checkpoint whose re-save was killed between its two renames (checkpoint.write_files
        leaves it as .<name>.old-*), so it is listed again. A live save is between them for microseconds:
        only folders renamed more than after_s ago are touched."""
        for old in self.root.glob(".*.old-*") if self.root.is_dir() else []:
            path = self.root / old.name[1:].rsplit(".old-", 1)[0]
            try:
                if NAME_RE.match(path.name) and not path.exists() and time.time() - old.stat().st_ctime > after_s:
                    checkpoint._recover(path)
            except OSError:  # another request put it back first
                pass

    def default(self) -> str | None:
        """The name live at startup: --checkpoint, else the shipped model, else the newest checkpoint."""
        if self._startup is not None:
            return self._startup
        names = [n for n in self.names() if n != "nextnum"]
        if (self.root / "nextnum").is_dir() and is_checkpoint(self.root / "nextnum"):
            return "nextnum"  # the shipped model, else the newest one
        return max(names, key=lambda n: (self.root / n / checkpoint.WEIGHTS).stat().st_mtime, default=None)

    def resolve(self, name: str | None) -> Path:
        """The folder of a listed name; CheckpointError (a message for the user) for anything else."""
        if not name:
            raise checkpoint.CheckpointError("no checkpoint chosen: train one in the Train tab, or start the app "
                                             "with --checkpoint")
        if self.extra and name == self.extra[0]:
            return self.extra[1]
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise checkpoint.CheckpointError(f"{name!r} is not a checkpoint name (a folder directly under "
                                             "checkpoints/)")
        path = (self.root / name).resolve()
        if path.parent != self.root or not is_checkpoint(path):  # also refuses symlinks that lead elsewhere
            raise checkpoint.CheckpointError(f"no checkpoint named {name!r} under {self.root.name}/")
        return path

    def predictor(self, name: str | None) -> Predictor:
        """The Predictor for a checkpoint name, loaded once and kept (models are read-only once loaded)."""
        from ..predictor import Predictor
        path = self.resolve(name)
        key = (str(path), (path / checkpoint.WEIGHTS).stat().st_mtime_ns)  # a re-saved folder is reloaded
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        try:
            p = Predictor.load(path)
        except checkpoint.CheckpointError as e:  # its message names the folder by name, never by server path
            raise checkpoint.CheckpointError(str(e).replace(str(path), name)) from None
        with self._lock:
            self._cache[key] = p
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return p
