"""iDDPM's learned reverse variance for the x0-predicting denoiser (POPDG 4.1; Nichol & Dhariwal 2021).

Why: POPDG credits iDDPM with more diverse dances at equal quality (its Table 4), and iDDPM's point is that
the reverse process' variance, fixed in DDPM to beta_t or beta~_t, is better learned. The model outputs, per
frame and feature, v in [0, 1] (a tanh in [-1, 1] mapped to [0, 1], so the variance can never leave its
range) and the reverse variance is

    sigma^2 = exp(v log beta_t + (1 - v) log beta~_t),    beta~_t = beta_t (1 - a_{t-1}) / (1 - a_t).

It is trained by L_vlb (iDDPM eq. 16 with the mean stop-gradiented, sec. 3.1): the KL between the Gaussian
posterior q(x_{t-1} | x_t, x0) and p(x_{t-1} | x_t) whose mean is the posterior mean at the *predicted* x0
(detached, so L_vlb never moves the mean) and whose variance is the learned one; at t = 0 the decoder's
negative log-likelihood of x0 instead. Motion features are continuous, so the decoder is a plain Gaussian
density, not iDDPM's 8-bit discretised one (its NLL can be negative; it is one step in a thousand). Both are
in bits per feature. The training loop adds ``vlb_weight * L_vlb`` outside the multi-task combiner
(iDDPM's L_hybrid = L_simple + 0.001 L_vlb).

Sampling: DDIM (eta = 0) ignores the variance, so it stays the default and old runs sample as before.
:func:`stochastic_step` is the ancestral step between two steps of a strided schedule with iDDPM's respaced
betas (beta = 1 - a_t / a_t'), the model's v interpolating the respaced beta and beta~; without a learned
variance (v None) it uses beta~, which is DDIM with eta = 1.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..schedule import DDIMScheduler

_LOG2 = math.log(2.0)


class VarianceHead(nn.Module):
    """Token features of the two experts -> v (B, T, body + hand dims) in [0, 1], one value per frame and feature.

    Each token writes its ``stride`` frames with a linear layer (no upsampling convolution: the variance is a
    smooth, mostly step-dependent quantity and this costs one matrix product). Zero-initialised: an untrained
    head gives v = 0.5, the geometric mean of beta and beta~.
    """

    def __init__(self, d_model: int, body_dims: int, hand_dims: int, stride: int) -> None:
        super().__init__()
        self.stride, self.body_dims, self.hand_dims = stride, body_dims, hand_dims
        self.body = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, stride * body_dims))
        self.hand = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, stride * hand_dims))
        for head in (self.body, self.hand):
            nn.init.zeros_(head[1].weight)
            nn.init.zeros_(head[1].bias)

    def forward(self, body_tokens: torch.Tensor, hand_tokens: torch.Tensor) -> torch.Tensor:
        b, n, _ = body_tokens.shape
        vb = self.body(body_tokens).reshape(b, n * self.stride, self.body_dims)
        vh = self.hand(hand_tokens).reshape(b, n * self.stride, self.hand_dims)
        return (torch.tanh(torch.cat([vb, vh], dim=-1)) + 1) / 2


def _expand(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return x.to(like.dtype).reshape(-1, *([1] * (like.ndim - 1)))


def model_log_variance(terms: dict[str, torch.Tensor], v: torch.Tensor) -> torch.Tensor:
    """log sigma^2 = v log beta + (1 - v) log beta~ (per element of ``v``)."""
    return v * _expand(terms["log_beta"], v) + (1 - v) * _expand(terms["log_beta_tilde"], v)


def normal_kl(mean1: torch.Tensor, logvar1: torch.Tensor, mean2: torch.Tensor, logvar2: torch.Tensor) -> torch.Tensor:
    """KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)) per element, in nats."""
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2))


def gaussian_nll(x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """-log N(x; mean, e^logvar) per element, in nats (a density: continuous motion features)."""
    return 0.5 * (math.log(2 * math.pi) + logvar + (x - mean) ** 2 * torch.exp(-logvar))


def vlb_terms(scheduler: DDIMScheduler, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor,
              x0_pred: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """L_vlb per sample (B,), bits per feature: KL(q(x_{t-1}|x_t, x0) || p) for t > 0, decoder NLL at t = 0.

    p's mean is the posterior mean at ``x0_pred.detach()``: only ``v`` (and what computes it) gets a gradient.
    """
    terms = scheduler.posterior(t, t - 1)
    cx0, cxt = _expand(terms["coef_x0"], x0), _expand(terms["coef_xt"], x0)
    true_mean = cx0 * x0 + cxt * x_t
    true_logvar = _expand(terms["log_beta_tilde"], x0).expand_as(x0)
    mean = cx0 * x0_pred.detach() + cxt * x_t
    logvar = model_log_variance(terms, v)
    dims = tuple(range(1, x0.ndim))
    kl = normal_kl(true_mean, true_logvar, mean, logvar).mean(dim=dims) / _LOG2
    nll = gaussian_nll(x0, mean, logvar).mean(dim=dims) / _LOG2
    return torch.where(t == 0, nll, kl)


def vlb_loss(scheduler: DDIMScheduler, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor,
             x0_pred: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The batch mean of :func:`vlb_terms` (uniformly sampled t, as the training loop draws them)."""
    return vlb_terms(scheduler, x0, x_t, t, x0_pred, v).mean()


def stochastic_step(scheduler: DDIMScheduler, x0_pred: torch.Tensor, t: int, t_prev: int | None, x_t: torch.Tensor,
                    v: torch.Tensor | None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Ancestral step x_t -> x_{t_prev} on the respaced schedule (t_prev None: the final step, returns x0).

    Mean: the posterior mean at the predicted x0; variance: the learned one from ``v`` on the respaced betas
    (iDDPM), or beta~ when ``v`` is None (DDIM with eta = 1). Noise is drawn from ``generator``.
    """
    if t_prev is None or t_prev < 0:
        return x0_pred
    terms = scheduler.posterior(torch.tensor([int(t)]), torch.tensor([int(t_prev)]))
    mean = _expand(terms["coef_x0"], x_t) * x0_pred + _expand(terms["coef_xt"], x_t) * x_t
    if v is None:
        logvar = _expand(terms["log_beta_tilde"], x_t)
    else:
        logvar = model_log_variance(terms, v.to(x_t.dtype))
    noise = torch.randn(x_t.shape, generator=generator, dtype=x_t.dtype)
    return mean + torch.exp(0.5 * logvar) * noise
