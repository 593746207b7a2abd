"""Where training runs: the best device here, or this process's place in a torchrun launch."""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def pick_device(name: str | None = None) -> torch.device:
    if name:
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def dist_setup(device: str | None) -> tuple[int, int, torch.device]:
    """(rank, world size, device). Under torchrun (WORLD_SIZE > 1) joins the process group:
    NCCL with one GPU per process when CUDA is there, gloo on CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, pick_device(device)
    cuda = torch.cuda.is_available() and device in (None, "cuda")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(dev)
    return dist.get_rank(), world, dev


def agreed(want_stop: bool, go_on: bool, world: int) -> tuple[bool, bool]:
    """(stop, go on) as any process says: every process must take the same turn, or one would wait
    forever for the others."""
    if world > 1:
        flags = torch.tensor([float(want_stop), float(go_on)])
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        want_stop, go_on = bool(flags[0]), bool(flags[1])
    return want_stop, go_on
