"""Smoke runs from scratch: the loss falls, the folder is complete, options hold, a resumed run ends where one run does."""
import math
import json
import threading
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from nextnum import checkpoint
from nextnum.config import BOS, PAD, Config
from nextnum.data import fixed_batches, load_fixture
from nextnum.model import NextNum
from nextnum.resume import RESUME
from nextnum.train import train
from conftest import SMOKE

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One uninterrupted smoke run: (out folder, config, returned metrics, on_progress reports)."""
    out, cfg, reports = tmp_path_factory.mktemp("run"), Config.load(SMOKE), []
    metrics = train(cfg, out, bank=load_fixture(), on_progress=reports.append)
    return out, cfg, metrics, reports


def last_weights(out: Path, cfg: Config) -> NextNum:
    """The model as training left it (kept in the resume state), not the best checkpoint."""
    model = NextNum(cfg.model)
    model.load_state_dict({k[6:]: v for k, v in load_file(str(out / RESUME)).items() if k.startswith("model.")})
    return model.eval()


def reading_loss(model: NextNum, cfg: Config) -> float:
    b = fixed_batches(load_fixture(), 128, cfg.data, (cfg.model.img_h, cfg.model.img_w), seed=99)[0]
    inp = torch.cat([torch.full_like(b.targets[:, :1], BOS), b.targets[:, :-1]], 1)
    with torch.no_grad():
        return F.cross_entropy(model.eval()(b.images, inp).flatten(0, 1), b.targets.flatten(), ignore_index=PAD).item()


def test_training_lowers_the_loss(run):
    out, cfg, _, reports = run
    assert reports[-1]["loss"] < reports[0]["loss"] - 0.1, [r["loss"] for r in reports]
    torch.manual_seed(cfg.train.seed)  # the same initial weights train() starts from
    before, after = reading_loss(NextNum(cfg.model), cfg), reading_loss(last_weights(out, cfg), cfg)
    assert after < before - 0.1, (before, after)


def test_train_writes_a_complete_checkpoint_folder(run):
    out, cfg, metrics, reports = run
    assert {"model.safetensors", "config.json", "metrics.json", "train.log"} <= {p.name for p in out.iterdir()}
    assert json.loads((out / "metrics.json").read_text()) == metrics
    assert metrics["status"] == "finished" and metrics["steps"] == cfg.train.steps == reports[-1]["step"]
    assert [h["step"] for h in metrics["history"]] == [15, 30]
    _, saved_cfg, _ = checkpoint.load(out)
    assert saved_cfg == cfg


def test_stop_flag_then_resume_ends_where_an_uninterrupted_run_does(tmp_path, run):
    cfg, stop, first = Config.load(SMOKE), threading.Event(), []

    def report(p):
        first.append(p["step"])
        if p["step"] >= 10:
            stop.set()

    m = train(cfg, tmp_path, bank=load_fixture(), on_progress=report, stop=stop)
    assert m["status"] == "stopped" and m["steps"] == 10 and first == [10]
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "stopped"

    second, lrs = [], {}
    m = train(cfg, tmp_path, bank=load_fixture(), on_progress=lambda p: (second.append(p["step"]), lrs.update({p["step"]: p["lr"]})))
    assert m["status"] == "finished" and m["steps"] == 30
    assert min(second) > 10, f"resumed run started over: {second}"
    straight_lrs = {r["step"]: r["lr"] for r in run[3]}
    assert lrs == {k: straight_lrs[k] for k in lrs}, "the schedule resumed at another position"
    assert [h["step"] for h in m["history"]] == [10, 15, 30]
    resumed, straight = last_weights(tmp_path, cfg).state_dict(), last_weights(run[0], cfg).state_dict()
    for k in straight:
        assert torch.allclose(resumed[k].float(), straight[k].float(), atol=1e-6), k


def test_train_log_records_the_run(run):
    assert "val seq acc" in (run[0] / "train.log").read_text()


def test_init_starts_from_a_checkpoint_with_another_token_grid(tmp_path, run):
    trained, _, _, _ = run
    cfg = Config.load(SMOKE)
    cfg.model.stride = 1  # a finer grid than the run's: positions are resized, the rest carries over
    cfg.train.steps, cfg.train.lr, cfg.train.eval_every = 2, 1e-6, 2
    m = train(cfg, tmp_path, bank=load_fixture(), init=trained)
    assert m["init"] == str(trained) and m["steps"] == 2
    torch.manual_seed(cfg.train.seed)
    scratch = reading_loss(NextNum(cfg.model), cfg)
    assert reading_loss(last_weights(tmp_path, cfg), cfg) < scratch - 0.1
    assert last_weights(tmp_path, cfg).encoder.pos_col.shape[1] > last_weights(trained, Config.load(SMOKE)).encoder.pos_col.shape[1]


def test_init_from_a_model_of_another_shape_is_refused_before_training(tmp_path, run):
    cfg = Config.load(SMOKE)
    cfg.model.dim = 24  # the run's model is 16 wide
    with pytest.raises(checkpoint.CheckpointError, match=r"cannot start from .*: .*dim 16 in the checkpoint, 24 in the config"):
        train(cfg, tmp_path / "wide", bank=load_fixture(), init=run[0])
    assert not (tmp_path / "wide" / "model.safetensors").exists()


def test_init_mismatch_allows_only_another_canvas_or_stride():
    from nextnum.warmstart import init_mismatch
    a = Config.load(SMOKE).model
    assert init_mismatch(a, Config.load(SMOKE).model) is None
    for field, value in (("stride", 1), ("img_w", 84), ("img_h", 32), ("dropout", 0.1)):
        b = Config.load(SMOKE).model
        setattr(b, field, value)
        assert init_mismatch(a, b) is None, field
    b = Config.load(SMOKE).model
    b.patch, b.stem = 3, [8, 8]
    assert init_mismatch(a, b) == ("stem [8] in the checkpoint, [8, 8] in the config; "
                                 "patch 2 in the checkpoint, 3 in the config")


def test_init_mismatch_allows_a_deeper_encoder_but_not_a_shallower_one():
    from nextnum.warmstart import init_mismatch
    a, deeper, shallower = (Config.load(SMOKE).model for _ in range(3))
    deeper.enc_layers, shallower.enc_layers = a.enc_layers + 2, a.enc_layers - 1
    assert init_mismatch(a, deeper) is None
    assert init_mismatch(a, shallower) == (f"enc_layers {a.enc_layers} in the checkpoint, "
                                           f"{a.enc_layers - 1} in the config")
    deeper.dec_layers += 1
    assert init_mismatch(a, deeper) == f"dec_layers {a.dec_layers} in the checkpoint, {a.dec_layers + 1} in the config"


def test_train_puts_the_thread_count_back(tmp_path):
    cfg = Config.load(SMOKE)
    cfg.train.steps, cfg.train.eval_every = 2, 2
    before = torch.get_num_threads()
    cfg.train.threads = 2 if before == 1 else 1
    train(cfg, tmp_path, bank=load_fixture())
    assert torch.get_num_threads() == before


def test_training_with_fonts_records_them(tmp_path):
    from nextnum.data import font_files
    try:
        files = font_files(["/usr/share/fonts/**/*.ttf"])[:2]
    except FileNotFoundError:
        pytest.skip("no TrueType fonts installed")
    cfg = Config.load(SMOKE)
    cfg.train.steps, cfg.train.eval_every = 2, 2
    cfg.data.fonts = [str(f) for f in files]
    m = train(cfg, tmp_path, bank=load_fixture())
    assert m["fonts"] == [f.name for f in files]
    assert "from 2 fonts" in (tmp_path / "train.log").read_text()
    assert json.loads((tmp_path / "config.json").read_text())["data"]["fonts"] == cfg.data.fonts


def test_averaged_model_is_the_moving_average_of_weights_and_statistics():
    from nextnum.resume import averaged_model
    cfg = Config.load(SMOKE)
    torch.manual_seed(0)
    model = NextNum(cfg.model)
    avg = averaged_model(model, 0.75)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    assert all(torch.equal(avg.module.state_dict()[k], v) for k, v in start.items()), "starts at the model"
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1)
        for b in model.buffers():
            if b.is_floating_point():
                b.add_(1)
    avg.update_parameters(model)
    now = model.state_dict()
    for k, a in avg.module.state_dict().items():
        if a.is_floating_point():  # weights and BatchNorm statistics alike
            assert torch.allclose(a, 0.75 * start[k] + 0.25 * now[k]), k



def ema_weights(out: Path) -> dict[str, torch.Tensor]:
    return {k[11:]: v for k, v in load_file(str(out / RESUME)).items() if k.startswith("ema.module.")}


def test_ema_run_keeps_the_average_and_resumes_it(tmp_path):
    cfg = Config.load(SMOKE)
    cfg.train.ema, cfg.train.steps = 0.9, 15  # one validation, at the last step: the kept weights are the average then
    straight = tmp_path / "straight"
    train(cfg, straight, bank=load_fixture())
    avg, raw = ema_weights(straight), last_weights(straight, cfg).state_dict()
    kept, _, _ = checkpoint.load(straight)
    assert avg and all(torch.equal(kept.state_dict()[k], v) for k, v in avg.items())
    assert any(not torch.allclose(avg[k].float(), raw[k].float()) for k in raw), "the average is the raw model"

    stop, parts = threading.Event(), tmp_path / "parts"

    def report(p):
        if p["step"] >= 10:
            stop.set()
    assert train(cfg, parts, bank=load_fixture(), on_progress=report, stop=stop)["steps"] == 10
    assert train(cfg, parts, bank=load_fixture())["steps"] == 15
    resumed = ema_weights(parts)
    for k, v in avg.items():
        assert torch.allclose(resumed[k].float(), v.float(), atol=1e-6), k


def test_a_resume_state_of_the_earlier_layout_still_resumes(tmp_path):
    """Runs in progress wrote their average as "ema.<name>" (no "ema.n_averaged"): resumed with the current
    code they end where an uninterrupted run does, average included."""
    from safetensors.torch import save_file
    from safetensors import safe_open
    cfg = Config.load(SMOKE)
    cfg.train.ema, cfg.train.steps = 0.9, 15
    straight = tmp_path / "straight"
    train(cfg, straight, bank=load_fixture())
    stop, old = threading.Event(), tmp_path / "old"
    train(cfg, old, bank=load_fixture(), on_progress=lambda p: p["step"] >= 10 and stop.set(), stop=stop)
    f = old / RESUME
    with safe_open(str(f), "pt") as h:
        meta = h.metadata()
    t = load_file(str(f))
    earlier = {k: v for k, v in t.items() if not k.startswith("ema.")}
    earlier.update({"ema." + k[11:]: v for k, v in t.items() if k.startswith("ema.module.")})
    save_file(earlier, str(f), metadata=meta)
    assert train(cfg, old, bank=load_fixture())["steps"] == 15
    for name, get in (("weights", lambda d: last_weights(d, cfg).state_dict()), ("average", ema_weights)):
        a, b = get(old), get(straight)
        assert a.keys() == b.keys() and a, name
        for k in b:
            assert torch.allclose(a[k].float(), b[k].float(), atol=1e-6), (name, k)


def test_a_time_budget_resumes_on_the_clock_it_had_used(tmp_path):
    """With train.time_budget_min the schedule follows the wall time too: a resumed run starts its clock
    at the time the stopped one had used, so its progress (and learning rate) goes on from there."""
    cfg = Config.load(SMOKE)
    cfg.train.steps, cfg.train.time_budget_min, cfg.train.warmup, cfg.train.eval_every = 0, 10.0, 1, 1000
    stop, first, second = threading.Event(), [], []

    def report(p):
        first.append(p)
        if p["step"] >= 10:
            stop.set()
    train(cfg, tmp_path, bank=load_fixture(), on_progress=report, stop=stop)
    stop.clear()
    late = lambda p: (second.append(p), stop.set())  # noqa: E731 - one report after resuming is enough
    train(cfg, tmp_path, bank=load_fixture(), on_progress=late, stop=stop)
    assert second[0]["step"] == 20 and second[0]["elapsed_s"] > first[-1]["elapsed_s"]
    assert second[0]["progress"] > first[-1]["progress"] and second[0]["lr"] < first[-1]["lr"]


def test_guide_loss_scores_the_layers_average_or_each_layer():
    from nextnum.losses import guide_loss
    inside = torch.tensor([[[1.0, 1.0, 0.0, 0.0]]])  # (B=1, K=1, N=4): digit 0 covers tokens 0-1
    tgt = torch.tensor([[3, 11]])  # one digit, then EOS
    on = torch.tensor([0.5, 0.5, 0.0, 0.0])
    off = torch.tensor([0.0, 0.0, 0.5, 0.5])  # a layer looking elsewhere (say, at the previous digit)
    cross = torch.stack([off, on])[None, :, None]  # (B, L=2, T=1, N)
    assert guide_loss(cross, inside, tgt) == pytest.approx(-math.log(0.5))  # the average has half its mass in
    assert guide_loss(cross, inside, tgt, per_layer=True) == pytest.approx(-math.log(1e-4) / 2)  # layer 0 is punished
    both_on = torch.stack([on, on])[None, :, None]
    assert guide_loss(both_on, inside, tgt, per_layer=True) == pytest.approx(0.0, abs=1e-6)
