"""Shared test setup."""
import torch

# The tensors here are tiny: one thread is faster than several, and on a busy machine (CI runners,
# a training run in the background) several threads spin-waiting on each other made the suite ~8x slower.
torch.set_num_threads(1)
