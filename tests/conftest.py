"""What the tests share: the repository's paths, one tiny trained checkpoint, the app built in-process, the
reading handlers without the rest of the app, and one app server for the tests that need a real one."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"
SMOKE = CONFIGS / "smoke.json"  # the smallest model: 30 steps, validation every 15
EXAMPLES = ROOT / "examples"
SHIPPED = ROOT / "checkpoints" / "nextnum"  # the default model: reads the fixture's digits well
TINY = ROOT / "checkpoints" / "nextnum-tiny"  # the seed-sized model in the Model menu: trained, and fast to train on


def pytest_configure(config) -> None:
    # The tensors here are tiny: one thread is faster than several, and on a busy machine (CI runners,
    # a training run in the background) several threads spin-waiting on each other made the suite ~8x slower.
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def predictor():
    """A Predictor over a randomly initialised configs/default.json model (seed 0): fast, needs no checkpoint.
    A test file may define its own `predictor` instead."""
    from nextnum import NextNum, Predictor
    from nextnum.config import Config
    cfg = Config.load(CONFIGS / "default.json")
    torch.manual_seed(0)
    return Predictor(NextNum(cfg.model), cfg)


class OneModel:
    """What the reading handlers need of the app's checkpoints: every name gives this Predictor."""

    def __init__(self, predictor) -> None:
        self._predictor = predictor

    def predictor(self, name: str | None):
        return self._predictor


@pytest.fixture
def reading_handlers(predictor):
    """The app's event handlers for reading (read, read_pad, stages, read_frame) over `predictor`."""
    from nextnum.web.events import Handlers
    return Handlers(OneModel(predictor))


@pytest.fixture
def built_app(tmp_path):
    """app.build over an empty checkpoints folder: the page's layout and events, no server."""
    import app
    from nextnum.web.models import Checkpoints
    from nextnum.web.train_runs import TrainingSlot
    return app.build(Checkpoints(tmp_path / "checkpoints"), TrainingSlot(tmp_path / "checkpoints", lambda: None), "")


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory) -> Path:
    """Two smoke models trained once per test run (appserver.TINY: smoke-a, smoke-b), in a folder to copy."""
    from appserver import train_tiny
    root = tmp_path_factory.mktemp("tiny")
    train_tiny(root)
    return root


@pytest.fixture(scope="session")
def app_server(tmp_path_factory, tiny_checkpoints):
    """python app.py once per test run, with the default settings, serving the tiny models, a broken folder
    and a copy of the shipped model (see appserver.make_checkpoints)."""
    from appserver import AppServer, make_checkpoints
    tmp = tmp_path_factory.mktemp("app")
    start_with = make_checkpoints(tmp / "checkpoints", tiny_checkpoints)
    app = AppServer(tmp / "checkpoints", start_with, tmp / "app.log")
    app.root, app.start_with = tmp / "checkpoints", start_with
    yield app
    app.close()
