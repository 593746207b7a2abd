"""Shared test setup."""
from pathlib import Path

import pytest
import torch

# The tensors here are tiny: one thread is faster than several, and on a busy machine (CI runners,
# a training run in the background) several threads spin-waiting on each other made the suite ~8x slower.
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def predictor():
    """A Predictor over a randomly initialised configs/default.json model (seed 0): fast, needs no checkpoint.
    A test file may define its own `predictor` instead."""
    from nextnum import NextNum, Predictor
    from nextnum.config import Config
    cfg = Config.load(Path(__file__).resolve().parent.parent / "configs" / "default.json")
    torch.manual_seed(0)
    return Predictor(NextNum(cfg.model), cfg)
