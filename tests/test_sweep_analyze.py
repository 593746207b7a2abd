"""Sweep variants and report files; attention statistics and accuracy by layout on hand-made cases."""
import csv

import pytest
import torch

from nextnum.analyze import accuracy_by_layout, attention_stats, error_figures, figures, layout
from nextnum.config import EOS, VOCAB, Config, ModelConfig
from nextnum.data import Batch
from nextnum.model import Generation
from nextnum.sweep import variants, write
from conftest import ROOT



def test_variants_change_one_factor_at_a_time():
    base = Config.load(ROOT / "configs" / "default.json")
    vs = variants(base, {"model.heads": [1, 4], "model.patch,model.stride": [[3, 2]]})
    names = [n for n, _ in vs]
    assert names == ["base", "heads=1", "patch=3,stride=2"]  # heads=4 is the base itself
    _, c = vs[2]
    assert (c.model.patch, c.model.stride, c.model.heads) == (3, 2, base.model.heads)
    with pytest.raises(ValueError):
        variants(base, {"model.heads": [3]})  # 40 is not divisible by 3


def test_write_reports(tmp_path):
    rows = [{"variant": "base", "parameters": 10, "tokens": 98, "steps": 5, "minutes": 1,
             "sequence_accuracy": 0.5, "digit_accuracy": 0.7, "latency_ms": 2.0},
            {"variant": "heads=1", "parameters": 9, "tokens": 98, "steps": 6, "minutes": 1,
             "sequence_accuracy": 0.4, "digit_accuracy": 0.6, "latency_ms": 1.5}]
    write(rows, tmp_path)
    with open(tmp_path / "results.csv") as f:
        assert [r["variant"] for r in csv.DictReader(f)] == ["base", "heads=1"]
    assert "| heads=1 |" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "results.png").stat().st_size > 1000


class MapModel:
    """Stands in for NextNum in attention_stats: reads the given tokens and returns hand-made cross-attention."""

    def __init__(self, cfg: ModelConfig, tokens: torch.Tensor, cross: torch.Tensor) -> None:
        self.cfg, self.tokens, self.cross = cfg, tokens, cross

    def generate(self, images: torch.Tensor, return_attn: bool = False) -> Generation:
        B, S = self.tokens.shape
        return Generation(self.tokens, torch.zeros(B, S, VOCAB), self.cross, None)


def test_attention_stats_on_hand_made_maps(tmp_path):
    # a 12x48 canvas without a stem, 6x6 patches: 2 rows x 8 columns of tokens, column c centred at x = 6c + 3
    cfg = ModelConfig(img_h=12, img_w=48, patch=6, stride=6, dim=8, heads=2, enc_layers=1, dec_layers=2)
    assert cfg.grid == (2, 8)
    tok = lambda r, c: 8 * r + c  # noqa: E731
    # both canvases: digit 0 in x 0..10 (token columns 0-1), digit 1 in x 25..34 (columns 4-5), full height
    boxes = torch.tensor([[[0, 12, 0, 10], [0, 12, 25, 34]]] * 2, dtype=torch.float)
    b = Batch(images=torch.zeros(2, 1, 12, 48), targets=torch.tensor([[1, 2, EOS], [3, 5, EOS]]),
              lengths=torch.tensor([2, 2]), boxes=boxes)
    cross = torch.zeros(2, 3, 2, 2, 16)  # (canvas, step, layer, head, token); both heads alike
    # canvas 0, digit 0: layer 0 puts 0.8 in the box, layer 1 only 0.4 (and its top token outside)
    cross[0, 0, 0, :, tok(0, 0)], cross[0, 0, 0, :, tok(0, 7)] = 0.8, 0.2
    cross[0, 0, 1, :, tok(1, 1)], cross[0, 0, 1, :, tok(1, 6)] = 0.4, 0.6
    cross[0, 1, 0, :, tok(0, 4)] = cross[0, 1, 1, :, tok(1, 5)] = 1.0  # digit 1: all in its box
    # canvas 1 looks right to left: each step at the other digit
    cross[1, 0, :, :, tok(0, 5)] = cross[1, 1, :, :, tok(0, 0)] = 1.0
    reads = torch.tensor([[1, 2, EOS], [3, 4, EOS]])  # "12" right, "34" for "35" wrong
    s = attention_stats(MapModel(cfg, reads, cross), [b])
    # rows: layer 0, layer 1, their mean; columns: head 0, head 1, their mean; 4 steps read a digit
    assert s["steps"] == 4 and s["samples"] == 2 and s["sequence_accuracy"] == 0.5
    for h in range(3):
        assert [s["mass_in_box"][r][h] for r in range(3)] == pytest.approx([(0.8 + 1) / 4, (0.4 + 1) / 4, 0.4])
        assert [s["top_token_in_box"][r][h] for r in range(3)] == pytest.approx([0.5, 0.25, 0.5])
    assert s["mass_in_box_mean"] == pytest.approx(0.4) and s["top_token_in_box_mean"] == pytest.approx(0.5)
    assert s["left_to_right"] == 0.5  # canvas 0's centre moves right, canvas 1's left
    # centres of the averaged maps: 0.4*3 + 0.1*45 + 0.2*9 + 0.3*39 = 19.2, then 30, 33, 3; digits at 5 and 29.5
    assert s["centre_error_px"] == pytest.approx((14.2 + 0.5 + 28 + 26.5) / 4)
    assert all(p.stat().st_size > 1000 for p in figures(s, tmp_path))


def test_accuracy_by_layout_bins_gaps_and_heights(tmp_path):
    boxes = torch.zeros(3, 5, 4)
    boxes[0, :2] = torch.tensor([[0, 20, 0, 10], [0, 20, 5, 15]])  # overlap by a quarter of their height
    boxes[1, :2] = torch.tensor([[0, 26, 0, 10], [0, 26, 36, 46]])  # a whole height apart
    boxes[2, 0] = torch.tensor([10, 52, 0, 30])  # one digit, 42 px high
    targets = torch.tensor([[1, 2, 10, 12, 12, 12], [3, 4, 10, 12, 12, 12], [5, 10, 12, 12, 12, 12]])
    b = Batch(images=torch.zeros(3, 1, 84, 168), targets=targets, lengths=torch.tensor([2, 2, 1]), boxes=boxes)
    gaps, heights = layout(b)
    assert gaps[2] is None and gaps[:2] == pytest.approx([-0.25, 1.0])
    assert heights == pytest.approx([20, 26, 42])
    acc = accuracy_by_layout([b], ["17", "34", "5"])
    assert acc["by_gap"]["overlapping (< -0.1)"] == [0.0, 1] and acc["by_gap"]["apart (>= 0.3)"] == [1.0, 1]
    assert acc["by_gap"]["touching (0..0.1)"] == [None, 0]  # single digits have no gap
    assert acc["by_height"]["< 25 px"] == [0.0, 1] and acc["by_height"]["25-30 px"] == [1.0, 1]
    assert acc["by_height"]["40-50 px"] == [1.0, 1]
    with pytest.raises(ValueError, match="2 predictions for 3 canvases"):
        accuracy_by_layout([b], ["12", "34"])
    assert all(p.stat().st_size > 1000 for p in error_figures(acc, [b], ["17", "34", "5"], tmp_path))
