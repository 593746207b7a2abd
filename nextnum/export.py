"""Export a checkpoint to ONNX: the encoder and the whole greedy loop in one graph, dynamic batch.

    python -m nextnum.export --out nextnum.onnx [--checkpoint PATH] [--check]

The graph maps a canvas batch (B, 1, H, W) with ink = 1 to tokens (B, max_digits + 1) and the
softmax at each step (B, max_digits + 1, VOCAB), exactly as NextNum.generate decides them: at least
one digit, at most max_digits, PAD after EOS. It always runs every step (no early exit).
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import os
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from .checkpoint import write_atomic
from .config import BOS, EOS, PAD, VOCAB
from .evaluate import median_ms
from .model import Generation, NextNum

log = logging.getLogger(__name__)


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
            p = (logits[:, -1] + self.mask[step]).softmax(-1)  # (B, VOCAB)
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


def cached_export(model: NextNum, folder: str | Path | None = None) -> bytes:
    """The ONNX graph of `model`'s greedy loop, exported once per weights and toolchain and kept in
    `folder` (default $NEXTNUM_CACHE, else ~/.cache/nextnum): the exporter spends tens of seconds of CPU
    on this graph, the file takes milliseconds to read."""
    import onnxscript
    folder = Path(folder or os.environ.get("NEXTNUM_CACHE") or Path.home() / ".cache" / "nextnum")
    key = hashlib.sha256(json.dumps([asdict(model.cfg), torch.__version__, onnxscript.__version__]).encode())
    for code in (__file__, sys.modules[NextNum.__module__].__file__):  # the graph is this code's, too
        key.update(Path(code).read_bytes())
    for name, t in model.state_dict().items():
        key.update(name.encode())
        key.update(t.detach().cpu().contiguous().numpy().tobytes())
    path = folder / f"greedy-{key.hexdigest()[:24]}.onnx"
    if path.is_file():
        return path.read_bytes()
    data = export(model, io.BytesIO()).getvalue()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)  # another process reading it meanwhile gets the whole file or none
    except OSError as e:  # a read-only home: export again next time
        log.warning("could not keep the ONNX export in %s (%s)", folder, e)
    return data


class OnnxReader:
    """NextNum.generate's tokens and probabilities from onnxruntime: no attention weights, ~4x faster.

    The graph comes from cached_export (exported on the first load of these weights). run() is thread-safe.
    """

    def __init__(self, model: NextNum, threads: int = 1) -> None:
        import onnxruntime as ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(cached_export(model), opts, providers=["CPUExecutionProvider"])

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
    ap.add_argument("--check", action="store_true", help="compare with PyTorch on t10k canvases (needs --data)")
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--samples", type=int, default=200)
    args = ap.parse_args(argv)
    from .checkpoint import CheckpointError, load
    try:
        model, cfg, _ = load(args.checkpoint)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
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
