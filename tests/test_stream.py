"""The training stream: batch i is the same whether drawn here or in DataLoader workers, and a resumed run
continues the stream where it stopped."""
import torch

from conftest import SMOKE
from nextnum.config import Config
from nextnum.data import load_fixture
from nextnum.stream import Batches, batches


def _cfg() -> Config:
    return Config.load(SMOKE)


def test_workers_draw_the_same_batches_in_the_same_order():
    bank, cfg = load_fixture(), _cfg()
    here = batches(Batches(bank, cfg, 8), workers=0)
    there = batches(Batches(bank, cfg, 8), workers=2)
    for _ in range(4):
        a, b = next(here), next(there)
        assert torch.equal(a.images, b.images) and torch.equal(a.targets, b.targets)


def test_a_resumed_stream_starts_at_its_step_and_ranks_differ():
    bank, cfg = load_fixture(), _cfg()
    full = batches(Batches(bank, cfg, 8), workers=0)
    [next(full) for _ in range(3)]
    assert torch.equal(next(full).images, next(batches(Batches(bank, cfg, 8, start=3), workers=0)).images)
    assert not torch.equal(Batches(bank, cfg, 8, rank=0).draw(0).images, Batches(bank, cfg, 8, rank=1).draw(0).images)


def test_max_len_set_by_the_loop_reaches_the_batches():
    bank, cfg = load_fixture(), _cfg()
    ds = Batches(bank, cfg, 16)
    ds.max_len.value = 1
    assert ds.draw(0).lengths.max() == 1
