"""The diffusion schedule and the DDIM sampler for a model that predicts the clean motion (GCDance eq. 5, 14).

Borrowed interface: diffusers' schedulers (``add_noise``, ``set_timesteps``, ``step``). Cosine schedule
(Nichol & Dhariwal): alpha_bar(t) = cos^2(((t / T) + s) / (1 + s) * pi / 2), betas clipped at 0.999.
DDIM (eta = 0: deterministic given x_T) with an x0 prediction: the implied noise is
eps = (x_t - sqrt(a_t) x0) / sqrt(1 - a_t) and x_{t'} = sqrt(a_t') x0 + sqrt(1 - a_t') eps.
"""
from __future__ import annotations

import math

import torch

from encoders.errors import DanceSearchError


class DDIMScheduler:
    def __init__(self, num_train_timesteps: int = 1000, cosine_s: float = 0.008) -> None:
        if num_train_timesteps < 2:
            raise DanceSearchError(f"num_train_timesteps must be >= 2, got {num_train_timesteps}")
        self.num_train_timesteps = num_train_timesteps
        steps = torch.arange(num_train_timesteps + 1, dtype=torch.float64) / num_train_timesteps
        f = torch.cos((steps + cosine_s) / (1 + cosine_s) * math.pi / 2) ** 2
        betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
        self.alphas_cumprod = torch.cumprod(1 - betas, dim=0).float()      # a_t for t = 0 .. T-1
        self.timesteps = torch.arange(num_train_timesteps - 1, -1, -1)

    def _a(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        a = self.alphas_cumprod.to(like.device)[t.long()]
        return a.reshape(-1, *([1] * (like.ndim - 1)))

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """q(x_t | x_0) for per-sample timesteps ``t`` (B,)."""
        a = self._a(t, x0)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def set_timesteps(self, num_inference_steps: int) -> torch.Tensor:
        """Evenly spaced timesteps from T-1 down to 0 (``num_inference_steps`` of them)."""
        if not 1 <= num_inference_steps <= self.num_train_timesteps:
            raise DanceSearchError(f"sampling steps must be within 1..{self.num_train_timesteps}, "
                                   f"got {num_inference_steps}")
        ts = torch.linspace(self.num_train_timesteps - 1, 0, num_inference_steps).round().long()
        self.timesteps = torch.unique_consecutive(ts)
        return self.timesteps

    def step(self, x0_pred: torch.Tensor, t: int, t_prev: int | None, x_t: torch.Tensor) -> torch.Tensor:
        """x_{t_prev} from x_t and the predicted clean sample (t_prev None: the final step, returns x0)."""
        if t_prev is None or t_prev < 0:
            return x0_pred
        a_t = self.alphas_cumprod[int(t)].to(x_t.device)
        a_prev = self.alphas_cumprod[int(t_prev)].to(x_t.device)
        eps = (x_t - a_t.sqrt() * x0_pred) / (1 - a_t).sqrt().clamp_min(1e-8)
        return a_prev.sqrt() * x0_pred + (1 - a_prev).sqrt() * eps
