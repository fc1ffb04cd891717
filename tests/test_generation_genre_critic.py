"""The frozen genre critic and its training loss (issue 14: making the genre prompt decide the dance's style)."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import torch

from generation.diffusion.genre_critic import CriticConfig, GenreCritic, critic_loss, fit_genre_critic
from generation.representation import FEATURE_DIM


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
        "denoiser": dict(window_frames=16, d_model=32, heads=2, body_layers=1, hand_layers=1, genre_dim=8),
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
    assert json.loads((tmp_path / "plain" / "config.json").read_text())["data"]["genre_critic"] is None
