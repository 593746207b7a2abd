"""The signals training is steered by: the learning-rate and curriculum schedules, which encoder tokens lie
on which digit (token_masks) and the digit under each token (token_labels)."""
import math

import pytest
import torch

from nextnum.config import Config, ModelConfig, TrainConfig
from nextnum.data import Batch, token_labels, token_masks
from nextnum.train import lr_at, max_len_at
from conftest import SMOKE

TC = TrainConfig(lr=1e-3, min_lr_frac=0.1, warmup=10)


def test_lr_warms_up_linearly_from_the_first_step():
    assert [lr_at(0.0, s, TC) for s in (0, 4, 9)] == pytest.approx([1e-4, 5e-4, 1e-3])


def test_lr_follows_a_cosine_from_lr_to_its_floor_and_stays_there():
    assert lr_at(0.0, 10, TC) == pytest.approx(1e-3)
    assert lr_at(0.5, 10, TC) == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5))
    assert lr_at(1.0, 10, TC) == pytest.approx(1e-4)
    assert lr_at(1.7, 10, TC) == pytest.approx(1e-4)  # progress past the end: the floor, not a rise
    lrs = [lr_at(p / 20, 10, TC) for p in range(21)]
    assert all(a > b for a, b in zip(lrs, lrs[1:]))  # falls all the way


def test_curriculum_grows_the_longest_number_from_two_digits_to_max_len():
    cfg = Config()
    cfg.data.min_len, cfg.data.max_len, cfg.train.curriculum = 1, 5, 0.5
    lens = [max_len_at(p / 100, cfg) for p in range(101)]
    assert lens[0] == 2 and lens[-1] == 5 and max(lens) == 5
    assert all(a <= b for a, b in zip(lens, lens[1:]))  # never shrinks
    assert set(lens) == {2, 3, 4, 5} and lens[50] == 5  # every length on the way, all of them from 0.5 on
    ramp = [lens[:50].count(n) for n in (2, 3, 4, 5)]
    assert all(11 <= c <= 14 for c in ramp), ramp  # each length the same share of the ramp
    cfg.train.curriculum = 0
    assert {max_len_at(p / 10, cfg) for p in range(11)} == {5}  # off: the longest from the start


def one_batch(boxes: list[list[tuple[float, float, float, float]]], digits: list[list[int]], K: int = 3) -> Batch:
    B = len(boxes)
    b = torch.zeros(B, K, 4)
    tgt = torch.full((B, K + 1), 12)
    for i, (bx, ds) in enumerate(zip(boxes, digits)):
        b[i, :len(bx)] = torch.tensor(bx)
        tgt[i, :len(ds)] = torch.tensor(ds)
    return Batch(torch.zeros(B, 1, 84, 168), tgt, torch.tensor([len(d) for d in digits]), b)


def test_token_masks_mark_the_tokens_whose_centre_is_on_each_digit():
    mc = ModelConfig(img_h=84, img_w=168)
    ys, xs = mc.token_centres()
    gh, gw, m = len(ys), len(xs), mc.cell / 2
    # digit 0 spans the left quarter, digit 1 a thin '1' in the middle; the third box is past the length
    batch = one_batch([[(10, 70, 4, 40), (10, 70, 83, 85), (0, 84, 0, 168)]], [[3, 1]])
    masks = token_masks(batch, mc).view(1, 3, gh, gw)
    for k, (y0, y1, x0, x1) in enumerate([(10, 70, 4, 40), (10, 70, 83, 85)]):
        want = torch.tensor([[y0 - m <= y <= y1 + m and x0 - m <= x <= x1 + m for x in xs] for y in ys]).float()
        assert torch.equal(masks[0, k], want), k
    assert masks[0, 1].sum() >= 1  # even the thin one covers a column of tokens
    assert masks[0, 2].sum() == 0  # no digit there: no tokens


def test_token_labels_name_the_digit_under_each_token_and_10_elsewhere():
    inside = torch.tensor([[[1, 1, 0, 0, 0],
                            [0, 1, 1, 0, 0]]], dtype=torch.bool)  # digit boxes overlap on token 1
    tgt = torch.tensor([[7, 4, 11]])
    assert token_labels(inside, tgt).tolist() == [[7, 7, 4, 10, 10]]  # the leftmost digit wins an overlap


def test_warmup_then_decay_meet_without_a_jump():
    assert lr_at(0.0, TC.warmup - 1, TC) == pytest.approx(lr_at(0.0, TC.warmup, TC))
    assert not math.isnan(lr_at(0.0, 0, TrainConfig(warmup=1)))


def test_training_steps_at_the_schedules_lr(tmp_path):
    """The optimizer's lr at every step is lr_at of that step's progress (torch's LambdaLR applies it)."""

    from nextnum.data import load_fixture
    from nextnum.train import train
    cfg = Config.load(SMOKE)
    cfg.train.steps, cfg.train.warmup, cfg.train.eval_every = 30, 5, 1000
    seen = []
    train(cfg, tmp_path / "run", bank=load_fixture(), resume=False, on_progress=seen.append)
    assert seen, "no progress reported"
    for r in seen:  # reported after its step: the lr that step used
        n = r["step"] - 1
        assert r["lr"] == pytest.approx(lr_at(n / cfg.train.steps, n, cfg.train)), r["step"]
