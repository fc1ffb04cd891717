"""The frozen genre critic and its training loss (issue 14: making the genre prompt decide the dance's style)."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import torch

from generation.diffusion.genre_critic import CriticConfig, GenreCritic, critic_loss, fit_genre_critic
from generation.representation import FEATURE_DIM
from tiny_denoiser import TINY_DENOISER, tiny_denoiser_config


def test_the_critic_learns_the_genres_and_comes_back_frozen(tiny_store) -> None:
    normalizer = tiny_store.fit_normalizer("train")
    critic, report = fit_genre_critic(tiny_store, normalizer, CriticConfig(width=32, epochs=40, batch_size=4),
                                      progress=False)
    assert report["train_accuracy"] >= 0.9                    # popping and waltz windows told apart
    assert report["val_accuracy"] is not None and 0.0 <= report["val_accuracy"] <= 1.0
    assert not critic.training and not any(p.requires_grad for p in critic.parameters())


def test_fitting_the_critic_leaves_the_global_random_stream_alone(tiny_store) -> None:
    """The denoiser's noise, steps and dropped conditions must still follow TrainConfig.seed, not the critic's."""
    normalizer = tiny_store.fit_normalizer("train")
    torch.manual_seed(123)
    expected = torch.rand(5)
    torch.manual_seed(123)
    fit_genre_critic(tiny_store, normalizer, CriticConfig(width=8, epochs=1, batch_size=4), progress=False)
    torch.testing.assert_close(torch.rand(5), expected)


def test_a_passed_deadline_stops_the_fit_after_one_epoch(tiny_store) -> None:
    import time

    normalizer = tiny_store.fit_normalizer("train")
    config = CriticConfig(width=8, epochs=5, batch_size=4)
    _, late = fit_genre_critic(tiny_store, normalizer, config, progress=False, deadline=time.perf_counter() - 1)
    _, free = fit_genre_critic(tiny_store, normalizer, config, progress=False)
    assert late["epochs_run"] == 1 and free["epochs_run"] == 5
    assert late["cut_short"] and not free["cut_short"]
    assert late["members"] == {"features": {"epochs": 5, "epochs_run": 1}}
    # with both critics, each stops after its first epoch; the report says which were cut and how far
    _, both = fit_genre_critic(tiny_store, normalizer, CriticConfig(width=8, epochs=3, posture_epochs=4, batch_size=4,
                                                                    kind="both"),
                               progress=False, deadline=time.perf_counter() - 1)
    assert both["cut_short"] and both["epochs_run"] == 2
    assert {k: (m["epochs"], m["epochs_run"]) for k, m in both["members"].items()} == {"features": (3, 1),
                                                                                        "posture": (4, 1)}


def test_critic_loss_weights_by_signal_skips_dropped_genres_and_reaches_the_prediction() -> None:
    torch.manual_seed(0)
    critic = GenreCritic(FEATURE_DIM, 3, width=16).eval()
    for p in critic.parameters():
        p.requires_grad_(False)
    x0 = torch.randn(4, 16, FEATURE_DIM, requires_grad=True)
    genre = torch.tensor([0, 1, 2, 0])
    ones, keep = torch.ones(4), torch.ones(4, dtype=torch.bool)
    ce = torch.nn.functional.cross_entropy(critic(x0), genre, reduction="none")
    torch.testing.assert_close(critic_loss(critic, x0, genre, ones, keep), ce.mean())
    # a_t halves the loss; windows whose genre was dropped for guidance do not count
    torch.testing.assert_close(critic_loss(critic, x0, genre, 0.5 * ones, keep), 0.5 * ce.mean())
    part = torch.tensor([True, False, False, True])
    torch.testing.assert_close(critic_loss(critic, x0, genre, ones, part), ce[part].mean())
    assert critic_loss(critic, x0, genre, ones, torch.zeros(4, dtype=torch.bool)).item() == 0.0
    critic_loss(critic, x0, genre, ones, keep).backward()
    assert x0.grad is not None and x0.grad.abs().sum() > 0   # the gradient reaches the denoiser's output
    # following the gradient makes the critic more sure of the requested genre
    with torch.no_grad():
        before = critic_loss(critic, x0, genre, ones, keep)
        after = critic_loss(critic, x0 - 0.5 * x0.grad / x0.grad.norm(), genre, ones, keep)
    assert after < before


def test_training_with_the_critic_logs_its_loss_and_records_it_in_the_run(tiny_store, tmp_path) -> None:
    from generation.diffusion.denoiser import DenoiserConfig
    from generation.diffusion.recipe import build_configs, load_recipe
    from generation.diffusion.train import train_denoiser

    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({
        "denoiser": dict(TINY_DENOISER),
        "train": {"steps": 3, "batch_size": 4, "eval_every": 3, "val_windows": 4, "num_threads": 1,
                  "warmup_steps": 1, "genre_loss_weight": 0.5, "critic_epochs": 2}}))
    denoiser, config = build_configs(load_recipe(recipe))
    assert isinstance(denoiser, DenoiserConfig) and config.genre_loss_weight == 0.5
    emb = np.random.default_rng(0).normal(size=(2, 8)).astype(np.float32)
    result = train_denoiser(tiny_store, tmp_path / "run", denoiser, config, progress=False, embeddings=(emb, "test"))
    assert np.isfinite(result["history"][-1]["train_genre"])
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["train"]["genre_loss_weight"] == 0.5
    assert saved["data"]["genre_critic"]["config"]["epochs"] == 2 and saved["data"]["genre_critic"]["epochs_run"] == 2
    # a budget the critic alone would overrun: its fit stops after one epoch, and the run records it
    cut = train_denoiser(tiny_store, tmp_path / "cut", denoiser, dataclasses.replace(config, minutes=1e-6),
                         progress=False, embeddings=(emb, "test"))
    assert cut["steps"] == 0
    assert json.loads((tmp_path / "cut" / "config.json").read_text())["data"]["genre_critic"]["epochs_run"] == 1
    # without the weight no critic is fitted and no genre loss is logged
    plain = train_denoiser(tiny_store, tmp_path / "plain", denoiser, dataclasses.replace(config, genre_loss_weight=0.0),
                           progress=False, embeddings=(emb, "test"))
    assert "train_genre" not in plain["history"][-1]
    # both critics, and the critic on the denoiser's own chains: logged as its own loss, members recorded
    both = train_denoiser(tiny_store, tmp_path / "both", denoiser,
                          dataclasses.replace(config, critic_kind="both", sampled_critic_weight=0.5, steps=4,
                                              eval_every=4, sampled_critic_every=2, sampled_critic_windows=2,
                                              posture_critic_epochs=3),
                          progress=False, embeddings=(emb, "test"))
    assert np.isfinite(both["history"][-1]["train_sampled_genre"])
    members = json.loads((tmp_path / "both" / "config.json").read_text())["data"]["genre_critic"]["members"]
    assert members["features"]["epochs"] == 2 and members["posture"] == {**members["posture"], "epochs": 3,
                                                                          "epochs_run": 3}
    assert np.isfinite(json.loads((tmp_path / "both" / "history.json").read_text())[0]["train_sampled_genre"])
    assert json.loads((tmp_path / "plain" / "config.json").read_text())["data"]["genre_critic"] is None


def test_a_loss_computed_every_other_step_is_logged_as_its_own_mean(tiny_store, tmp_path, monkeypatch) -> None:
    """The sampled-critic loss runs every sampled_critic_every steps: its logged value is the mean over the
    steps that computed it (dividing by eval_every would halve it here)."""
    import generation.diffusion.train as train_module
    from generation.diffusion.recipe import build_configs

    monkeypatch.setattr(train_module, "sampled_critic_loss",
                        lambda model, *args: next(model.parameters()).sum() * 0.0 + 1.0)
    denoiser, config = build_configs({"denoiser": dict(TINY_DENOISER), "train": {
        "steps": 4, "batch_size": 4, "eval_every": 4, "val_windows": 4, "num_threads": 1, "warmup_steps": 1,
        "genre_loss_weight": 0.5, "critic_epochs": 1, "sampled_critic_weight": 0.5, "sampled_critic_every": 2}})
    emb = np.random.default_rng(0).normal(size=(2, 8)).astype(np.float32)
    result = train_module.train_denoiser(tiny_store, tmp_path / "run", denoiser, config, progress=False,
                                         embeddings=(emb, "test"))
    assert result["history"][-1]["train_sampled_genre"] == 1.0


def test_posture_statistics_read_posture_range_and_speed() -> None:
    from generation.diffusion.posture_critic import posture_statistics
    from generation.representation.layout import FPS

    j = 4
    still = torch.zeros(1, 10, j, 3)
    still[:, :, 1:, 1] = torch.arange(1, j).float()                # joints stacked above the root, not moving
    s = posture_statistics(still)
    assert s.shape == (1, 7 * j)
    torch.testing.assert_close(s[0, :3 * j].reshape(j, 3)[:, 1], torch.arange(j).float())   # mean posture
    assert s[0, 3 * j:].abs().max() == 0                               # no spread, no speed
    walked = still + torch.linspace(0, 0.9, 10).reshape(1, 10, 1, 1) * torch.tensor([1.0, 0.0, 0.0])
    w = posture_statistics(walked)
    torch.testing.assert_close(w[0, :6 * j], s[0, :6 * j])            # posture is root-relative
    torch.testing.assert_close(w[0, 6 * j:], torch.full((j,), 0.1 * FPS))   # 0.1 m per frame at 30 fps
    swing = still.clone()
    swing[:, ::2, 3, 0] = 0.5                                          # one joint swinging sideways
    sw = posture_statistics(swing)
    assert sw[0, 3 * j + 9] > 0 and sw[0, 6 * j + 3] > 0 and sw[0, 6 * j + 1] == 0


def test_the_posture_critic_tells_the_genres_apart_and_passes_gradients_to_the_motion(tiny_store) -> None:
    normalizer = tiny_store.fit_normalizer("train")
    critic, report = fit_genre_critic(tiny_store, normalizer, CriticConfig(kind="posture", width=16, posture_epochs=60,
                                                                           batch_size=4), progress=False)
    assert report["train_accuracy"] >= 0.9 and report["epochs_run"] == 60 and not report["cut_short"]
    window = torch.as_tensor(normalizer.normalise(tiny_store.window("val", 0).motion), dtype=torch.float32)[None]
    window.requires_grad_(True)
    critic(window)[0, 0].backward()
    assert window.grad is not None and window.grad.abs().sum() > 0    # through the FK, to the rotations


def test_both_critics_judge_together_as_a_product_of_experts(tiny_store) -> None:
    from generation.diffusion.genre_critic import CriticEnsemble

    normalizer = tiny_store.fit_normalizer("train")
    critic, report = fit_genre_critic(tiny_store, normalizer, CriticConfig(kind="both", width=16, epochs=2,
                                                                           posture_epochs=3, batch_size=4),
                                      progress=False)
    assert isinstance(critic, CriticEnsemble) and len(critic.members) == 2
    assert report["members"]["features"]["epochs_run"] == 2 and report["members"]["posture"]["epochs_run"] == 3
    x = torch.randn(3, 16, FEATURE_DIM)
    expected = sum(torch.log_softmax(m(x), -1) for m in critic.members)
    torch.testing.assert_close(critic(x), expected)


def test_unknown_critic_kinds_and_a_sampled_loss_without_a_critic_are_refused() -> None:
    import pytest

    from encoders.errors import DanceSearchError
    from generation.diffusion.train import TrainConfig

    with pytest.raises(DanceSearchError, match="critic kind"):
        CriticConfig(kind="posterior")
    with pytest.raises(DanceSearchError, match="critic_kind"):
        TrainConfig(critic_kind="posterior")
    with pytest.raises(DanceSearchError, match="genre_loss_weight"):
        TrainConfig(sampled_critic_weight=0.1)
    with pytest.raises(DanceSearchError, match=">= 1"):
        TrainConfig(genre_loss_weight=0.1, sampled_critic_weight=0.1, sampled_critic_steps=0)


def test_the_sampled_critic_loss_trains_the_denoiser_through_its_own_chain() -> None:
    from generation.diffusion.denoiser import GCDanceDenoiser
    from generation.diffusion.sampled_critic import sampled_critic_loss
    from generation.diffusion.schedule import DDIMScheduler

    torch.manual_seed(0)
    model = GCDanceDenoiser(tiny_denoiser_config()).eval()       # no dropout: chains comparable
    critic = GenreCritic(FEATURE_DIM, 3, width=16).eval()
    for p in critic.parameters():
        p.requires_grad_(False)
    music, table = torch.randn(4, 16, 35), torch.randn(3, 8)
    losses = [sampled_critic_loss(model, DDIMScheduler(), critic, music, table, 4, torch.Generator().manual_seed(s))
              for s in (1, 1, 2)]
    torch.testing.assert_close(losses[0], losses[1])                  # same generator seed, same chain
    assert losses[0].ndim == 0 and torch.isfinite(losses[0])
    losses[0].backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and sum(float(g.abs().sum()) for g in grads) > 0
    # the chain runs without gradient and only the prediction at the stop step with it; stops cover the chain
    calls: list[bool] = []
    forward = model.forward

    def recording(*args, **kwargs):
        calls.append(torch.is_grad_enabled())
        return forward(*args, **kwargs)

    model.forward = recording
    lengths = set()
    for s in range(24):
        calls.clear()
        sampled_critic_loss(model, DDIMScheduler(), critic, music, table, 4, torch.Generator().manual_seed(s))
        assert calls[-1] is True and not any(calls[:-1])
        lengths.add(len(calls))
    model.forward = forward
    assert lengths == {1, 2, 3, 4}                 # a stop at the first step and one at the last both occur
    # the loss leaves torch's global random stream alone (its draws come from the generator given, and dropout
    # is off in the chain even for a model with dropout, in training mode)
    noisy = GCDanceDenoiser(tiny_denoiser_config(dropout=0.3)).train()
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    sampled_critic_loss(noisy, DDIMScheduler(), critic, music, table, 4, torch.Generator().manual_seed(0))
    torch.testing.assert_close(torch.rand(3), expected)
    assert noisy.training                          # the caller's mode is restored
    # a few steps on this loss alone make the critic more sure of the drawn genres
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    def total() -> float:
        with torch.no_grad():
            return float(sum(sampled_critic_loss(model, DDIMScheduler(), critic, music, table, 4,
                                                 torch.Generator().manual_seed(s)) for s in range(8)))

    before = total()
    for s in range(60):
        loss = sampled_critic_loss(model, DDIMScheduler(), critic, music, table, 4,
                                   torch.Generator().manual_seed(s % 8))
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = total()
    assert after < before


def test_split_generation_applies_the_postprocess_to_every_window(tiny_store) -> None:
    from generation.diffusion.denoiser import GCDanceDenoiser
    from generation.diffusion.evaluate import generate_for_split
    from generation.diffusion.pipeline import DancePipeline
    from generation.representation.layout import LAYOUT

    torch.manual_seed(0)
    emb = np.random.default_rng(0).normal(size=(len(tiny_store.genres), 8)).astype(np.float32)
    pipe = DancePipeline(GCDanceDenoiser(tiny_denoiser_config()), tiny_store.fit_normalizer("train"),
                         tiny_store.genres, emb, model_id="tiny")
    seen: list[tuple[int, int]] = []

    def lifted(features: np.ndarray) -> np.ndarray:
        seen.append(features.shape)
        out = features.copy()
        out[:, LAYOUT.root.start + 1] += 1.0                     # the whole body one metre up
        return out

    plain, _ = generate_for_split(pipe, tiny_store, "train", steps=2, batch=2)
    lifted_samples, _ = generate_for_split(pipe, tiny_store, "train", steps=2, batch=2, postprocess=lifted)
    assert len(seen) == len(plain) == tiny_store.num_windows("train") and seen[0] == (16, FEATURE_DIM)
    for a, b in zip(plain, lifted_samples):
        np.testing.assert_allclose(b.positions[..., 1] - a.positions[..., 1], 1.0, atol=1e-4)
