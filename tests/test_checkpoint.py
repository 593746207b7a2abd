"""Checkpoint invariants: exact round trip, clear errors for damaged folders, atomic re-saves."""
import json
import os
import time

import pytest
import torch

from nextnum import checkpoint
from nextnum.config import Config
from nextnum.model import NextNum
from conftest import SMOKE



def model_and_cfg(seed: int = 0) -> tuple[NextNum, Config]:
    torch.manual_seed(seed)
    cfg = Config.load(SMOKE)
    model = NextNum(cfg.model)
    model(torch.rand(4, 1, cfg.model.img_h, cfg.model.img_w), torch.zeros(4, 3, dtype=torch.long))
    return model.eval(), cfg  # the forward pass in train mode moved the BatchNorm running stats


def logits(model: NextNum) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        return model(torch.rand(2, 1, model.cfg.img_h, model.cfg.img_w, generator=g),
                     torch.randint(0, 10, (2, 4), generator=g))


@pytest.fixture
def saved(tmp_path):
    model, cfg = model_and_cfg()
    checkpoint.save(tmp_path / "ck", model, cfg, {"best_val_seq_acc": 0.5})
    return tmp_path / "ck", model, cfg


def test_round_trip_is_exact(saved):
    path, model, cfg = saved
    loaded, cfg2, metrics = checkpoint.load(path)
    assert torch.equal(logits(loaded), logits(model)) and not loaded.training
    assert cfg2 == cfg and metrics == {"best_val_seq_acc": 0.5}
    assert Config.from_dict(json.loads((path / "config.json").read_text())) == cfg


@pytest.mark.parametrize("cut", ["empty", "in header", "half", "last byte"])
def test_truncated_weights_name_the_file(saved, cut):
    w = saved[0] / "model.safetensors"
    data = w.read_bytes()
    w.write_bytes(data[:{"empty": 0, "in header": 20, "half": len(data) // 2, "last byte": len(data) - 1}[cut]])
    with pytest.raises(checkpoint.CheckpointError, match="model.safetensors"):
        checkpoint.load(saved[0])


@pytest.mark.parametrize("text", [b"{not json", b"\xff\xfe", b'{"model": {"bogus": 1}}', b'{"model": {"dim": 15}}',
                                  b"[]", b'{"model": {"heads": 0}}', b'{"model": {"dim": -4}}'])
def test_garbage_config_is_a_checkpoint_error(saved, text):
    (saved[0] / "config.json").write_bytes(text)
    with pytest.raises(checkpoint.CheckpointError, match="config.json"):
        checkpoint.load(saved[0])


def test_weights_of_another_config_name_the_file(saved):
    cfg = Config.load(SMOKE)
    cfg.model.dim = 32  # a valid config, but not the one these weights were trained with
    cfg.save(saved[0] / "config.json")
    with pytest.raises(checkpoint.CheckpointError, match="model.safetensors"):
        checkpoint.load(saved[0])


@pytest.mark.parametrize("fail_on", [1, 2])
def test_interrupted_save_keeps_the_previous_checkpoint(saved, monkeypatch, fail_on):
    path, model, _ = saved
    (path / "train.log").write_text("step 1\n")
    calls, real_rename = [], os.rename

    def flaky_rename(src, dst):
        calls.append(src)
        if len(calls) == fail_on:
            raise OSError("disk went away")
        real_rename(src, dst)
    other, cfg = model_and_cfg(seed=1)
    with monkeypatch.context() as m:
        m.setattr(checkpoint.os, "rename", flaky_rename)
        with pytest.raises(OSError, match="disk went away"):
            checkpoint.save(path, other, cfg)
    left = sorted(p.name for p in path.parent.iterdir())  # no .ck.tmp-*: the half-written folder is gone
    if fail_on == 1:  # died before touching the previous folder
        assert left == ["ck"]
    else:  # died between the renames: only the previous folder, under a dot-name no folder list shows
        assert len(left) == 1 and left[0].startswith(".ck.old-"), left
    loaded, _, _ = checkpoint.load(path)  # puts .ck.old-* back if the save died between its renames
    assert torch.equal(logits(loaded), logits(model))
    assert [p.name for p in path.parent.iterdir()] == ["ck"] and (path / "train.log").read_text() == "step 1\n"


def test_resave_keeps_other_files(saved):
    path, _, cfg = saved
    (path / "train.log").write_text("step 1\n")
    (path / "resume.safetensors").write_bytes(b"state")
    other, _ = model_and_cfg(seed=1)
    checkpoint.save(path, other, cfg, {"steps": 2})
    assert (path / "train.log").read_text() == "step 1\n" and (path / "resume.safetensors").read_bytes() == b"state"
    loaded, _, metrics = checkpoint.load(path)
    assert torch.equal(logits(loaded), logits(other)) and metrics == {"steps": 2}
    assert [p.name for p in path.parent.iterdir()] == ["ck"], "temporary folders left behind"


def test_resave_keeps_subfolders(saved):
    (saved[0] / "samples").mkdir()
    (saved[0] / "samples" / "a.png").write_bytes(b"png")
    model, cfg = model_and_cfg()
    checkpoint.save(saved[0], model, cfg)
    assert (saved[0] / "samples" / "a.png").exists()


def test_save_clears_what_long_dead_saves_left_and_spares_fresh_ones(saved):
    path, model, cfg = saved
    dead_tmp, dead_old, live_tmp = (path.parent / f".{path.name}.{kind}" for kind in ("tmp-dead", "old-dead", "tmp-live"))
    for d in (dead_tmp, dead_old, live_tmp):
        d.mkdir()
        (d / "model.safetensors").write_bytes(b"half")
    hours_ago = time.time() - 2 * checkpoint.STALE_SECONDS
    for d in (dead_tmp, dead_old):
        os.utime(d, (hours_ago, hours_ago))
    checkpoint.save(path, model, cfg)
    assert not dead_tmp.exists() and not dead_old.exists()
    assert live_tmp.exists(), "a temporary folder this young may be another process's save in progress"
