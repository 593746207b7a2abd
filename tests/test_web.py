"""The app's helpers: the model card says what the live checkpoint is (and what a fine-tuned one started from);
the Train tab offers only configs that describe a model and refuses settings out of range; the webcam draws
the maps on its schedule and smooths the reading; the checkpoint registry reloads re-saved weights and
picks the default model."""
import os
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from drawings import typed
from nextnum import Predictor, checkpoint
from nextnum.config import Config
from nextnum.model import NextNum
from nextnum.web import webcam
from nextnum.web.models import Checkpoints
from nextnum.web.train_runs import build_config, training_configs

from nextnum.web.views import model_card
from conftest import CONFIGS, ROOT



def test_model_card_of_the_shipped_model_names_both_training_stages():
    p = Predictor.load()
    text, rows, cfg = model_card(p, "nextnum")
    assert f"{p.model.num_params():,}" in text
    grid = p.config.model.grid
    assert f"patch grid {grid[0]}×{grid[1]}" in text
    assert f"{p.metrics['steps']} steps" in text
    parent = p.metrics["init_metrics"]
    assert f"started from:** a model trained {parent['steps']} steps" in text
    assert rows and cfg == p.config.to_dict()


def test_model_card_without_lineage_or_model():
    p = Predictor.load()
    p.metrics = {k: v for k, v in p.metrics.items() if k not in ("init", "init_metrics")}
    assert "started from" not in model_card(p, "x")[0]
    assert "No model loaded" in model_card(None, "x")[0]


def test_train_tab_offers_only_configs_that_describe_a_model(tmp_path):
    names = training_configs(CONFIGS)
    assert {"default", "fine", "fonts", "seed", "smoke"} <= set(names)
    assert "sweep" not in names and "clean" not in names  # a sweep grid; evaluation-only data settings
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "ok.json").write_text('{"model": {}}')
    assert list(training_configs(tmp_path)) == ["ok"]


# ---------------------------------------------------------------- webcam frames

class Recorder:
    """A Predictor (a random smoke model) that notes which frames asked for the attention maps."""

    def __init__(self) -> None:
        torch.manual_seed(0)
        cfg = Config.load(CONFIGS / "smoke.json")
        self.predictor, self.explained = Predictor(NextNum(cfg.model).eval(), cfg), []

    def predict(self, frame, explain: bool, roi=None):
        self.explained.append(explain)
        return self.predictor.predict(frame, explain=explain, roi=roi)


DIGITS = np.dstack([typed("42", hw=(480, 640), org=(230, 290), scale=3.0, thickness=10)] * 3)  # in the guide box
BLANK = np.full((480, 640, 3), 255, np.uint8)


def stream(predictor, frames: list[np.ndarray], heavy_every: int, smooth: bool = False) -> list[tuple]:
    state, out = None, []
    for frame in frames:
        state, pred, text, img, stats = webcam.read_frame(predictor, frame, state, smooth, heavy_every)
        assert img.shape == frame.shape
        out.append((pred, text, state["tint"], stats))
    return out


@pytest.mark.parametrize("k,maps", [(1, [True] * 9), (4, [True, False, False, False] * 2 + [True]),
                                    (3, [True, False, False] * 3)])
def test_webcam_draws_the_maps_on_frames_1_and_every_kth_after(k, maps):
    rec = Recorder()
    frames = stream(rec, [DIGITS] * 9, k)
    assert rec.explained == maps  # heavy_every=1 once never drew them: frames were counted n % k == 1
    assert [f[0].attention is not None for f in frames] == maps
    assert all(f[0].text and f[2] is not None for f in frames)  # frames between keep the last tint
    assert f"attention refreshed every {k} frames" in frames[-1][3]


def test_webcam_tint_is_cleared_when_nothing_is_read():
    frames = stream(Recorder(), [DIGITS, BLANK, DIGITS], 4)
    assert frames[0][2] is not None and frames[1][0].text == "" and frames[1][2] is None
    assert frames[2][0].text and frames[2][2] is None  # frame 3 has no maps of its own to show


