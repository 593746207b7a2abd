"""Sweep variants and report files; attention statistics are well-formed shares."""
import csv
from pathlib import Path

import pytest
import torch

from nextnum.analyze import accuracy_by_layout, attention_stats, error_figures, figures, layout
from nextnum.config import Config
from nextnum.data import Batch, fixed_batches, load_fixture
from nextnum.model import NextNum
from nextnum.sweep import variants, write

ROOT = Path(__file__).resolve().parent.parent


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


def test_attention_stats_are_shares(tmp_path):
    cfg = Config.load(ROOT / "configs" / "smoke.json")
    torch.manual_seed(0)
    model = NextNum(cfg.model).eval()
    batches = fixed_batches(load_fixture(), 24, cfg.data, (cfg.model.img_h, cfg.model.img_w), seed=0, batch=12)
    s = attention_stats(model, batches)
    L, H = cfg.model.dec_layers, cfg.model.heads
    assert len(s["mass_in_box"]) == L + 1 and len(s["mass_in_box"][0]) == H + 1
    for key in ("mass_in_box", "top_token_in_box"):
        assert all(0.0 <= v <= 1.0 for row in s[key] for v in row)
    assert 0.0 <= s["left_to_right"] <= 1.0 and s["samples"] == 24 and s["steps"] > 0
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
