"""Nash-MTL and Aligned-MTL task weighting (GCDance Algorithms 1 and 2) on problems with known answers."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from encoders.errors import DanceSearchError
from generation.diffusion.mtl import LossCombiner, aligned_weights, nash_weights, shared_gradients


def test_nash_solves_the_bargaining_equation() -> None:
    rng = np.random.default_rng(0)
    for k in (2, 3, 5):
        g = rng.normal(size=(k, 40))
        m = g @ g.T
        a = nash_weights(m, normalise=False)
        assert (a > 0).all()
        np.testing.assert_allclose(m @ a, 1.0 / a, rtol=1e-6)
        # every task gets the same first-order progress: alpha_i * g_i . d = 1
        np.testing.assert_allclose(a * (g @ (g.T @ a)), 1.0, rtol=1e-6)
        an = nash_weights(m)                       # the reference's scale-free weights
        np.testing.assert_allclose(an, a * np.sqrt(np.linalg.norm(m)), rtol=1e-6)
        np.testing.assert_allclose(nash_weights(100.0 * m), an, rtol=1e-6)


def test_nash_on_orthogonal_gradients_is_one_over_the_norm() -> None:
    m = np.diag([4.0, 0.25, 1.0])                  # orthogonal gradients of norms 2, 0.5, 1
    np.testing.assert_allclose(nash_weights(m, normalise=False), [0.5, 2.0, 1.0], rtol=1e-6)


def test_aligned_makes_the_gradient_system_orthonormal() -> None:
    rng = np.random.default_rng(1)
    g = rng.normal(size=(3, 30)) * np.array([[10.0], [1.0], [0.1]])   # badly conditioned
    m = g @ g.T
    lam, v = np.linalg.eigh(m)
    g_hat = np.sqrt(lam.min()) * (g.T @ v / np.sqrt(lam)) @ v.T        # (P, K), eq. 13
    np.testing.assert_allclose(g_hat.T @ g_hat, lam.min() * np.eye(3), atol=1e-8 * lam.max())
    w = np.array([1.0, 2.0, 0.5])
    np.testing.assert_allclose(g.T @ aligned_weights(m, w), g_hat @ w, atol=1e-9)
    # orthogonal gradients: each task scaled to the smallest norm
    np.testing.assert_allclose(aligned_weights(np.diag([4.0, 0.25, 1.0])), [0.25, 1.0, 0.5])


def test_aligned_and_nash_survive_dependent_and_zero_gradients() -> None:
    g = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 0.0]])    # parallel and zero gradients
    m = g @ g.T
    assert np.isfinite(aligned_weights(m)).all() and np.isfinite(nash_weights(m)).all()
    assert (nash_weights(np.zeros((2, 2))) == 1).all()
    with pytest.raises(DanceSearchError, match="square"):
        nash_weights(np.ones((2, 3)))


def _descend(method: str, scale: float, steps: int = 500, **kw) -> torch.Tensor:
    """SGD (decaying step) on L1 = scale |theta - a|^2 / 2 and L2 = |theta - b|^2 / 2 from (0, 2)."""
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 0.0])
    theta = torch.nn.Parameter(torch.tensor([0.0, 2.0]))
    combiner = LossCombiner(method, **kw)
    opt = torch.optim.SGD([theta], lr=0.05 if method != "fixed" else 0.005)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1 / (1 + i / 20))
    for _ in range(steps):
        opt.zero_grad()
        total, _ = combiner.combine([scale * 0.5 * ((theta - a) ** 2).sum(), 0.5 * ((theta - b) ** 2).sum()], [theta])
        total.backward()
        opt.step()
        sched.step()
    return theta.detach()


@pytest.mark.parametrize("method,kw", [("nash", {"nash_normalise": False}), ("aligned", {})])
def test_two_symmetric_conflicting_tasks_meet_at_the_midpoint(method: str, kw: dict) -> None:
    """Two tasks pulling towards a = (1, 0) and b = (-1, 0) from (0, 2): the fair answer is (a + b) / 2."""
    theta = _descend(method, 1.0, steps=250 if method == "nash" else 500, **kw)
    assert torch.allclose(theta, torch.zeros(2), atol=0.01), theta


def test_nash_direction_ignores_a_task_s_loss_scale_and_a_fixed_sum_does_not() -> None:
    rng = np.random.default_rng(4)
    g = rng.normal(size=(3, 20))
    d = g.T @ nash_weights(g @ g.T, normalise=False)
    scaled = g * np.array([[100.0], [1.0], [0.01]])
    d_scaled = scaled.T @ nash_weights(scaled @ scaled.T, normalise=False)
    np.testing.assert_allclose(d_scaled, d, rtol=1e-4, atol=1e-6)
    # a fixed sum is dragged to the loud task's minimum (x = 100 / 101 ~ 0.99)
    assert float(_descend("fixed", 100.0)[0]) > 0.95


def test_shared_gradients_rows_match_autograd() -> None:
    lin = torch.nn.Linear(3, 2)
    x = torch.randn(5, 3)
    y = lin(x)
    losses = [y[:, 0].pow(2).mean(), y[:, 1].abs().mean()]
    g = shared_gradients(losses, list(lin.parameters()))
    assert g.shape == (2, 8)
    want = torch.autograd.grad(losses[0], list(lin.parameters()), retain_graph=True)
    torch.testing.assert_close(g[0], torch.cat([w.reshape(-1) for w in want]))


def test_combiner_rejects_bad_configuration() -> None:
    with pytest.raises(DanceSearchError, match="unknown loss combination"):
        LossCombiner("pcgrad")
    c = LossCombiner("fixed", importance=[1.0, 2.0])
    with pytest.raises(DanceSearchError, match="3 losses but 2"):
        c.weights([torch.tensor(1.0)] * 3, [])
