"""A run from a trained model keeps weights that read about as well as its start, whatever the options; its log loses no line."""
import threading
from pathlib import Path

import pytest
import torch

from nextnum import checkpoint
from nextnum.config import Config, TrainConfig
from nextnum.data import fixed_batches, load_fixture
from nextnum.model import NextNum
from nextnum.train import train
from conftest import TINY

pytestmark = pytest.mark.slow


def from_tiny() -> Config:
    """A few steps from the seed-sized model's weights (a trained model that reads the fixture's digits) on the fixture:
    4 steps of 8 pages at a small learning rate, validated every 2 steps on 48 pages of held-out digits."""
    cfg = checkpoint.load(TINY)[1]
    cfg.data.fonts, cfg.data.val_holdout = [], 50
    cfg.train = TrainConfig(steps=4, batch=8, lr=1e-5, warmup=1, eval_every=2, val_samples=48, threads=1)
    return cfg


def reads(model: NextNum, cfg: Config) -> float:
    """Sequence accuracy on the validation pages such a run draws (the fixture's last 50 digits)."""
    from nextnum.evaluate import predict_batches, score
    _, val = load_fixture().split(cfg.data.val_holdout)
    pages = fixed_batches(val, cfg.train.val_samples, cfg.data, (cfg.model.img_h, cfg.model.img_w),
                          seed=cfg.train.seed + 1, match_strokes=cfg.model.match_strokes)
    return score(predict_batches(model, pages))["sequence_accuracy"]


@pytest.fixture(scope="module")
def start_reads() -> float:
    start = reads(checkpoint.load(TINY)[0], from_tiny())
    assert start > 0.5, "the seed-sized model should read the fixture's pages"
    return start


def kept_reads(out: Path, cfg: Config) -> float:
    return reads(checkpoint.load(out)[0], cfg)


@pytest.mark.parametrize("option", ["plain", "ema", "curriculum"])
def test_what_a_run_keeps_reads_about_as_well_as_what_it_started_from(tmp_path, start_reads, option):
    """--init from a trained model, with each option that changes what is validated and kept: the kept weights
    read the validation pages within 10 points of the start (an average over the -inf step masks read
    "00000" for everything and validated 0.0), and every validation agrees with them."""
    cfg = from_tiny()
    cfg.train.ema = 0.9 if option == "ema" else 0.0
    cfg.train.curriculum = 0.5 if option == "curriculum" else 0.0
    m = train(cfg, tmp_path, bank=load_fixture(), init=TINY)
    assert min(h["val_seq_acc"] for h in m["history"]) >= start_reads - 0.1, m["history"]
    assert kept_reads(tmp_path, cfg) == pytest.approx(m["best_val_seq_acc"])
    kept, _, _ = checkpoint.load(tmp_path)
    assert all(torch.isfinite(v).all() for v in kept.state_dict().values() if v.is_floating_point())


def test_each_snapshot_reads_about_as_well_as_the_start(tmp_path, start_reads):
    cfg = from_tiny()
    cfg.train.snapshots = True
    train(cfg, tmp_path, bank=load_fixture(), init=TINY)
    snaps = sorted((tmp_path / "snapshots").iterdir())
    assert [s.name for s in snaps] == ["000002", "000004"]
    assert all(kept_reads(s, cfg) >= start_reads - 0.1 for s in snaps)


def test_the_runs_log_in_its_folder_holds_every_line_after_the_checkpoint_is_saved_again(tmp_path):
    """Each best save swaps the run's folder for a new one (checkpoint.save); the log written after that lands in
    the new folder's train.log, not in the swapped-out file (which was deleted, and the lines with it)."""
    cfg = from_tiny()
    train(cfg, tmp_path, bank=load_fixture(), init=TINY)
    text = (tmp_path / "train.log").read_text()
    assert "step 4 val seq acc" in text and "finished at step 4" in text, text[-500:]


def test_a_stopped_and_resumed_run_keeps_weights_that_read_as_well(tmp_path, start_reads):
    cfg, stop = from_tiny(), threading.Event()
    first = train(cfg, tmp_path, bank=load_fixture(), init=TINY, stop=stop,
                  on_progress=lambda p: p["step"] >= 2 and stop.set())
    assert first["status"] == "stopped" and first["steps"] == 2
    second = train(cfg, tmp_path, bank=load_fixture(), init=TINY)
    assert second["steps"] == 4 and [h["step"] for h in second["history"]] == [2, 4]
    assert kept_reads(tmp_path, cfg) >= start_reads - 0.1


def test_a_run_on_corrections_keeps_weights_that_read_as_well(tmp_path, start_reads):
    import shutil
    from conftest import EXAMPLES
    shutil.copytree(EXAMPLES, tmp_path / "corrections")  # six drawings and their labels.json
    cfg = from_tiny()
    m = train(cfg, tmp_path / "out", bank=load_fixture(), init=TINY, corrections=tmp_path / "corrections")
    assert m["corrections"]["trained_on"] + m["corrections"]["held_out"] == 6
    assert kept_reads(tmp_path / "out", cfg) >= start_reads - 0.1
