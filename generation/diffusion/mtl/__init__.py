"""Combining several training losses into one update (GCDance eq. 10-13, Algorithms 1 and 2).

Each method looks at the per-task gradients of the *shared* parameters (a (K, P) matrix G^T) and
returns task weights alpha; the step then back-propagates ``sum_i alpha_i * loss_i`` through every
parameter, as the reference implementations of Nash-MTL (Navon et al.) and Aligned-MTL (Senushkin et
al.) do, so task-specific parameters cost no extra backward passes.

- ``fixed``: constant weights (the baseline, GCDance Table III "fixed").
- ``nash``: Nash bargaining solution, G^T G alpha = 1 / alpha (:mod:`.nash`).
- ``aligned``: the gradient system's principal components aligned, alpha = B w (:mod:`.aligned`).
"""
from .aligned import aligned_weights
from .combine import METHODS, LossCombiner, shared_gradients
from .nash import nash_weights

__all__ = ["METHODS", "LossCombiner", "aligned_weights", "nash_weights", "shared_gradients"]
