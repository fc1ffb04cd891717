"""One training step's loss combination: per-task gradients of the shared parameters -> task weights.

Why only the shared parameters: they are where tasks compete (task heads see one loss each), and
gradients of a few million shared weights for K <= 5 losses are K backward passes of the shared part;
the weighted loss then runs one ordinary backward through everything.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from encoders.errors import DanceSearchError

from .aligned import aligned_weights
from .nash import nash_weights

METHODS = ("fixed", "nash", "aligned")


def shared_gradients(losses: Sequence[torch.Tensor], shared: Sequence[torch.nn.Parameter]) -> torch.Tensor:
    """(K, P) matrix: row i is d loss_i / d shared (flattened; unused parameters give zeros)."""
    rows = []
    for loss in losses:
        grads = torch.autograd.grad(loss, list(shared), retain_graph=True, allow_unused=True)
        rows.append(torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(grads, shared)]))
    return torch.stack(rows)


@dataclass
class LossCombiner:
    """``weights(losses, shared)`` -> task weights; ``combine`` -> the scalar loss to back-propagate.

    ``fixed`` uses ``importance`` as the weights. ``nash`` / ``aligned`` recompute them every
    ``update_every`` steps from the shared gradients (Nash-MTL's reference does so every step or every
    few steps to save time) and scale them by ``importance`` (Aligned-MTL's w; Nash: elementwise).
    """

    method: str = "fixed"
    importance: Sequence[float] = field(default_factory=list)
    update_every: int = 1
    nash_normalise: bool = True     # the reference's scale-free alpha (pair with Adam); False: Algorithm 1 as written
    _step: int = 0
    _last: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise DanceSearchError(f"unknown loss combination {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.update_every < 1:
            raise DanceSearchError(f"update_every must be >= 1, got {self.update_every}")

    def weights(self, losses: Sequence[torch.Tensor], shared: Sequence[torch.nn.Parameter]) -> np.ndarray:
        k = len(losses)
        w = np.asarray(self.importance if len(self.importance) else np.ones(k), dtype=np.float64)
        if w.shape != (k,):
            raise DanceSearchError(f"{k} losses but {len(w)} importance weights")
        if self.method == "fixed":
            return w
        if self._last is None or self._step % self.update_every == 0:
            g = shared_gradients(losses, shared).double()
            gram = (g @ g.T).cpu().numpy()
            self._last = nash_weights(gram, normalise=self.nash_normalise) * w if self.method == "nash" else aligned_weights(gram, w)
        self._step += 1
        return self._last

    def combine(self, losses: Sequence[torch.Tensor], shared: Sequence[torch.nn.Parameter]) -> tuple[torch.Tensor, np.ndarray]:
        alpha = self.weights(losses, shared)
        total = sum(float(a) * loss for a, loss in zip(alpha, losses))
        return total, alpha
