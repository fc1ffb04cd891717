"""Sampling: DDIM with classifier-free guidance, inpainting (GCDance eq. 15) and long-term sampling.

- Guidance: x0 = x0_uncond + w (x0_cond - x0_uncond), the unconditional pass with music and genre both
  replaced by their null embeddings (run as one doubled batch).
- Inpainting: ``known`` values where ``mask`` is True are kept. After every step the known region of x_t
  is replaced by the known values noised to that step (MDM / EDGE), and the result carries them exactly.
  The mask is per frame and per feature, so it covers a time window (keep the first second, in-between
  two poses) or a set of joints (keep the body, generate the hands) alike.
- Long-term (EDGE, GCDance III-C): N overlapping windows sampled as one batch; at every step the predicted
  clean overlap of neighbouring windows is made one (``ddim_sample``'s ``on_x0`` hook; ``DancePipeline`` blends
  the two, each window in its own canonical frame, ``pipeline.chain_ramp``), and ``assemble_windows``
  cross-fades the overlaps linearly.
- Variance (POPDG 4.1): ``variance="ddim"`` (default) is DDIM with eta = 0, deterministic given x_T, the
  only sampler before POPDG's options and what old runs keep; ``"learned"`` is iDDPM's ancestral sampler on
  the respaced schedule with the model's learned variance (a ``learned_variance`` model; under guidance the
  conditional prediction's variance, as GLIDE); ``"fixed"`` the same with the posterior variance beta~
  (= DDIM with eta = 1), for any model. The two stochastic ones draw their noise from ``generator``.
"""
from __future__ import annotations

from typing import Callable

import torch

from encoders.errors import DanceSearchError

from ..representation.layout import FEATURE_DIM
from .denoiser import GCDanceDenoiser
from .popdg.learned_variance import stochastic_step
from .schedule import DDIMScheduler

VARIANCES = ("ddim", "learned", "fixed")


@torch.no_grad()
def ddim_sample(model: GCDanceDenoiser, scheduler: DDIMScheduler, music: torch.Tensor, genre: torch.Tensor,
                steps: int = 20, guidance: float = 1.0, generator: torch.Generator | None = None,
                known: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                genre_guidance: float | None = None, variance: str = "ddim",
                on_x0: Callable[[int, torch.Tensor], torch.Tensor] | None = None,
                x_T: torch.Tensor | None = None) -> torch.Tensor:
    """(B, T, 319) samples in normalised units for music (B, T, 35) and genre embeddings (B, E).

    The denoising loop of every ``DancePipeline`` path (a dance, an edit, windows). ``on_x0(i, x0)`` is called
    with step i's guided clean-motion prediction and what it returns is stepped from in its place:
    ``DancePipeline`` makes neighbouring windows agree on their overlap there (long-term sampling) and lets
    callers watch the steps. ``known`` / ``mask``: inpainting (module docstring). ``x_T``: the starting noise
    (B, T, 319), for callers that draw it themselves (GCRM's candidates: one seed per candidate in one batch);
    None draws it from ``generator``.
    """
    check_variance(model, variance)
    model.eval()
    b, frames = music.shape[:2]
    if x_T is None:
        x = torch.randn((b, frames, FEATURE_DIM), generator=generator, dtype=music.dtype)
    elif x_T.shape != (b, frames, FEATURE_DIM):
        raise DanceSearchError(f"x_T has shape {tuple(x_T.shape)}, expected ({b}, {frames}, {FEATURE_DIM})")
    else:
        x = x_T
    ts = scheduler.set_timesteps(steps).tolist()
    for i, t in enumerate(ts):
        x0, v = guided_prediction(model, x, t, music, genre, guidance, genre_guidance, variance == "learned")
        if on_x0 is not None:
            x0 = on_x0(i, x0)
        t_prev = ts[i + 1] if i + 1 < len(ts) else None
        x = denoise_step(scheduler, x0, t, t_prev, x, variance, v, generator)
        if known is not None and mask is not None:
            target = known if t_prev is None else scheduler.add_noise(
                known, torch.randn(known.shape, generator=generator, dtype=known.dtype),
                torch.full((b,), t_prev, dtype=torch.long))
            x = torch.where(mask, target, x)
    return x


