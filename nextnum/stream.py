"""The training batches of one process: pages drawn and read through preprocess (data.render), batch i from a
generator seeded by (seed, rank, i), so that the stream is the same with any number of DataLoader workers and a
resumed run picks it up where it stopped."""
from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from .config import Config
from .data import Batch, DigitBank, render


def batch_seed(seed: int, rank: int, i: int) -> int:
    return (seed * 1_000_003 + rank * 10_007 + i) % 2 ** 63


class Batches(IterableDataset):
    """Batches start, start + 1, ... of a rank's stream. max_len is shared memory: the training loop sets it
    (the curriculum) and workers read it when they draw, a few batches ahead."""

    def __init__(self, bank: DigitBank, cfg: Config, n: int, rank: int = 0, start: int = 0) -> None:
        self.bank, self.cfg, self.n, self.rank, self.start = bank, cfg, n, rank, start
        self.max_len = mp.Value("i", cfg.data.max_len, lock=False)

    def draw(self, i: int) -> Batch:
        """Batch i of this rank's stream."""
        m = self.cfg.model
        gen = torch.Generator().manual_seed(batch_seed(self.cfg.train.seed, self.rank, i))
        return render(self.bank, self.n, self.cfg.data, (m.img_h, m.img_w), gen, max_len=self.max_len.value,
                      match_strokes=m.match_strokes)

    def __iter__(self) -> Iterator[Batch]:
        info = get_worker_info()
        w, k = (0, 1) if info is None else (info.id, info.num_workers)
        i = self.start + w  # DataLoader takes from its workers in turn: worker w makes every k-th batch
        while True:
            yield self.draw(i)
            i += k


def batches(ds: Batches, workers: int) -> Iterator[Batch]:
    """The stream, drawn in `workers` DataLoader worker processes (0: in this process)."""
    if workers <= 0:
        return iter(ds)
    return iter(DataLoader(ds, batch_size=None, num_workers=workers, prefetch_factor=2, persistent_workers=False))
