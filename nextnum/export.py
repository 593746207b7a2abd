"""Export a checkpoint to ONNX: the encoder and the whole greedy loop in one graph, dynamic batch.

    python -m nextnum.export --out nextnum.onnx [--checkpoint PATH] [--check]
    python -m nextnum.export --cache [--checkpoint PATH]    # where Predictor.load() finds it

The graph maps a canvas batch (B, 1, H, W) with ink = 1 to tokens (B, max_digits + 1) and the
softmax at each step (B, max_digits + 1, VOCAB), exactly as NextNum.generate decides them: at least
one digit, at most max_digits, PAD after EOS. It always runs every step (no early exit).
"""
from __future__ import annotations

import argparse
import ast
import copy
import hashlib
import importlib.util
import inspect
import io
import json
import logging
import os
import sys
import textwrap
import threading
from collections.abc import Callable
from dataclasses import asdict
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from .checkpoint import write_atomic
from .config import BOS, EOS, PAD, PIXEL_MEAN, PIXEL_STD, VOCAB
from .evaluate import median_ms
from .model import Generation, NextNum

log = logging.getLogger(__name__)
GRAPH_DIR = ".onnx"  # inside a checkpoint folder: its graphs, one per graph_key
_EXPORTING = threading.Lock()


class GreedyLoop(nn.Module):
    """NextNum.generate's decisions, unrolled with additive masks so the graph has no branches."""

    def __init__(self, model: NextNum) -> None:
        super().__init__()
        self.model = model  # run it in eval mode (BatchNorm's running statistics); export() sees to that
        S = model.cfg.max_digits + 1
        mask = torch.zeros(S, VOCAB)
        mask[:, [BOS, PAD]] = float("-inf")
        mask[0, EOS] = float("-inf")
        mask[S - 1, :EOS] = float("-inf")
        self.register_buffer("mask", mask)  # (S, VOCAB)

    def forward(self, img: Tensor) -> tuple[Tensor, Tensor]:
        ctx, _ = self.model.encoder(img)
        B = img.shape[0]
        tokens = torch.full((B, 1), BOS, dtype=torch.long, device=img.device) + 0 * img[:, 0, 0, :1].long()
        done = torch.zeros(B, 1, dtype=torch.bool, device=img.device)
        cache: list[dict] = [{} for _ in self.model.blocks]  # as in generate: ctx's keys/values once
        probs, out, nxt = [], [], tokens
        for step in range(self.mask.shape[0]):
            logits, _ = self.model.decode(nxt, ctx, start=step, cache=cache)  # (B, 1, VOCAB)
            p = self.model.step_probs(logits[:, -1] + self.mask[step])  # (B, VOCAB)
            nxt = torch.where(done, torch.full_like(done, PAD, dtype=torch.long), p.argmax(-1, keepdim=True))
            done = done | (nxt == EOS)
            out.append(nxt)
            probs.append(p)
        return torch.cat(out, 1), torch.stack(probs, 1)


def export(model: NextNum, out: str | Path | io.BytesIO, opset: int = 18) -> Path | io.BytesIO:
    """Write the greedy loop as ONNX to a file path (returned as a Path) or into a BytesIO.

    Uses torch.onnx's torch.export-based exporter (dynamo=True): it traces the Python loop, unrolled
    over the max_digits + 1 steps, with the batch size left dynamic."""
    if not isinstance(out, io.BytesIO):
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training  # the graph is of the model in eval mode (BatchNorm's running statistics)
    loop = GreedyLoop(model).eval()
    dummy = torch.zeros(2, 1, model.cfg.img_h, model.cfg.img_w)
    try:
        program = torch.onnx.export(loop, (dummy,), input_names=["canvas"], output_names=["tokens", "probs"],
                                    dynamic_shapes={"img": {0: torch.export.Dim("batch")}}, opset_version=opset,
                                    dynamo=True, verbose=False)
    finally:
        model.train(was_training)
    if isinstance(out, io.BytesIO):
        out.write(program.model_proto.SerializeToString())
    else:
        program.save(str(out))
    return out


_GRAPH_CODE = (GreedyLoop, export)  # what builds the graph (held here: tests may swap the module's names)


