"""The genre critic applied to the denoiser's own samples, not only to its predictions on noised real windows.

Why: the critic loss of ``genre_critic.critic_loss`` judges the clean-motion prediction from a *real* window of
the requested genre, noised; at low noise that prediction is nearly the real window, so the loss is satisfied
early (v3's fell below 0.01 by step 2,000) while samples drawn from pure noise with another genre's music
still miss the genre (the control test). Here, on a few windows per step, the denoiser samples from pure
noise, with the batch's music and a genre drawn uniformly (so music and genre usually disagree, as in the
control test), through a short DDIM chain that stops at a random step k. It is not inference exactly: the
chain is short (a few steps instead of 20), conditional only (no classifier-free guidance) and runs with
dropout off. The chain up to k runs without gradient; the prediction at step k is the one trained, and the
critic's cross-entropy on it for the drawn genre is the loss. No real motion is needed: this is a loss on
generation, like classifier guidance moved into training (so sampling costs nothing more).

Its draws (genres, stop step, noise) come from the caller's generator, and dropout is off, so turning the
loss on leaves the main loss's random stream (timesteps, noise, dropped conditions) as it was.
"""
from __future__ import annotations

import functools

import torch
from torch import nn

from ..representation.layout import FEATURE_DIM
from .schedule import DDIMScheduler


def sample_chain_prediction(model: nn.Module, scheduler: DDIMScheduler, music: torch.Tensor,
                            genre_table: torch.Tensor, chain_steps: int,
                            generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The denoiser's clean-motion prediction (B, T, F) at a random step of a ``chain_steps``-step DDIM chain from
    noise, for music (B, T, 35) and genres drawn uniformly from ``genre_table`` (G, E); with the drawn genre ids
    (B,). Only the last model call carries a gradient. Shared by this loss and ``adversarial_critic.py``."""
    b, frames = music.shape[:2]
    genres = torch.randint(0, len(genre_table), (b,), generator=generator)
    genre_emb = genre_table[genres]
    ts = _chain_timesteps(scheduler.num_train_timesteps, chain_steps)
    stop = int(torch.randint(0, len(ts), (1,), generator=generator))
    x = torch.randn((b, frames, FEATURE_DIM), generator=generator, dtype=music.dtype)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for i in range(stop):
                x0 = model(x, torch.full((b,), ts[i], dtype=torch.long), music, genre_emb)
                x = scheduler.step(x0, ts[i], ts[i + 1], x)
        x0 = model(x, torch.full((b,), ts[stop], dtype=torch.long), music, genre_emb)
    finally:
        model.train(was_training)
    return x0, genres


def sampled_critic_loss(model: nn.Module, scheduler: DDIMScheduler, critic: nn.Module, music: torch.Tensor,
                        genre_table: torch.Tensor, chain_steps: int,
                        generator: torch.Generator | None = None) -> torch.Tensor:
    """Mean cross-entropy of ``critic`` on the denoiser's prediction at a random step of a ``chain_steps``-step
    DDIM chain from noise (``sample_chain_prediction``), for the genres drawn there."""
    x0, genres = sample_chain_prediction(model, scheduler, music, genre_table, chain_steps, generator)
    return nn.functional.cross_entropy(critic(x0), genres)


@functools.lru_cache(maxsize=8)
def _chain_timesteps(num_train_timesteps: int, chain_steps: int) -> list[int]:
    """The chain's DDIM timesteps, from a scheduler of its own (``set_timesteps`` changes the one it is called on,
    and training's stays as it is); computed once per setting, not every training step."""
    return DDIMScheduler(num_train_timesteps).set_timesteps(chain_steps).tolist()


__all__ = ["sample_chain_prediction", "sampled_critic_loss"]