@pytest.mark.parametrize("history,shown", [
    ([("12", 0.9), ("17", 0.4), ("17", 0.4)], "12"),  # 0.9 against 0.8: the surer reading wins
    ([("12", 0.9), ("17", 0.5), ("17", 0.5)], "17"),  # 1.0 against 0.9
    ([("12", 0.1), ("", 0.0), ("", 0.0), ("", 0.0)], ""),  # empty readings count 0.05 each: 0.15 > 0.1
    ([("12", 0.2), ("", 0.0), ("", 0.0), ("", 0.0)], "12"),
    ([], ""),
])
def test_smooth_text_shows_the_reading_with_the_most_summed_confidence(history, shown):
    assert webcam.smooth_text(history) == shown


def test_smoothing_looks_at_the_last_five_frames_only():
    readings = iter(["7"] * 6 + ["42"] * 3)
    scripted = SimpleNamespace(predict=lambda frame, explain, roi: SimpleNamespace(
        text=next(readings), confidence=0.9, attention=None))
    shown = [f[1] for f in stream(scripted, [DIGITS] * 9, 4, smooth=True)]
    assert shown == ["7"] * 8 + ["42"]  # frame 9's last five: 7 twice, 42 three times (six would tie, and 7 stay)


# ---------------------------------------------------------------- the Train tab's settings

@pytest.mark.parametrize("knobs,says", [
    ((0, 0.003, 16, 3, 16), "steps must be between 1 and 50,000"),
    ((50_001, 0.003, 16, 3, 16), "steps must be between 1 and 50,000"),
    ((10, 0, 16, 3, 16), "lr must be between 0 and 0.1"),
    ((10, 0.2, 16, 3, 16), "lr must be between 0 and 0.1"),
    ((10, 0.003, 0, 3, 16), "batch must be between 1 and 512"),
    ((10, 0.003, 513, 3, 16), "batch must be between 1 and 512"),
    ((10, 0.003, 16, 0, 16), "max digits must be between 1 and 5 for this config"),
    ((10, 0.003, 16, 6, 16), "max digits must be between 1 and 5 for this config"),
    ((10, 0.003, 16, 3, 15), "model width must be a multiple of the 2 heads, at most 256"),
    ((10, 0.003, 16, 3, 258), "model width must be a multiple of the 2 heads, at most 256"),
    ((10, 0.003, 16, 3, 0), "model width must be a multiple of the 2 heads"),
    (("ten", 0.003, 16, 3, 16), "must be whole numbers"),
    ((None, 0.003, 16, 3, 16), "must be whole numbers"),
])
def test_train_settings_out_of_range_are_refused_with_a_message(knobs, says):
    with pytest.raises(ValueError, match=re.escape(says)):
        build_config(Config.load(CONFIGS / "smoke.json"), *knobs)


def test_train_settings_in_range_make_the_config():
    base = Config.load(CONFIGS / "smoke.json")
    cfg = build_config(base, 50_000, 0.1, 512, 5, 256)  # every upper bound is allowed
    assert (cfg.train.steps, cfg.train.lr, cfg.train.batch, cfg.data.max_len, cfg.model.dim) == (50_000, 0.1, 512, 5, 256)
    small = build_config(base, 8, 0.003, 1, 1, 2)
    assert (small.data.min_len, small.data.max_len, small.model.dim) == (1, 1, 2)
    assert small.train.eval_every == 2 and small.train.warmup == 1  # a short run validates and warms up within it
    assert small.train.time_budget_min == 0 and base.model.dim == 16  # the base is left alone


# ---------------------------------------------------------------- the app's checkpoint registry

def save(folder: Path, seed: int) -> None:
    torch.manual_seed(seed)
    cfg = Config.load(CONFIGS / "smoke.json")
    checkpoint.save(folder, NextNum(cfg.model).eval(), cfg, {"seed": seed})


def test_a_checkpoint_saved_again_under_its_name_is_reloaded(tmp_path):
    ckpts = Checkpoints(tmp_path)
    save(tmp_path / "run", 0)
    first = ckpts.predictor("run")
    assert ckpts.predictor("run") is first  # loaded once
    save(tmp_path / "run", 1)  # new weights, same name (a finished run, a re-save)
    second = ckpts.predictor("run")
    assert second is not first and second.metrics["seed"] == 1
    w0, w1 = first.model.state_dict(), second.model.state_dict()
    assert any(not torch.equal(w0[k], w1[k]) for k in w0)


