"""POPDG's options for the GCDance denoiser (issue 14): learned variance, DS-Attention, Alignment Module.

Tiny configurations; the training tests run the real ``train_denoiser`` on a tiny window cache written from
a real procedural dance, and load the run back through ``load_run`` and ``DancePipeline.from_pretrained``.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from encoders.errors import DanceSearchError
from generation.diffusion.denoiser import GCDanceDenoiser
from generation.diffusion.popdg import (AlignmentModule, DSAttention, body_parents, joint_levels, saa_matrix,
                                        space_augment, stochastic_step, vlb_loss, vlb_terms)
from generation.diffusion.popdg.learned_variance import model_log_variance
from generation.diffusion.sampling import ddim_sample
from generation.diffusion.schedule import DDIMScheduler
from generation.representation import FEATURE_DIM, LAYOUT
from tiny_denoiser import TINY_DENOISER, tiny_denoiser_config

OPTIONS = ("learned_variance", "ds_attention", "alignment_module", "genre_token")


def _model(seed: int = 0, open_gates: bool = False, **options: bool) -> GCDanceDenoiser:
    torch.manual_seed(seed)
    model = GCDanceDenoiser(tiny_denoiser_config(**options))
    if open_gates:      # a "trained" model: the zero-initialised gates (FiLM, alignment, variance head) opened
        gen = torch.Generator().manual_seed(seed + 100)
        for name, p in model.named_parameters():
            if any(k in name for k in ("to_gamma", "to_beta", "to_cond", "variance_head")) and p.ndim >= 1:
                with torch.no_grad():
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return model


def _inputs(b: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, 16, FEATURE_DIM, generator=g), torch.randint(0, 1000, (b,), generator=g),
            torch.randn(b, 16, 35, generator=g), torch.randn(b, 8, generator=g))


# ---------------------------------------------------------------- learned variance (POPDG 4.1, iDDPM)

def test_learned_variance_lies_between_the_posterior_variance_and_beta() -> None:
    model = _model(open_gates=True, learned_variance=True).eval()
    x, _, music, genre = _inputs(4)
    sched = DDIMScheduler()
    for t in (0, 1, 10, 300, 999):
        steps = torch.full((4,), t)
        with torch.no_grad():
            x0, v = model(x, steps, music, genre, return_variance=True)
        assert x0.shape == v.shape == (4, 16, FEATURE_DIM)
        assert float(v.min()) >= 0.0 and float(v.max()) <= 1.0 and float(v.std()) > 0.01   # the head is open
        terms = sched.posterior(steps, steps - 1)
        var = model_log_variance(terms, v.double()).exp()
        lo, hi = float(terms["log_beta_tilde"][0].exp()), float(terms["beta"][0])
        assert lo < hi
        assert float(var.min()) >= lo * (1 - 1e-9) and float(var.max()) <= hi * (1 + 1e-9)
        # the ends of the interpolation are the two fixed choices of DDPM
        torch.testing.assert_close(model_log_variance(terms, torch.zeros(1, 1, 1)).exp().flatten(),
                                   terms["log_beta_tilde"].exp().float())
        torch.testing.assert_close(model_log_variance(terms, torch.ones(1, 1, 1)).exp().flatten(),
                                   terms["beta"].float())
    # an untrained head starts half way (v = 0.5); the default forward still returns x0 alone
    fresh = _model(learned_variance=True).eval()
    assert torch.all(fresh(x, torch.full((4,), 5), music, genre, return_variance=True)[1] == 0.5)
    assert isinstance(fresh(x, torch.full((4,), 5), music, genre), torch.Tensor)
    with pytest.raises(DanceSearchError, match="learned_variance"):
        _model()(x, torch.full((4,), 5), music, genre, return_variance=True)


def test_vlb_is_zero_for_a_perfect_mean_with_the_posterior_variance_and_respacing_is_ddim_eta_1() -> None:
    sched = DDIMScheduler()
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(3, 16, 7, generator=g)
    t = torch.tensor([1, 400, 999])
    xt = sched.add_noise(x0, torch.randn(x0.shape, generator=g), t)
    kl = vlb_terms(sched, x0, xt, t, x0, torch.zeros_like(x0))           # v = 0: sigma^2 = beta~, mean exact
    torch.testing.assert_close(kl, torch.zeros(3), atol=1e-6, rtol=0)
    assert bool((vlb_terms(sched, x0, xt, t, x0 + 0.1, torch.zeros_like(x0)) > 0).all())
    # the respaced posterior (t = 600 -> 350) is DDIM's eta = 1 update
    a_t, a_p = sched.alphas_cumprod_f64[600], sched.alphas_cumprod_f64[350]
    x0d, xtd = x0.double(), sched.add_noise(x0, torch.randn(x0.shape, generator=g), torch.full((3,), 600)).double()
    terms = sched.posterior(torch.tensor([600]), torch.tensor([350]))
    sigma2 = (1 - a_p) / (1 - a_t) * (1 - a_t / a_p)
    eps = (xtd - a_t.sqrt() * x0d) / (1 - a_t).sqrt()
    torch.testing.assert_close(terms["coef_x0"] * x0d + terms["coef_xt"] * xtd,
                               a_p.sqrt() * x0d + (1 - a_p - sigma2).sqrt() * eps)
    torch.testing.assert_close(terms["beta_tilde"][0], sigma2)
    # the step's noise has the respaced variance: beta~ for v = 0, beta = 1 - a_t / a_t' for v = 1
    zeros = torch.zeros(1, 100, 200)
    for v, want in ((torch.zeros_like(zeros), sigma2), (torch.ones_like(zeros), 1 - a_t / a_p)):
        out = stochastic_step(sched, zeros, 600, 350, zeros, v, torch.Generator().manual_seed(1))
        assert abs(float(out.var()) / float(want) - 1) < 0.03
    assert torch.equal(stochastic_step(sched, x0, 5, None, xt, None), x0)          # the final step returns x0
    with pytest.raises(DanceSearchError, match="t_prev"):
        sched.posterior(torch.tensor([3]), torch.tensor([3]))


def test_vlb_trains_the_variance_only_and_decreases_on_a_tiny_set() -> None:
    sched = DDIMScheduler()
    model = _model(learned_variance=True)
    x0, _, music, genre = _inputs(6, seed=3)
    x0 = x0 * 0.3
    t = torch.tensor([0, 3, 40, 200, 600, 950])
    xt = sched.add_noise(x0, torch.randn(x0.shape, generator=torch.Generator().manual_seed(4)), t)
    pred, v = model(xt, t, music, genre, return_variance=True)
    loss = vlb_loss(sched, x0, xt, t, pred, v)
    assert torch.isfinite(loss)
    # the mean path gets no gradient from L_vlb: not the prediction, not the layers only the mean uses
    assert torch.autograd.grad(loss, pred, retain_graph=True, allow_unused=True)[0] is None
    loss.backward()
    for name, p in model.named_parameters():
        if name.startswith(("body.out", "body.up", "hand.out", "hand.up")):
            assert p.grad is None or float(p.grad.abs().max()) == 0.0, name
    assert float(model.variance_head.body[1].weight.grad.abs().max()) > 0
    # a few steps on L_vlb alone lower it
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = float(loss.detach())
    for _ in range(12):
        pred, v = model(xt, t, music, genre, return_variance=True)
        loss = vlb_loss(sched, x0, xt, t, pred, v)
        opt.zero_grad()
        loss.backward()
        opt.step()
    pred, v = model(xt, t, music, genre, return_variance=True)
    last = float(vlb_loss(sched, x0, xt, t, pred, v).detach())
    assert np.isfinite(last) and last < first - 0.05 * abs(first), (first, last)


def test_stochastic_sampling_is_seeded_and_ddim_stays_the_default() -> None:
    model = _model(open_gates=True, learned_variance=True)
    sched = DDIMScheduler()
    _, _, music, genre = _inputs(2)

    def run(seed: int, **kw) -> torch.Tensor:
        return ddim_sample(model, sched, music, genre, steps=4, guidance=2.0,
                           generator=torch.Generator().manual_seed(seed), **kw)

    a, b, c = run(1, variance="learned"), run(1, variance="learned"), run(2, variance="learned")
    assert torch.equal(a, b) and not torch.allclose(a, c) and torch.isfinite(a).all()
    ddim = run(1)
    assert torch.equal(ddim, run(1, variance="ddim")) and not torch.allclose(ddim, a)
    fixed = run(1, variance="fixed")
    assert not torch.allclose(fixed, a) and torch.equal(fixed, run(1, variance="fixed"))
    with pytest.raises(DanceSearchError, match="learned_variance=True"):
        ddim_sample(_model(), sched, music, genre, steps=2, variance="learned")
    with pytest.raises(DanceSearchError, match="unknown sampling variance"):
        ddim_sample(_model(), sched, music, genre, steps=2, variance="eta")


# ---------------------------------------------------------------- DS-Attention (POPDG 4.2.1)

def test_space_augmentation_matches_a_hand_computed_four_joint_chain() -> None:
    parents = [-1, 0, 1, 2]                                   # root - 1 - 2 - 3
    attn = torch.tensor([[0.10, 0.20, 0.30, 0.40],
                         [0.50, 0.10, 0.20, 0.20],
                         [0.30, 0.30, 0.20, 0.20],
                         [0.25, 0.25, 0.25, 0.25]])
    halved = torch.tensor([[0.10, 0.20, 0.25, 0.325],       # A02 = (.3 + A01) / 2; A03 = (.4 + A02') / 2
                           [0.50, 0.10, 0.20, 0.20],
                           [0.40, 0.30, 0.20, 0.20],         # A20 = (.3 + A10) / 2
                           [0.325, 0.25, 0.25, 0.25]])       # A30 = (.25 + A20') / 2
    summed = torch.tensor([[0.10, 0.20, 0.50, 0.90],
                           [0.50, 0.10, 0.20, 0.20],
                           [0.80, 0.30, 0.20, 0.20],
                           [1.05, 0.25, 0.25, 0.25]])
    torch.testing.assert_close(space_augment(attn, saa_matrix(parents)), halved)
    torch.testing.assert_close(space_augment(attn, saa_matrix(parents, halve=False)), summed)
    batched = space_augment(attn.expand(2, 3, 4, 4), saa_matrix(parents))          # any leading dims
    torch.testing.assert_close(batched, halved.expand(2, 3, 4, 4))
    # the SMPL-X body: the left wrist (level 7) receives the spine's connection through six halvings
    levels = joint_levels(body_parents())
    assert (levels[0], levels[3], levels[20], levels[15]) == (0, 1, 7, 5)
    s = saa_matrix(body_parents())
    assert float(s[3, 20]) == pytest.approx(1 / 64) and float(s[20, 20]) == 0.5 and float(s[1, 20]) == 0.0
    assert torch.equal(s[:, 1], torch.eye(22)[:, 1])          # level-1 joints (parent = root) are unchanged


def test_ds_attention_is_per_token_and_only_in_the_body_expert() -> None:
    torch.manual_seed(0)
    ds = DSAttention(32).eval()
    x = torch.randn(2, 5, 32)
    y = ds(x)
    assert y.shape == (2, 5, 32) and ds.attention(x).shape == (2, 5, 1, 22, 22)
    assert DSAttention(32, heads=2).attention(x).shape == (2, 5, 2, 22, 22)
    x2 = x.clone()
    x2[:, 2] += torch.randn(2, 32)                             # (not a constant: the layer norm would remove it)
    d = (ds(x2) - y).detach().abs().amax(dim=(0, 2))
    assert float(d[2]) > 1e-4 and float(d[[0, 1, 3, 4]].max()) == 0.0           # joints, not time
    model = _model(open_gates=True, ds_attention=True).eval()
    base = _model()
    extra = set(model.state_dict()) - set(base.state_dict())
    assert extra and all(k.startswith("body.blocks.") and ".spatial." in k for k in extra)
    assert all(block.spatial is None for block in model.hand.blocks)
    x, t, music, genre = _inputs()
    out = model(x, t, music, genre)
    assert out.shape == (2, 16, FEATURE_DIM)
    xh = x.clone()
    xh[..., LAYOUT.hand_rotations] += 1.0                      # the body expert still never sees the hands
    body = slice(0, LAYOUT.body_rotations.stop)
    torch.testing.assert_close(model(xh, t, music, genre)[..., body], out[..., body])
    # the spatial layer is used: changing it changes the body's prediction
    with torch.no_grad():
        model.body.blocks[0].spatial.out.bias.add_(0.5)
    assert not torch.allclose(model(x, t, music, genre)[..., body], out[..., body])


# ---------------------------------------------------------------- Alignment Module (POPDG 4.3)

def test_alignment_module_starts_as_the_plain_model_and_follows_music_and_dance() -> None:
    x, t, music, genre = _inputs()
    plain = _model(open_gates=True).eval()
    aligned = _model(open_gates=True, alignment_module=True).eval()
    with torch.no_grad():                                      # as built: the module's last layer is zero
        aligned.alignment.to_cond.weight.zero_()
        aligned.alignment.to_cond.bias.zero_()
    for k, v in plain.state_dict().items():                    # the option leaves the base model's init alone
        torch.testing.assert_close(aligned.state_dict()[k], v)
    torch.testing.assert_close(aligned(x, t, music, genre), plain(x, t, music, genre))     # to_cond starts at 0
    with torch.no_grad():
        torch.nn.init.normal_(aligned.alignment.to_cond.weight, std=0.5)
    out = aligned(x, t, music, genre)
    assert out.shape == (2, 16, FEATURE_DIM) and not torch.allclose(out, plain(x, t, music, genre))
    # the module itself: its correction moves with the music and with the dance
    module = aligned.alignment
    dance, tokens, cond = torch.randn(2, 4, 32), torch.randn(2, 4, 32), torch.randn(2, 32)
    base = module(dance, tokens, cond)
    assert base.shape == (2, 32)
    assert not torch.allclose(module(dance, tokens + torch.randn(2, 4, 32), cond), base)
    assert not torch.allclose(module(dance + torch.randn(2, 4, 32), tokens, cond), base)
    # and it respects classifier-free guidance: with the music dropped, the music does not matter
    drop = torch.ones(2, dtype=torch.bool)
    other = torch.randn_like(music)
    torch.testing.assert_close(aligned(x, t, music, genre, drop_music=drop), aligned(x, t, other, genre, drop_music=drop))
    assert not torch.allclose(aligned(x, t, other, genre), out)
    assert isinstance(AlignmentModule(16), AlignmentModule)


# ---------------------------------------------------------------- training, run directory, recipe, old runs
# (``tiny_store``: tests/conftest.py)

@pytest.mark.parametrize("option", OPTIONS)
def test_each_option_trains_saves_loads_and_samples(option: str, tiny_store, tmp_path) -> None:
    from generation.diffusion.pipeline import DancePipeline
    from generation.diffusion.recipe import build_configs
    from generation.diffusion.run_dir import load_run
    from generation.diffusion.train import TrainConfig, train_denoiser

    # the recipe file names the option like any other denoiser field
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"denoiser": {**TINY_DENOISER, option: True}}))
    from generation.diffusion.recipe import load_recipe
    denoiser, _ = build_configs(load_recipe(recipe))
    assert getattr(denoiser, option) and sum(getattr(denoiser, o) for o in OPTIONS) == 1
    emb = np.random.default_rng(0).normal(size=(2, 8)).astype(np.float32)
    config = TrainConfig(steps=3, batch_size=4, eval_every=3, val_windows=4, num_threads=1, warmup_steps=1)
    result = train_denoiser(tiny_store, tmp_path / "run", denoiser, config, progress=False, embeddings=(emb, "test"))
    assert result["steps"] == 3 and np.isfinite(result["best_val_simple"])
    row = result["history"][-1]
    assert ("train_vlb" in row) == (option == "learned_variance")
    if option == "learned_variance":
        assert np.isfinite(row["train_vlb"])
    raw = json.loads((tmp_path / "run" / "config.json").read_text())
    assert raw["denoiser"][option] is True and raw["train"]["vlb_weight"] == 0.001
    model, _, genres, _, _ = load_run(tmp_path / "run")
    assert getattr(model.config, option) and genres == ["popping", "waltz"]
    pipe = DancePipeline.from_pretrained(tmp_path / "run")
    music = np.random.default_rng(1).normal(size=(24, 35)).astype(np.float32)
    a = pipe(music, "waltz", seed=2, steps=3)
    assert a.record.num_frames == 24 and np.isfinite(a.record.positions).all()
    s1, s2 = pipe(music, "waltz", seed=2, steps=3, stochastic=True), pipe(music, "waltz", seed=2, steps=3, stochastic=True)
    np.testing.assert_array_equal(s1.record.positions, s2.record.positions)
    assert not np.allclose(s1.record.positions, a.record.positions)
    assert pipe.variance(True) == ("learned" if option == "learned_variance" else "fixed")


def test_runs_saved_without_the_option_keys_load_and_sample_as_before(tmp_path) -> None:
    from generation.diffusion.pipeline import DancePipeline
    from generation.diffusion.run_dir import save_run
    from generation.representation import Normalizer

    model = _model(open_gates=True)
    assert not any(k.startswith(("alignment", "variance_head", "genre_token")) or ".spatial." in k
                   for k in model.state_dict())
    norm = Normalizer(np.zeros(FEATURE_DIM), np.full(FEATURE_DIM, 0.2), 1)
    emb = np.random.default_rng(0).normal(size=(2, 8)).astype(np.float32)
    run = save_run(tmp_path / "run", model, model.state_dict(), norm, ["popping", "waltz"], emb, {"steps": 0}, "test",
                   [], {})
    music = np.random.default_rng(1).normal(size=(24, 35)).astype(np.float32)
    before = DancePipeline.from_pretrained(run)(music, "waltz", seed=1, steps=3).record.positions
    raw = json.loads((run / "config.json").read_text())
    for key in OPTIONS:                                        # a run written before the options existed
        del raw["denoiser"][key]
    (run / "config.json").write_text(json.dumps(raw))
    pipe = DancePipeline.from_pretrained(run)
    assert not any(getattr(pipe.model.config, o) for o in OPTIONS)
    np.testing.assert_array_equal(pipe(music, "waltz", seed=1, steps=3).record.positions, before)


def test_the_v8_recipe_is_the_shipped_one_with_ds_attention() -> None:
    """docs/results/generation.md compares v8 with v7 as one change: DS-attention."""
    from pathlib import Path

    from generation.diffusion.recipe import load_recipe

    recipes = Path(__file__).resolve().parents[1] / "generation" / "diffusion" / "recipes"
    v8, v7 = load_recipe(recipes / "cpu_v8.json"), load_recipe(recipes / "cpu.json")
    assert v8["denoiser"].pop("ds_attention") is True
    assert v8 == v7
