"""Choosing the snapshot to ship (bench/product_checks.py): every bar cleared, then the best validation, the
later step on a tie; a run's snapshots in step order; more validation pages that are not the run's own."""
from __future__ import annotations

import sys
from pathlib import Path

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import product_checks as pc  # noqa: E402

BARS = {"grid_pass": 0.95, "photo": 0.92}


def row(step: int, val: float, **scores: float) -> dict:
    return {"checkpoint": f"snap{step}", "step": step, "val": val, "grid_pass": 1.0, "photo": 0.95, **scores}


def test_choose_takes_the_best_validation_among_the_candidates_that_clear_every_bar():
    rows = [row(100, 0.93), row(200, 0.95, photo=0.91), row(300, 0.94)]
    assert pc.choose(rows, BARS)["step"] == 300  # 200 validates best but misses the photo bar


def test_choose_takes_the_later_step_on_a_tie_and_skips_bars_a_candidate_was_not_scored_on():
    assert pc.choose([row(300, 0.94), row(100, 0.94)], BARS)["step"] == 300
    unscored = row(400, 0.96)
    del unscored["photo"]
    assert pc.choose([row(300, 0.94), unscored], BARS)["step"] == 400


def test_choose_returns_none_when_no_candidate_clears_every_bar():
    assert pc.choose([row(100, 0.99, grid_pass=0.9), row(200, 0.99, photo=0.5)], BARS) is None


def test_a_runs_snapshots_come_in_step_order_then_its_best_then_the_named_folders(tmp_path: Path):
    run = tmp_path / "run"
    for step in ("010000", "002500", "041650"):
        (run / "snapshots" / step).mkdir(parents=True)
    (run / "model.safetensors").write_bytes(b"")
    found = pc.candidates(run, ["elsewhere"])
    assert [p.name for p in found] == ["002500", "010000", "041650", "run", "elsewhere"]
    assert pc.candidates(None, []) == []


def test_the_extra_validation_pages_are_not_the_pages_a_run_validates_on():
    from nextnum.config import Config
    checked = []
    for cfg in sorted((ROOT / "configs").glob("*.json")):
        if cfg.name in ("sweep.json", "fonts.json"):  # a sweep's axes, the font list: no training config
            continue
        assert pc.VAL_SEED != Config.load(cfg).train.seed + 1, cfg.name  # nextnum/train.py validates on seed + 1
        checked.append(cfg.name)
    assert "reading.json" in checked


def test_with_val_configs_every_candidate_is_validated_on_those_pages_and_chosen_on_their_mean(monkeypatch):
    """Candidates trained on different pages are compared on the same pages: each named config's data
    section, not the candidate's own."""
    from nextnum.config import Config
    seen = []

    def fake(pred, samples, data_cfg=None):
        seen.append(data_cfg)
        return 0.9 if data_cfg is None else 0.8 + 0.1 * data_cfg.blur
    monkeypatch.setattr(pc, "more_validation", fake)
    configs = [ROOT / "configs" / "clean.json", ROOT / "configs" / "camera.json"]
    got = pc.validation(object(), 100, configs)
    assert seen == [Config.load(c).data for c in configs] and seen[1].blur > 0
    assert got["val_clean"] == 0.8 and abs(got["val_camera"] - (0.8 + 0.1 * seen[1].blur)) < 1e-9
    assert abs(got["val"] - (got["val_clean"] + got["val_camera"]) / 2) < 1e-9
    seen.clear()
    assert pc.validation(object(), 100) == {"val": 0.9} and seen == [None]  # without: its own pages