def test_the_default_checkpoint_is_the_given_one_then_the_shipped_one_then_the_newest(tmp_path):
    assert Checkpoints(tmp_path).default() is None  # nothing to serve
    for i, name in enumerate(("old", "newest", "middle")):
        save(tmp_path / name, i)
        os.utime(tmp_path / name / checkpoint.WEIGHTS, (1_000_000 + 10 * i,) * 2)
    os.utime(tmp_path / "newest" / checkpoint.WEIGHTS, (2_000_000,) * 2)
    (tmp_path / ".training-run").mkdir()  # hidden folders are never chosen
    assert Checkpoints(tmp_path).default() == "newest"
    save(tmp_path / "nextnum", 3)
    os.utime(tmp_path / "nextnum" / checkpoint.WEIGHTS, (1,) * 2)  # the shipped model, however old
    assert Checkpoints(tmp_path).default() == "nextnum"
    assert Checkpoints(tmp_path, tmp_path / "old").default() == "old"  # --checkpoint wins


def test_a_space_is_public_unless_told_otherwise():
    from nextnum.web import settings
    for env, public in (({}, False), ({"SPACE_ID": "me/nextnum"}, True), ({"NEXTNUM_PUBLIC": "1"}, True),
                        ({"SPACE_ID": "me/nextnum", "NEXTNUM_PUBLIC": "0"}, False)):
        assert settings.parse([], env).public is public, env
    assert settings.parse(["--public"], {}).public


def test_settings_come_from_the_command_line_and_the_environment_once():
    from nextnum.web import settings
    s = settings.parse(["--threads", "3", "--corrections-dir", "/c"], {"NEXTNUM_STREAMS": "2", "NEXTNUM_QUEUE": "7",
                                                                       "NEXTNUM_TRAIN_DATA": "fixture"})
    assert (s.threads, s.corrections_root, s.streams, s.queue, s.train_on_fixture) == (3, Path("/c"), 2, 7, True)
    assert settings.parse([], {}) == settings.Settings()  # nothing set: the defaults
    offenders = [p.relative_to(ROOT) for p in [ROOT / "app.py", *(ROOT / "nextnum").rglob("*.py")]
                 if re.search(r"os\.environ\.get\(\"NEXTNUM_|getenv\(\"NEXTNUM_", p.read_text())]
    assert offenders == [], f"read the environment outside web/settings.py: {offenders}"


def test_a_client_may_save_n_corrections_a_window_and_others_are_not_held_back():
    from types import SimpleNamespace

    from nextnum.web.feedback import RateLimit
    rate = RateLimit(3, 60)
    assert [rate.allow("a", now=t) for t in (0, 1, 2, 3)] == [True, True, True, False]
    assert rate.allow("b", now=3)  # another client
    assert rate.allow("a", now=61)  # the window moved on
    proxied = SimpleNamespace(headers={"x-forwarded-for": "203.0.113.7, 10.0.0.1"}, client=SimpleNamespace(host="10.0.0.1"))
    assert RateLimit.client(proxied) == "203.0.113.7"
    assert RateLimit.client(SimpleNamespace(headers={}, client=SimpleNamespace(host="127.0.0.1"))) == "127.0.0.1"
    small = RateLimit(1, 60, clients=2)
    for k in "xyz":
        small.allow(k, now=0)
    assert len(small._seen) == 2  # bounded however many clients come


def test_in_public_one_visitor_is_stopped_at_the_rate_and_the_folder_at_its_budget(tmp_path, monkeypatch):
    from types import SimpleNamespace

    import gradio as gr

    from nextnum.corrections import Corrections
    from nextnum.web import events
    from nextnum.web.models import Checkpoints
    monkeypatch.setattr(events, "CORRECTIONS_RATE", (2, 600))
    ev = events.Handlers(Checkpoints(tmp_path / "ck"), None, {}, 4, Corrections(tmp_path / "corr"), public=True)
    me, other = (SimpleNamespace(headers={}, client=SimpleNamespace(host=h)) for h in ("192.0.2.1", "192.0.2.2"))
    img = lambda v: np.full((20, 40), v, np.uint8)  # noqa: E731
    ev.correct(img(1), "1", me), ev.correct(img(2), "2", me)
    with pytest.raises(gr.Error, match="the most one visitor may save"):
        ev.correct(img(3), "3", me)
    assert "Saved" in ev.correct(img(4), "4", other)
    full = events.Handlers(Checkpoints(tmp_path / "ck"), None, {}, 4, Corrections(tmp_path / "c2", max_bytes=10),
                           public=True)
    with pytest.raises(gr.Error, match="folder is full"):
        full.correct(img(5), "5", me)
