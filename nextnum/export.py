"""Export a checkpoint to ONNX: the encoder and the whole greedy loop, with its attention, in one graph.

    python -m nextnum.export --out nextnum.onnx [--checkpoint PATH] [--check]
    python -m nextnum.export --cache [--checkpoint PATH]    # where Predictor.load() finds it

The graph is NextNum.greedy itself, traced: it maps a canvas batch (B, 1, H, W) with ink = 1 to tokens
(B, max_digits + 1), the softmax at each step (B, max_digits + 1, VOCAB), each step's cross-attention
(B, max_digits + 1, dec_layers, heads, N) and the encoder's self-attention (B, enc_layers, heads, N, N),
exactly as NextNum.generate(return_attn=True) decides them: at least one digit, at most max_digits, PAD
after EOS. It always runs every step (no early exit). Reading it needs no PyTorch (nextnum/runtime.py).
"""
from __future__ import annotations

import argparse
import copy
import io
import json
import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from . import runtime as R
from .atomic import write_atomic
from .timing import median_ms
from .model import NextNum
from .runtime import GRAPH_DIR, OUTPUTS, OnnxReader, cached_graph, has_onnxruntime, load_reader, user_cache  # noqa: F401

log = logging.getLogger(__name__)
_EXPORTING = threading.Lock()


class GreedyLoop(nn.Module):
    """NextNum.greedy with its attention, every step run: the module the graph is traced from."""

    def __init__(self, model: NextNum) -> None:
        super().__init__()
        self.model = model  # run it in eval mode (BatchNorm's running statistics); export() sees to that

    def forward(self, img: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        g = self.model.greedy(img, return_attn=True, stop_early=False)
        return g.tokens, g.probs, g.cross_attn, g.enc_attn


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
        program = torch.onnx.export(loop, (dummy,), input_names=["canvas"], output_names=list(OUTPUTS),
                                    dynamic_shapes={"img": {0: torch.export.Dim("batch")}}, opset_version=opset,
                                    dynamo=True, verbose=False)
    finally:
        model.train(was_training)
    if isinstance(out, io.BytesIO):
        out.write(program.model_proto.SerializeToString())
    else:
        program.save(str(out))
    return out


def state_arrays(model: NextNum) -> dict[str, np.ndarray]:
    """The model's state_dict as numpy: what a checkpoint's model.safetensors holds."""
    return {k: v.detach().cpu().contiguous().numpy() for k, v in model.state_dict().items()}


def graph_key(model: NextNum) -> str:
    """runtime.graph_key of a model in memory."""
    return R.graph_key(model.cfg, state_arrays(model))


def graph_places(model: NextNum, beside: str | Path | None = None, folder: str | Path | None = None) -> list[Path]:
    """runtime.graph_places of a model in memory."""
    return R.graph_places(graph_key(model), beside, folder)


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


def compare(model: NextNum, onnx_path: str | Path, canvases: Tensor) -> dict[str, float]:
    """Run PyTorch and onnxruntime on the same canvases: token agreement, max |diff| of the probabilities and
    of the attention, latency of one reading with its attention."""
    reader = OnnxReader(Path(onnx_path).read_bytes())
    with torch.inference_mode():
        want = [t.numpy() for t in GreedyLoop(model.eval())(canvases)]
    got = reader(canvases.numpy())
    one = canvases[:1]
    torch_ms = median_ms(lambda: model.generate(one, return_attn=True))
    ort_ms = median_ms(lambda: reader(one.numpy()))
    return {"tokens_equal": float((want[0] == got.tokens).mean()),
            "max_prob_diff": float(np.abs(want[1] - got.probs).max()),
            "max_cross_attn_diff": float(np.abs(want[2] - got.cross_attn).max()),
            "max_enc_attn_diff": float(np.abs(want[3] - got.enc_attn).max()),
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
