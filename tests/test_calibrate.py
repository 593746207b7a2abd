"""Confidence calibration: the temperature is stored, applied where probabilities are made, and fitted right."""

import numpy as np
import pytest
import torch

from nextnum import checkpoint
from nextnum.calibrate import Decoded, confidences, ece, fit_temperature, reliability, report, retemper, shown
from nextnum.config import EOS, Config
from nextnum.data import fixed_batches, load_fixture
from nextnum.model import NextNum
from conftest import ROOT, SMOKE

CAP = 0.96  # about where label smoothing 0.05 holds a digit's raw softmax


def _smoke(temperature: float = 1.0) -> NextNum:
    cfg = Config.load(SMOKE)
    cfg.model.temperature = temperature
    torch.manual_seed(0)
    return NextNum(cfg.model).eval()


def test_temperature_round_trips_through_a_checkpoint(tmp_path):
    model = _smoke(0.7)
    cfg = Config.load(SMOKE)
    cfg.model.temperature = 0.7
    checkpoint.save(tmp_path / "ck", model, cfg, {})
    loaded, lcfg, _ = checkpoint.load(tmp_path / "ck")
    assert lcfg.model.temperature == 0.7 and loaded.cfg.temperature == 0.7


def test_a_config_without_temperature_loads_at_one(tmp_path):
    d = Config.load(SMOKE).to_dict()
    del d["model"]["temperature"]
    assert Config.from_dict(d).model.temperature == 1.0


@pytest.mark.parametrize("bad", [0, -1.0, "0.7"])
def test_a_temperature_that_is_not_positive_is_refused(bad):
    d = Config.load(SMOKE).to_dict()
    d["model"]["temperature"] = bad
    with pytest.raises(ValueError, match="temperature"):
        Config.from_dict(d)


def test_temperature_changes_the_probabilities_not_the_reading():
    cfg = Config.load(SMOKE)
    img = fixed_batches(load_fixture(), 8, cfg.data, (cfg.model.img_h, cfg.model.img_w), seed=0)[0].images
    warm, cool = _smoke(1.0).generate(img), _smoke(0.5).generate(img)
    assert torch.equal(warm.tokens, cool.tokens)
    want = retemper(warm.probs.numpy(), 1.0, 0.5)
    np.testing.assert_allclose(cool.probs.numpy(), want, atol=1e-5)
    assert (cool.probs.amax(-1) >= warm.probs.amax(-1) - 1e-6).all()


def test_the_shipped_model_shows_more_than_the_smoothing_cap_on_a_clean_drawing():
    from nextnum import Predictor
    pred = Predictor.load(None, runtime="torch")
    assert pred.config.model.temperature < 1.0, "the shipped checkpoint has no fitted temperature"
    r = pred.predict(ROOT / "examples" / "4072.png", explain=True)  # the PyTorch path with maps
    assert r.text == "4072"
    assert min(d.prob for d in r.digits) > CAP + 0.02
    assert r.confidence > CAP ** 4  # four digits and the stop, each above the cap's share


def test_ece_is_zero_when_confidence_matches_accuracy_and_the_gap_otherwise():
    ok = np.array([True] * 8 + [False] * 2)
    assert ece(np.full(10, 0.8), ok) == pytest.approx(0.0)
    assert ece(np.full(10, 0.96), np.ones(10, bool)) == pytest.approx(0.04)
    # over-confident in one bin, under-confident in another: the gaps add up, they do not cancel
    conf = np.array([0.9] * 10 + [0.3] * 10)
    right = np.array([True] * 5 + [False] * 5 + [True] * 8 + [False] * 2)
    assert ece(conf, right) == pytest.approx((0.4 + 0.5) / 2)
    bins = reliability(np.array([0.05, 0.95, 0.97]), np.array([False, True, True]))
    assert [b["count"] for b in bins] == [1, 2] and sum(b["count"] for b in bins) == 3


def test_confidences_are_the_digits_and_the_whole_reading_with_its_stop():
    probs = np.zeros((1, 3, 13))
    probs[0, 0, 4], probs[0, 0, 9] = 0.9, 0.1
    probs[0, 1, 7], probs[0, 1, 1] = 0.6, 0.4
    probs[0, 2, EOS], probs[0, 2, 3] = 0.5, 0.5
    d = Decoded(np.array([[4, 7, EOS]]), probs, 1.0, ["41"])
    c = confidences(d, 1.0)
    np.testing.assert_allclose(c["digit_conf"], [0.9, 0.6])
    assert c["digit_ok"].tolist() == [True, False]
    assert c["whole_conf"][0] == pytest.approx(0.9 * 0.6 * 0.5) and not c["whole_ok"][0]


def test_fit_finds_the_temperature_the_labels_were_drawn_at():
    rng = np.random.default_rng(0)
    n = 4000
    z = rng.normal(0, 2.0, (n, 2, 13))
    z[:, :, 10:] = -np.inf  # one digit, then the stop
    z[:, 1, :] = -np.inf
    z[:, 1, EOS] = 0.0
    true_t = 0.6
    p_true = retemper(np.exp(z - z.max(-1, keepdims=True)), 1.0, true_t)[:, 0, :10]
    labels = [str(rng.choice(10, p=p / p.sum())) for p in p_true]
    probs = retemper(np.exp(z - z.max(-1, keepdims=True)), 1.0, 1.0)
    tokens = np.stack([probs[:, 0].argmax(-1), np.full(n, EOS)], 1)
    assert fit_temperature(Decoded(tokens, probs, 1.0, labels)) == pytest.approx(true_t, rel=0.1)


def test_shown_counts_what_the_app_shows_as_greedy_readings_are_counted():
    """A reading the app showed ("13" for "12", digits 0.9 and 0.6, whole 0.5; "7" for "7", whole 0.95):
    each digit right where the truth has it at that place, each whole right only when all of it is."""
    from nextnum.predictor import DigitReading, Prediction

    def pred(text, probs, conf):
        return Prediction(text, [DigitReading(d, p, [(d, p)]) for d, p in zip(text, probs)], conf, "", {}, None, {},
                          np.zeros((2, 2)), None)
    c = shown([(pred("13", [0.9, 0.6], 0.5), "12"), (pred("7", [0.97], 0.95), "7"), (pred("", [], 0.0), "4")])
    np.testing.assert_allclose(c["digit_conf"], [0.9, 0.6, 0.97])
    assert c["digit_ok"].tolist() == [True, False, True] and c["whole_ok"].tolist() == [False, True, False]
    np.testing.assert_allclose(c["whole_conf"], [0.5, 0.95, 0.0])
    r = report(c, 0.7)
    assert r["whole"]["count"] == 3 and r["whole"]["accuracy"] == pytest.approx(1 / 3, abs=1e-4) and r["temperature"] == 0.7