def check_variance(model: GCDanceDenoiser, variance: str) -> None:
    """Refuse an unknown sampler, or the learned variance of a model that has none."""
    if variance not in VARIANCES:
        raise DanceSearchError(f"unknown sampling variance {variance!r}: one of {', '.join(VARIANCES)}")
    if variance == "learned" and not model.config.learned_variance:
        raise DanceSearchError("variance='learned' needs a denoiser trained with learned_variance=True; "
                               "use 'fixed' (or 'ddim') for this one")


def denoise_step(scheduler: DDIMScheduler, x0: torch.Tensor, t: int, t_prev: int | None, x: torch.Tensor,
                 variance: str, v: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """One reverse step x_t -> x_{t_prev}: DDIM (eta = 0) or the stochastic step (learned v, or beta~)."""
    if variance == "ddim":
        return scheduler.step(x0, t, t_prev, x)
    return stochastic_step(scheduler, x0, t, t_prev, x, v if variance == "learned" else None, generator)


def guided_prediction(model: GCDanceDenoiser, x: torch.Tensor, t: int, music: torch.Tensor, genre: torch.Tensor,
                      guidance: float, genre_guidance: float | None = None,
                      with_variance: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Classifier-free guidance, optionally with a separate weight on the genre: (guided x0, v).

    With one weight ``w`` (``genre_guidance`` None or equal): x0 = x0(0, 0) + w (x0(m, g) - x0(0, 0)), one
    doubled batch. With a genre weight ``w_g`` (compositional guidance, Liu et al. 2022; training drops music and
    genre independently, so all three predictions are learned):
        x0 = x0(0, 0) + w (x0(m, 0) - x0(0, 0)) + w_g (x0(m, g) - x0(m, 0)),
    a tripled batch. Setting w_g = w gives back the single-weight formula; w_g > w pushes the sample towards
    the requested genre without over-driving the music term.

    v is the conditional prediction's learned variance interpolation when ``with_variance`` (a
    ``learned_variance`` model; GLIDE's choice of the conditional one), else None.
    """
    def run(*args, **kw) -> tuple[torch.Tensor, torch.Tensor | None]:
        return model(*args, **kw, return_variance=True) if with_variance else (model(*args, **kw), None)

    b = x.shape[0]
    steps = torch.full((b,), t, dtype=torch.long)
    if genre_guidance is None or genre_guidance == guidance:
        if guidance == 1.0:
            return run(x, steps, music, genre)
        off = torch.zeros(b, dtype=torch.bool)
        on = torch.ones(b, dtype=torch.bool)
        both, v = run(torch.cat([x, x]), torch.cat([steps, steps]), torch.cat([music, music]),
                      torch.cat([genre, genre]), drop_music=torch.cat([off, on]), drop_genre=torch.cat([off, on]))
        cond, uncond = both[:b], both[b:]
        return uncond + guidance * (cond - uncond), None if v is None else v[:b]
    off = torch.zeros(b, dtype=torch.bool)
    on = torch.ones(b, dtype=torch.bool)
    three, v = run(torch.cat([x, x, x]), torch.cat([steps, steps, steps]), torch.cat([music, music, music]),
                   torch.cat([genre, genre, genre]), drop_music=torch.cat([off, off, on]),
                   drop_genre=torch.cat([off, on, on]))
    cond, music_only, uncond = three[:b], three[b:2 * b], three[2 * b:]
    x0 = uncond + guidance * (music_only - uncond) + genre_guidance * (cond - music_only)
    return x0, None if v is None else v[:b]


def assemble_windows(windows: torch.Tensor) -> torch.Tensor:
    """(N, T, D) windows overlapping by T/2 -> (N * T/2 + T/2, D), linearly cross-faded over each overlap."""
    n, frames, dim = windows.shape
    half = frames // 2
    out = torch.zeros((n + 1) * half, dim, dtype=windows.dtype)
    weight = torch.zeros((n + 1) * half, 1, dtype=windows.dtype)
    ramp = torch.ones(frames, 1, dtype=windows.dtype)
    ramp[:half, 0] = torch.linspace(0, 1, half + 2, dtype=windows.dtype)[1:-1]
    ramp[frames - half:, 0] = torch.linspace(1, 0, half + 2, dtype=windows.dtype)[1:-1]
    for i in range(n):
        r = ramp.clone()
        if i == 0:
            r[:half] = 1
        if i == n - 1:
            r[frames - half:] = 1
        out[i * half:i * half + frames] += windows[i] * r
        weight[i * half:i * half + frames] += r
    return out / weight