@lru_cache(maxsize=1)
def _code_digest() -> str:
    """The code the graph is built from (the loop, the export call, the model's module) as syntax trees, so
    comments and layout do not count; read once per process, so every key a process makes agrees."""
    h = hashlib.sha256()
    model_module = Path(sys.modules[NextNum.__module__].__file__).read_text()
    for code in [inspect.getsource(f) for f in _GRAPH_CODE] + [model_module]:
        h.update(ast.dump(ast.parse(textwrap.dedent(code))).encode())
    return h.hexdigest()


def user_cache() -> Path:
    """Where graphs go when the checkpoint's folder cannot be written to: $NEXTNUM_CACHE, else ~/.cache/nextnum."""
    return Path(os.environ.get("NEXTNUM_CACHE") or Path.home() / ".cache" / "nextnum")


def graph_key(model: NextNum) -> str:
    """A digest of everything the exported graph depends on: the weights (buffers too), the model config,
    the token ids and pixel statistics baked into it, the code that builds it (the model's module, the
    loop and the export call, as syntax trees: comments and layout do not count) and the exporter's
    versions (without a build's local tag: a CPU build of torch exports what a CUDA build does)."""
    versions = [torch.__version__.split("+")[0]]
    try:
        versions.append(metadata.version("onnxscript"))
    except metadata.PackageNotFoundError:  # no exporter: only a graph already made can be used
        versions.append(None)
    key = hashlib.sha256(json.dumps([asdict(model.cfg), BOS, EOS, PAD, VOCAB, PIXEL_MEAN, PIXEL_STD,
                                     versions, _code_digest()]).encode())
    for name, t in model.state_dict().items():
        key.update(name.encode())
        key.update(t.detach().cpu().contiguous().numpy().tobytes())
    return key.hexdigest()[:24]


def graph_places(model: NextNum, beside: str | Path | None = None, folder: str | Path | None = None) -> list[Path]:
    """Where model's graph is kept, in the order looked at: beside the checkpoint it was loaded from
    (<checkpoint>/.onnx/), then `folder` (default user_cache()). The file is named by graph_key, so a
    changed model or exporter never finds an old graph."""
    name = f"greedy-{graph_key(model)}.onnx"
    return ([Path(beside) / GRAPH_DIR / name] if beside is not None else []) + [Path(folder or user_cache()) / name]


def cached_graph(places: list[Path]) -> bytes | None:
    """The first graph found at places, or None."""
    for path in places:
        try:
            return path.read_bytes()
        except OSError:
            continue
    return None


def cached_export(model: NextNum, folder: str | Path | None = None, beside: str | Path | None = None) -> bytes:
    """The ONNX graph of `model`'s greedy loop, exported once per graph_key and kept at graph_places
    (beside the checkpoint when its folder can be written to, else in `folder`): the exporter spends
    tens of seconds of CPU on this graph, the file takes milliseconds to read."""
    places = graph_places(model, beside, folder)
    with _EXPORTING:  # one export at a time per process: a second caller waits, then finds the first's file
        data = cached_graph(places)
        if data is not None:
            return data
        data = export(model, io.BytesIO()).getvalue()
    for path in places:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, data)  # another process reading it meanwhile gets the whole file or none
            return data
        except OSError as e:  # a read-only checkpoint (e.g. installed for another user): the next place
            log.info("could not keep the ONNX graph at %s (%s)", path, e)
    log.warning("could not keep the ONNX graph anywhere (%s): it will be exported again next time",
                ", ".join(str(p.parent) for p in places))
    return data


