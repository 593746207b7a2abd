"""Reading without PyTorch: find a checkpoint's exported graph and run it in onnxruntime.

The graph (nextnum/export.py) maps a canvas batch (B, 1, H, W), ink = 1, to what NextNum.generate
returns with return_attn=True: tokens, the softmax at each step, each decoder layer's cross-attention
per head and the encoder's self-attention per layer and head. It is named by graph_key, a digest that
this module computes from the checkpoint's files alone, so serving needs neither torch nor the model.
"""
from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import logging
import os
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .config import BOS, EOS, PAD, PIXEL_MEAN, PIXEL_STD, VOCAB, ModelConfig

log = logging.getLogger(__name__)
GRAPH_DIR = ".onnx"  # inside a checkpoint folder: its graphs, one per graph_key
PACKAGE = Path(__file__).resolve().parent
GRAPH_CODE = ("model.py", "export.py")  # the code the graph is built from
OUTPUTS = ("tokens", "probs", "cross_attn", "enc_attn")


@dataclass
class Reading:
    """One batch's greedy decoding, as numpy (the shapes of model.Generation). S = steps, N = tokens."""
    tokens: np.ndarray  # (B, S) int64: digits, then EOS, then PAD
    probs: np.ndarray  # (B, S, VOCAB) float32 softmax at each step
    cross_attn: np.ndarray | None = None  # (B, S, dec_layers, heads, N)
    enc_attn: np.ndarray | None = None  # (B, enc_layers, heads, N, N)

    def row(self, i: int) -> "Reading":
        """The reading of batch item i alone, as a batch of one."""
        return Reading(*(None if a is None else a[i:i + 1] for a in (self.tokens, self.probs, self.cross_attn, self.enc_attn)))


def tokens_text(tokens: list[int]) -> str:
    """The digits a row of generated tokens reads: those before the first token that is not a digit (EOS, PAD)."""
    n = next((i for i, t in enumerate(tokens) if t > 9), len(tokens))
    return "".join(str(t) for t in tokens[:n])


def has_onnxruntime() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


@lru_cache(maxsize=1)
def code_digest() -> str:
    """The modules the graph is built from (model.py, export.py) as syntax trees, so that comments and
    layout do not count; read from their files, so that no torch is imported to know it."""
    h = hashlib.sha256()
    for name in GRAPH_CODE:
        h.update(ast.dump(ast.parse((PACKAGE / name).read_text())).encode())
    return h.hexdigest()


# ModelConfig fields that change how maps are drawn or readings voted on, not the graph
NOT_IN_GRAPH = ("maps_on_ink", "views_below")


def graph_key(cfg: ModelConfig, tensors: dict[str, np.ndarray]) -> str:
    """A digest of everything the exported graph depends on: the weights (buffers too, by name), the model
    config, the token ids and pixel statistics baked into it and the code that builds it. The exporter's
    version is left out: any graph of the same weights and code reads the same, and a serving install
    has no exporter to ask."""
    drawn = {k: v for k, v in asdict(cfg).items() if k not in NOT_IN_GRAPH}
    key = hashlib.sha256(json.dumps([drawn, BOS, EOS, PAD, VOCAB, PIXEL_MEAN, PIXEL_STD, code_digest()]).encode())
    for name in sorted(tensors):
        key.update(name.encode())
        key.update(np.ascontiguousarray(tensors[name]).tobytes())
    return key.hexdigest()[:24]


def user_cache() -> Path:
    """Where graphs go when the checkpoint's folder cannot be written to: the user's cache folder, by the
    XDG convention ($XDG_CACHE_HOME/nextnum, else ~/.cache/nextnum)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nextnum"


def graph_places(key: str, beside: str | Path | None = None, folder: str | Path | None = None) -> list[Path]:
    """Where the graph named by key is kept, in the order looked at: beside the checkpoint
    (<checkpoint>/.onnx/), then `folder` (default user_cache()). A changed model or code never finds an
    old graph: the name is the key."""
    name = f"greedy-{key}.onnx"
    return ([Path(beside) / GRAPH_DIR / name] if beside is not None else []) + [Path(folder or user_cache()) / name]


def cached_graph(places: list[Path]) -> bytes | None:
    """The first graph found at places, or None."""
    for path in places:
        try:
            return path.read_bytes()
        except OSError:
            continue
    return None


def load_reader(data: bytes) -> OnnxReader | None:
    """An OnnxReader for a graph, or None (with one log line) when onnxruntime cannot run it."""
    try:
        return OnnxReader(data)
    except Exception as e:  # a graph onnxruntime refuses (e.g. an older runtime): PyTorch reads instead
        log.warning("onnxruntime could not load the graph, readings run in PyTorch: %s: %s", type(e).__name__, e)
        return None


class OnnxReader:
    """NextNum.generate(img, return_attn=True) from onnxruntime. __call__ is thread-safe."""

    def __init__(self, graph: bytes, threads: int = 1) -> None:
        import onnxruntime as ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(graph, opts, providers=["CPUExecutionProvider"])
        names = [o.name for o in self.session.get_outputs()]
        if names != list(OUTPUTS):
            raise ValueError(f"the graph returns {names}, not {list(OUTPUTS)}")

    def __call__(self, canvas: Any, attention: bool = True) -> Reading:
        """canvas (B, 1, H, W), ink = 1 (numpy, or anything np.asarray takes) -> Reading; without
        `attention`, the maps are not copied out (tokens and probabilities only)."""
        x = np.ascontiguousarray(canvas, np.float32)
        if not attention:
            return Reading(*self.session.run(list(OUTPUTS[:2]), {"canvas": x}))
        return Reading(*self.session.run(None, {"canvas": x}))
