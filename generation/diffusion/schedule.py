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
        self.alphas_cumprod_f64 = torch.cumprod(1 - betas, dim=0)
        """a_t in float64: the learned-variance terms take logs of 1 - a_t / a_t' near 0 (``posterior``)."""
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

    def posterior(self, t: torch.Tensor, t_prev: torch.Tensor) -> dict[str, torch.Tensor]:
        """Terms of q(x_{t_prev} | x_t, x0) between two steps t > t_prev (float64, shape of ``t``).

        ``t_prev`` = -1 means the clean data (a = 1). For t_prev = t - 1 these are DDPM's per-step terms; for a
        strided schedule they are iDDPM's respaced ones, beta = 1 - a_t / a_t' (Nichol & Dhariwal, sec. 4):
        ``beta``, ``beta_tilde`` = beta (1 - a_t') / (1 - a_t) (the posterior variance), ``log_beta_tilde``
        clipped at step 0 to the next step's value as iDDPM does (beta_tilde is 0 there), and the posterior
        mean's coefficients, mean = ``coef_x0`` x0 + ``coef_xt`` x_t.
        """
        a = self.alphas_cumprod_f64.to(t.device)
        t, t_prev = t.long(), t_prev.long()
        if bool((t_prev >= t).any()) or bool((t_prev < -1).any()) or bool((t >= self.num_train_timesteps).any()):
            raise DanceSearchError(f"posterior needs T > t > t_prev >= -1, got t {t.tolist()}, t_prev {t_prev.tolist()}")
        a_t = a[t]
        a_prev = torch.where(t_prev >= 0, a[t_prev.clamp_min(0)], torch.ones_like(a_t))
        beta = 1 - a_t / a_prev
        beta_tilde = beta * (1 - a_prev) / (1 - a_t)
        floor = (1 - a[1] / a[0]) * (1 - a[0]) / (1 - a[1])                 # beta_tilde of step 1 (from 0)
        log_beta_tilde = torch.log(torch.where(t_prev >= 0, beta_tilde, floor))
        return {"beta": beta, "beta_tilde": beta_tilde, "log_beta": torch.log(beta),
                "log_beta_tilde": log_beta_tilde, "coef_x0": a_prev.sqrt() * beta / (1 - a_t),
                "coef_xt": (1 - a_prev) * (a_t / a_prev).sqrt() / (1 - a_t)}