def _lowest_priority() -> None:
    """Give the calling thread the lowest CPU priority (Linux: threads have their own nice value)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):  # not Linux: the export runs at the process's priority
        pass


def has_onnxruntime() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


def start_reader(model: NextNum, beside: str | Path | None, ready: Callable[[OnnxReader | None], None]) -> None:
    """Export model's graph in a background thread at the lowest priority (the caller reads with PyTorch
    meanwhile), then hand ready() an OnnxReader for it; ready(None), with one log line, when the exporter
    or onnxruntime fails."""
    model = copy.deepcopy(model).cpu().eval()  # the export must not touch the live model's state

    def work() -> None:
        _lowest_priority()
        try:
            ready(load_reader(cached_export(model, beside=beside)))
        except Exception as e:  # any failure of the exporter or onnxruntime: PyTorch keeps reading
            log.warning("ONNX export failed, readings stay in PyTorch: %s: %s", type(e).__name__, e)
            ready(None)
    # not a daemon: a process that ends meanwhile waits for the graph (kept for the next one), rather than
    # stopping the exporter halfway through its C++ code
    threading.Thread(target=work, name="nextnum-onnx-export").start()


def load_reader(data: bytes) -> OnnxReader | None:
    """An OnnxReader for a graph, or None (with one log line) when onnxruntime cannot run it."""
    try:
        return OnnxReader(graph=data)
    except Exception as e:  # a graph onnxruntime refuses (e.g. an older runtime): PyTorch reads instead
        log.warning("onnxruntime could not load the graph, readings stay in PyTorch: %s: %s", type(e).__name__, e)
        return None


class OnnxReader:
    """NextNum.generate's tokens and probabilities from onnxruntime: no attention weights, ~4x faster.

    The graph comes from cached_export (exported on the first load of these weights). run() is thread-safe.
    """

    def __init__(self, model: NextNum | None = None, threads: int = 1, graph: bytes | None = None,
                 beside: str | Path | None = None) -> None:
        """From a graph, or from model (its cached graph, exported now if there is none; beside: the
        checkpoint folder it came from, where the graph is looked for and kept first)."""
        import onnxruntime as ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        if graph is None:
            graph = cached_export(model, beside=beside)
        self.session = ort.InferenceSession(graph, opts, providers=["CPUExecutionProvider"])

    def __call__(self, img: Tensor) -> Generation:
        """img (B, 1, H, W) -> Generation with tokens (B, S) (PAD after EOS) and probs (B, S, VOCAB)."""
        tokens, probs = self.session.run(None, {"canvas": img.detach().cpu().numpy().astype(np.float32)})
        return Generation(tokens=torch.from_numpy(tokens), probs=torch.from_numpy(probs), cross_attn=None,
                          enc_attn=None)


def compare(model: NextNum, onnx_path: str | Path, canvases: Tensor) -> dict[str, float]:
    """Run PyTorch and onnxruntime on the same canvases: token agreement, max |prob diff|, latency."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    with torch.inference_mode():
        t_tok, t_prob = GreedyLoop(model)(canvases)
    o_tok, o_prob = sess.run(None, {"canvas": canvases.numpy()})
    one = canvases[:1]
    torch_ms = median_ms(lambda: model.generate(one))
    ort_ms = median_ms(lambda: sess.run(None, {"canvas": one.numpy()}))
    return {"tokens_equal": float((t_tok.numpy() == o_tok).mean()),
            "max_prob_diff": float(np.abs(t_prob.numpy() - o_prob).max()),
            "torch_generate_ms_p50": torch_ms, "onnxruntime_ms_p50": ort_ms}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nextnum.export", description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the shipped model)")
    ap.add_argument("--out", default="nextnum.onnx")
    ap.add_argument("--cache", action="store_true",
                    help="instead of --out: keep the graph where Predictor.load looks for it (<checkpoint>/.onnx/, "
                         "else the user cache), so the first reading of these weights is fast too")
    ap.add_argument("--check", action="store_true", help="compare with PyTorch on t10k canvases (needs --data)")
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--samples", type=int, default=200)
    args = ap.parse_args(argv)
    from .checkpoint import SHIPPED, CheckpointError, load
    try:
        model, cfg, _ = load(args.checkpoint)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.cache:
        places = graph_places(model, args.checkpoint or SHIPPED)
        cached_export(model, beside=args.checkpoint or SHIPPED)
        path = next((p for p in places if p.is_file()), None)
        if path is None:
            print("error: the graph could not be kept (see the log)", file=sys.stderr)
            return 1
    else:
        path = export(model, args.out)
    res = {"onnx": str(path), "bytes": path.stat().st_size}
    if args.check:
        from .data import fixed_batches, load_mnist
        bank = load_mnist(args.data, train=False)
        b = fixed_batches(bank, args.samples, cfg.data, (cfg.model.img_h, cfg.model.img_w), seed=0,
                          batch=args.samples)[0]
        res.update(compare(model, path, b.images))
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
