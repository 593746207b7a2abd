"""Model invariants: shapes, size budget, causality, fused == manual attention, cached decoding."""

import pytest
import torch

from nextnum.config import BOS, EOS, PAD, VOCAB, Config
from nextnum.model import Attention, NextNum
from nextnum.web.train_runs import training_configs
from conftest import CONFIGS, SHIPPED, TINY



def make(name: str, big: bool = False, seed: int = 0) -> NextNum:
    """A model in eval mode; big redraws weights ~N(0, 1) (biases 0) so that canvases read differently."""
    torch.manual_seed(seed)
    model = NextNum(Config.load(CONFIGS / f"{name}.json").model).eval()
    if big:
        with torch.no_grad():
            for n, p in model.named_parameters():
                p.zero_() if n.endswith("bias") else p.normal_()
    return model


def canvases(model: NextNum, n: int = 3) -> torch.Tensor:  # (n, 1, H, W) noise
    return torch.rand(n, 1, model.cfg.img_h, model.cfg.img_w, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name", ["default", "smoke"])
def test_shapes_and_return_attn(name):
    model = make(name, big=True)
    cfg, img, T = model.cfg, canvases(model), model.cfg.max_digits + 1  # T: BOS + max_digits
    assert model(img, torch.randint(0, VOCAB, (3, T))).shape == (3, T, VOCAB)
    g, plain = model.generate(img, return_attn=True), model.generate(img)
    (B, S), N = g.tokens.shape, cfg.grid[0] * cfg.grid[1]
    assert B == 3 and 1 <= S <= T and g.probs.shape == (3, S, VOCAB)
    assert g.cross_attn.shape == (3, S, cfg.dec_layers, cfg.heads, N)
    assert g.enc_attn.shape == (3, cfg.enc_layers, cfg.heads, N, N)
    assert torch.allclose(g.cross_attn.sum(-1), torch.ones(3, S, cfg.dec_layers, cfg.heads), atol=1e-5)
    assert torch.equal(plain.tokens, g.tokens) and torch.allclose(plain.probs, g.probs, atol=1e-5)
    assert plain.cross_attn is None and plain.enc_attn is None


BUDGET = 100_000  # parameters
# the design with fewer, wider tokens (width 64, a 3-conv stem) is compared at about 300k: tokens, not
# parameters, set a step's cost on this CPU (docs/designs.md)
LARGER = {"compare-wide": 310_000, "reading": 310_000, "corrections": 310_000, "more-hands": 310_000, "long-flags": 310_000,
          "camera": 310_000, "settle": 310_000, "deeper": 370_000}  # the wide design
# (reading.json: trained on pages; corrections, more-hands, long-flags, camera and settle: the default model fine-tuned;
# deeper: the default with two more encoder blocks, added as the identity)


@pytest.mark.parametrize("folder, budget", [(SHIPPED, LARGER["reading"]), (TINY, BUDGET)], ids=["nextnum", "tiny"])
def test_each_model_in_the_menu_fits_its_budget_and_says_how_it_was_trained(folder, budget):
    """The Model menu's two models: the default (the wide design) and the seed-sized one, each with the record
    of its training (steps, samples, wall and CPU time, the command) beside its weights."""
    from nextnum.checkpoint import load
    if not (folder / "model.safetensors").is_file():
        pytest.skip(f"no checkpoints/{folder.name}")
    model, _, metrics = load(folder)
    assert model.num_params() <= budget and metrics["parameters"] == model.num_params()
    assert metrics["steps"] > 0 and metrics["samples"] > 0 and metrics["train_seconds"] > 0
    assert "cpu_seconds" in metrics and metrics["command"] and metrics["history"]
    assert metrics["t10k_app"]["sequence_accuracy"] > 0.85  # how it reads the t10k pages, as the app reads them


@pytest.mark.parametrize("name", sorted(training_configs(CONFIGS)))  # every config that describes a model
def test_every_model_config_fits_the_parameter_budget(name):
    assert make(name).num_params() <= LARGER.get(name, BUDGET)


def test_no_causal_leakage():
    model = make("smoke", big=True)
    img = canvases(model, 2)
    tok = torch.randint(0, 10, (2, model.cfg.max_digits + 1), generator=torch.Generator().manual_seed(2))
    base = model(img, tok)
    for t in range(tok.shape[1] - 1):
        changed = torch.where(torch.arange(tok.shape[1]) == t + 1, (tok + 1) % 10, tok)  # only token t+1
        out = model(img, changed)
        assert torch.allclose(out[:, :t + 1], base[:, :t + 1], atol=1e-6), f"token {t + 1} leaked backwards"
        assert not torch.allclose(out[:, t + 1], base[:, t + 1]), "the change had no effect: test has no power"


@pytest.mark.parametrize("mode", ["causal", "bidirectional", "cross"])
def test_fused_and_manual_attention_agree(mode):
    torch.manual_seed(0)
    attn = Attention(16, 4, cross=mode == "cross")
    with torch.no_grad():
        attn.log_scale.uniform_(-1.5, 0.0)  # a per-head temperature, not the same for every head
    x, ctx = torch.randn(2, 6, 16), torch.randn(2, 9, 16)
    kw = dict(ctx=ctx) if mode == "cross" else dict(causal=mode == "causal")
    (fused, none), (manual, w) = attn(x, **kw), attn(x, need_weights=True, **kw)
    assert none is None and torch.allclose(fused, manual, atol=1e-5), f"max diff {(fused - manual).abs().max():.2e}"
    assert w.shape == (2, 4, 6, 9 if mode == "cross" else 6)
    assert torch.allclose(w.sum(-1), torch.ones(2, 4, 6), atol=1e-6)
    if mode == "causal":
        past = torch.ones(6, 6, dtype=torch.bool).tril()
        assert (w[..., ~past] == 0).all() and (w[..., past] > 0).all(), "causal self-attention looked ahead"


def reference_greedy(model: NextNum, img: torch.Tensor) -> torch.Tensor:
    """Greedy decoding that recomputes the whole prefix at each step, with no cache."""
    ctx, _ = model.encoder(img)
    seq, done, out = torch.full((len(img), 1), BOS), torch.zeros(len(img), dtype=torch.bool), []
    for step in range(model.cfg.max_digits + 1):
        logits = model.decode(seq, ctx)[0][:, -1].clone()
        logits[:, [BOS, PAD] + ([EOS] if step == 0 else [])] = float("-inf")  # at least one digit
        if step == model.cfg.max_digits:
            logits[:, :EOS] = float("-inf")  # at most max_digits
        out.append(torch.where(done, PAD, logits.argmax(-1)))
        done |= out[-1] == EOS
        if done.all():
            break
        seq = torch.cat([seq, out[-1][:, None]], 1)
    return torch.stack(out, 1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cached_generate_matches_recomputation(seed):
    model = make("smoke", big=True, seed=seed)
    with torch.no_grad():
        expected = reference_greedy(model, img := canvases(model, 8))
    assert len(set(map(tuple, expected.tolist()))) > 1, "every canvas reads the same: test has no power"
    g = model.generate(img)
    assert torch.equal(g.tokens, expected)
    assert all(1 <= len(t) <= model.cfg.max_digits for t in g.texts())


@pytest.mark.parametrize("favour", [EOS, 3])
def test_generate_reads_one_to_max_digits(favour):
    model = make("smoke")
    with torch.no_grad():
        model.head.bias[favour] = 50.0  # the model would say this at every step if allowed
    g, want = model.generate(canvases(model)), 1 if favour == EOS else model.cfg.max_digits
    assert [len(t) for t in g.texts()] == [want] * 3
    assert (g.tokens[:, want] == EOS).all() and g.tokens.shape[1] == want + 1


def test_cached_chunk_matches_full_sequence():
    attn, x, cache = Attention(16, 4), torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(0)), {}
    attn(x[:, :3], causal=True, cache=cache)
    chunk, _ = attn(x[:, 3:], causal=True, cache=cache)
    assert torch.allclose(chunk, attn(x, causal=True)[0][:, 3:], atol=1e-5)


def test_adapt_positions_resizes_the_grid_and_keeps_everything_else():
    from nextnum.warmstart import adapt_positions
    cfg = Config.load(CONFIGS / "default.json")
    torch.manual_seed(0)
    coarse = NextNum(cfg.model)
    fine_cfg = Config.load(CONFIGS / "default.json")
    fine_cfg.model.stride = 2
    fine = NextNum(fine_cfg.model)
    state = coarse.state_dict()
    adapted = adapt_positions(state, fine)
    fine.load_state_dict(adapted)  # strict: every shape now fits
    assert state["encoder.pos_row"].shape[0] != adapted["encoder.pos_row"].shape[0]
    for end in (0, -1):  # the ends of each axis stay where they were, in between is interpolated
        torch.testing.assert_close(adapted["encoder.pos_row"][end], state["encoder.pos_row"][end])
        torch.testing.assert_close(adapted["encoder.pos_col"][:, end], state["encoder.pos_col"][:, end])
    for k in state:
        if "pos_" not in k:
            assert torch.equal(adapted[k], state[k])
    assert adapt_positions(state, coarse).keys() == state.keys()
    assert all(torch.equal(v, state[k]) for k, v in adapt_positions(state, coarse).items())


def test_a_deepened_encoder_reads_exactly_as_the_shallower_one_and_its_new_blocks_can_learn():
    from nextnum.warmstart import deepen
    cfg = Config.load(CONFIGS / "default.json")
    torch.manual_seed(0)
    shallow = NextNum(cfg.model).eval()
    for p in shallow.parameters():  # weights unlike any initialisation, so that a block left in would show
        p.data.add_(0.05 * torch.randn_like(p))
    deep_cfg = Config.load(CONFIGS / "default.json")
    deep_cfg.model.enc_layers = cfg.model.enc_layers + 2
    deep = NextNum(deep_cfg.model).eval()
    state = deepen(shallow.state_dict(), deep)
    deep.load_state_dict(state)  # strict: every block of the deeper model has its weights
    img = torch.rand(3, 1, cfg.model.img_h, cfg.model.img_w)
    a, b = shallow.generate(img, return_attn=True), deep.generate(img, return_attn=True)
    assert torch.equal(a.tokens, b.tokens)
    torch.testing.assert_close(b.probs, a.probs, rtol=0, atol=1e-6)
    assert b.enc_attn.shape[1] == a.enc_attn.shape[1] + 2
    torch.testing.assert_close(shallow.encoder(img)[0], deep.encoder(img)[0], rtol=0, atol=1e-5)
    new = [k for k in state if k.startswith(f"encoder.blocks.{cfg.model.enc_layers}.")]
    assert new and all(torch.equal(state[k], deep.state_dict()[k]) for k in new)
    assert not state[f"encoder.blocks.{cfg.model.enc_layers}.mlp.2.weight"].any()
    assert state[f"encoder.blocks.{cfg.model.enc_layers}.mlp.0.weight"].any()  # not all zero: it can learn
    deep.train()
    deep(img, torch.zeros(3, 2, dtype=torch.long)).sum().backward()
    assert deep.encoder.blocks[-1].mlp[2].weight.grad.abs().sum() > 0


def test_blur_is_a_fixed_normalised_kernel_outside_the_weights():
    from nextnum.model import gaussian_kernel
    k = gaussian_kernel(0.7)
    assert k.shape == (1, 1, 5, 5) and torch.allclose(k.sum(), torch.tensor(1.0))
    assert torch.equal(k, k.flip(-1)) and torch.equal(k, k.transpose(-1, -2))
    cfg = Config.load("configs/default.json").model
    plain = NextNum(cfg)
    cfg.blur = 0.7
    blurred = NextNum(cfg)
    assert plain.encoder.blur is None and "encoder.blur" not in blurred.state_dict()
    blurred.load_state_dict(plain.state_dict())  # a checkpoint without blur fine-tunes into one with it
    assert blurred.num_params() == plain.num_params()

