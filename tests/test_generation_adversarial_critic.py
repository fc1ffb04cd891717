"""The learning (G+1)-class critic (issue 14: a critic the generator cannot fool by finding a frozen one's blind
spots): it tells real genres apart, learns to spot generated windows, trains the denoiser through its samples,
and runs inside training with its losses logged and its report in the run."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from encoders.errors import DanceSearchError
from generation.diffusion.adversarial_critic import AdversarialConfig, AdversarialCritic, fit_adversarial_critic
from generation.diffusion.genre_critic import GenreCritic
from generation.representation import FEATURE_DIM
from tiny_denoiser import TINY_DENOISER


def test_the_prefit_learns_the_real_genres_and_leaves_the_global_stream_alone(tiny_store) -> None:
    normalizer = tiny_store.fit_normalizer("train")
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    critic, report = fit_adversarial_critic(tiny_store, normalizer, AdversarialConfig(width=32, pretrain_epochs=40),
                                            progress=False)
    torch.testing.assert_close(torch.rand(3), expected)
    assert report["train_accuracy"] >= 0.9 and report["epochs_run"] == 40 and not report["cut_short"]
    assert critic.generated_class == len(tiny_store.genres)
    window = torch.as_tensor(normalizer.normalise(tiny_store.window("train", 0).motion), dtype=torch.float32)[None]
    assert critic.network(window).shape == (1, len(tiny_store.genres) + 1)
    _, late = fit_adversarial_critic(tiny_store, normalizer, AdversarialConfig(width=8, pretrain_epochs=5),
                                     progress=False, deadline=0.0)
    assert late["epochs_run"] == 1 and late["cut_short"]


def test_updates_teach_the_critic_to_spot_generated_windows_and_keep_the_genres() -> None:
    torch.manual_seed(0)
    genres = 3
    real = torch.randn(12, 16, FEATURE_DIM) * 0.3 + torch.arange(12).remainder(genres).float().reshape(12, 1, 1)
    labels = torch.arange(12).remainder(genres)
    generated = torch.randn(6, 16, FEATURE_DIM) * 2.0                # unlike any real window
    critic = AdversarialCritic(GenreCritic(FEATURE_DIM, genres + 1, width=16), genres,
                               AdversarialConfig(lr=3e-3, instance_noise=0.1))
    first = critic.update(real, labels, generated)
    for _ in range(60):
        last = critic.update(real, labels, generated)
    assert last["critic_generated"] < 0.5 * first["critic_generated"]
    assert last["critic_real"] < first["critic_real"]
    with torch.no_grad():
        assert (critic.network(generated).argmax(1) == genres).all()
        assert (critic.network(real).argmax(1) == labels).float().mean() >= 0.9


def test_the_generator_loss_moves_samples_away_from_generated_without_touching_the_critic() -> None:
    torch.manual_seed(0)
    critic = AdversarialCritic(GenreCritic(FEATURE_DIM, 3, width=16), 2, AdversarialConfig(instance_noise=0.0))
    before = [p.detach().clone() for p in critic.network.parameters()]
    samples = torch.randn(4, 16, FEATURE_DIM, requires_grad=True)
    genres = torch.tensor([0, 1, 0, 1])
    loss = critic.generator_loss(samples, genres)
    loss.backward()
    assert samples.grad is not None and samples.grad.abs().sum() > 0
    assert all(p.grad is None for p in critic.network.parameters())
    assert all(p.requires_grad for p in critic.network.parameters())           # restored for its own updates
    stepped = (samples - 0.5 * samples.grad / samples.grad.norm()).detach()
    assert critic.generator_loss(stepped, genres) < loss
    for p, q in zip(before, critic.network.parameters()):
        torch.testing.assert_close(p, q)


def test_training_with_the_adversarial_critic_logs_its_losses_and_records_it(tiny_store, tmp_path) -> None:
    from generation.diffusion.recipe import build_configs
    from generation.diffusion.train import train_denoiser

    denoiser, config = build_configs({"denoiser": dict(TINY_DENOISER), "train": {
        "steps": 4, "batch_size": 4, "eval_every": 4, "val_windows": 4, "num_threads": 1, "warmup_steps": 1,
        "adversarial_weight": 0.5, "adversarial_pretrain_epochs": 2, "sampled_critic_every": 2,
        "sampled_critic_windows": 2}})
    emb = np.random.default_rng(0).normal(size=(2, 8)).astype(np.float32)
    result = train_denoiser(tiny_store, tmp_path / "run", denoiser, config, progress=False, embeddings=(emb, "test"))
    row = result["history"][-1]
    for key in ("train_adversarial", "train_critic_real", "train_critic_generated"):
        assert np.isfinite(row[key])
    assert "train_genre" not in row                          # independent of the frozen critic
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["train"]["adversarial_weight"] == 0.5
    assert saved["data"]["adversarial_critic"]["epochs_run"] == 2 and saved["data"]["genre_critic"] is None


def test_the_critic_leaves_the_global_random_stream_and_frozen_parameters_alone() -> None:
    critic = AdversarialCritic(GenreCritic(FEATURE_DIM, 3, width=16), 2, AdversarialConfig())
    frozen = next(critic.network.parameters())
    frozen.requires_grad_(False)
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    samples = torch.randn(2, 16, FEATURE_DIM, generator=torch.Generator().manual_seed(0))
    critic.generator_loss(samples, torch.tensor([0, 1]))
    critic.update(samples + 1.0, torch.tensor([0, 1]), samples)
    torch.testing.assert_close(torch.rand(3), expected)
    assert not frozen.requires_grad                          # a parameter frozen before stays frozen


def test_adversarial_settings_out_of_range_are_refused() -> None:
    from generation.diffusion.train import TrainConfig

    with pytest.raises(DanceSearchError, match="adversarial_weight"):
        TrainConfig(adversarial_weight=-0.1)
    with pytest.raises(DanceSearchError, match="adversarial_pretrain_epochs"):
        TrainConfig(adversarial_weight=0.1, adversarial_pretrain_epochs=0)
    with pytest.raises(DanceSearchError, match="out of range"):
        AdversarialConfig(instance_noise=-1.0)
