"""Nash-MTL task weights (GCDance Algorithm 1, eq. 11; Navon et al. 2022): solve G^T G alpha = 1 / alpha.

Why this solver: the reference uses cvxpy's sequential convex programme; here the same fixed point is
the unique minimiser of the strictly convex f(alpha) = 1/2 alpha^T M alpha - sum_i log alpha_i
(its gradient is M alpha - 1/alpha), found by damped Newton steps that keep alpha > 0. K is the
number of losses (a handful), so each step is a K x K solve. At the solution every task gets the
same first-order progress: g_i . (G alpha) = 1 / alpha_i, i.e. alpha_i * (g_i . d) = 1.

Solved scale-free: with D = diag(M)^(1/2) and C = D^-1 M D^-1 (the gradients' cosine matrix),
M alpha = 1/alpha is C beta = 1/beta with beta = D alpha. C is well conditioned whatever the losses'
scales (one loss x100, another x0.01), so a small ridge on it only guards nearly dependent gradients,
and a task with a zero gradient gets weight 0. The update direction G alpha = sum_i beta_i g_i / |g_i|
depends on the gradients' directions only, so rescaling one loss does not change it.

``normalise`` (default, as the reference implementation) returns the weights for G^T G divided by its
Frobenius norm (alpha * sqrt(norm)): scale-free weights that suit Adam-style optimisers;
``normalise=False`` returns the exact solution for the given matrix, Algorithm 1 as written.
"""
from __future__ import annotations

import numpy as np

from .gram import checked_gram

RIDGE = 1e-8
MAX_WEIGHT = 1e3
ZERO_GRADIENT = 1e-12


def _objective(m: np.ndarray, a: np.ndarray) -> float:
    return float(0.5 * a @ m @ a - np.log(a).sum())


def _solve_unit(c: np.ndarray, tol: float, max_iter: int) -> np.ndarray:
    """beta > 0 with ``c @ beta = 1 / beta`` for a cosine matrix (damped Newton on the convex objective)."""
    k = len(c)
    m = c + RIDGE * np.eye(k)
    a = np.ones(k)                                   # exact when the gradients are orthogonal
    f = _objective(m, a)
    for _ in range(max_iter):
        grad = m @ a - 1.0 / a
        if np.abs(grad * a).max() < tol:
            break
        step = np.linalg.solve(m + np.diag(1.0 / a**2), grad)
        t = 1.0
        while np.any(a - t * step <= 0):             # stay inside beta > 0
            t *= 0.5
        while t > 1e-12:
            cand = a - t * step
            fc = _objective(m, cand)
            if fc <= f - 1e-4 * t * float(grad @ step):
                break
            t *= 0.5
        a, f = cand, fc
    return np.minimum(a, MAX_WEIGHT)


def nash_weights(gram: np.ndarray, normalise: bool = True, tol: float = 1e-10, max_iter: int = 100) -> np.ndarray:
    """alpha >= 0 with ``M @ alpha = 1 / alpha`` for M = G^T G (tasks with a zero gradient: 0), see module doc."""
    m = checked_gram(gram, "Nash-MTL")
    norms = np.sqrt(np.clip(np.diag(m), 0.0, None))
    if norms.max() <= 0:
        return np.ones(len(m))                        # every gradient is zero: nothing to bargain over
    active = norms > ZERO_GRADIENT * norms.max()
    d = norms[active]
    beta = _solve_unit(m[np.ix_(active, active)] / np.outer(d, d), tol, max_iter)
    alpha = np.zeros(len(m))
    alpha[active] = beta / d
    return alpha * np.sqrt(np.linalg.norm(m)) if normalise else alpha
