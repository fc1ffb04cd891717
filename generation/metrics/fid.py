"""Fréchet distance (FID_k / FID_g) and diversity (Div_k / Div_g) of motion-feature sets, as the papers compute them.

Reference: ``quantized_metrics``, ``normalize``, ``calc_fid`` and ``calculate_avg_distance`` in
``lisiyao21/Bailando utils/metrics_new.py`` (the same functions in ``li-ronghui/LODGE
metric/metrics_finedance.py``). What this module keeps from them, because it changes the numbers:

- Both sets are z-scored with the *ground-truth* set's per-dimension mean and (population, ddof 0) std,
  ``(x - mean_gt) / (std_gt + 1e-10)``, in the features' dtype (float32, as the reference stores them).
  A dimension that is constant in the ground truth (e.g. the rigid-bone geometric feature) therefore
  scales any prediction deviation by 1e10.
- FD = |mu_p - mu_g|^2 + tr(S_p) + tr(S_g) - 2 tr(sqrtm(S_p S_g)) with ``np.cov`` (ddof 1) covariances
  and ``scipy.linalg.sqrtm`` of the (non-symmetric) product. ``sqrtm`` may return a complex matrix
  (the product has tiny negative or complex eigenvalues, common when there are fewer samples than
  dimensions); the reference then keeps the complex trace (it only takes ``.real`` when the imaginary
  part is large), so its FID is a complex number whose real part is what gets reported. We return the
  real part and report the imaginary part of the trace separately. When ``sqrtm`` returns non-finite
  values the reference retries with 1e-5 added to both diagonals; so do we.
- The reference calls ``sqrtm(..., disp=False)``, an argument deprecated in SciPy 1.16 and removed
  later; with ``disp=False`` it returns the same matrix plus an error estimate, so calling ``sqrtm(A)``
  gives the same numbers.
- Div = mean L2 distance over all unordered pairs of (normalised) feature vectors of one set.
  The reference sums the pair distances one by one in float32; we sum in float64 (the difference is
  float32 rounding, ~1e-7 relative for tens of samples, growing with the number of pairs).
"""
from __future__ import annotations

from dataclasses import dataclass

import warnings

import numpy as np
from scipy import linalg

NORMALISATION_EPS = 1e-10
SINGULAR_OFFSET = 1e-5


def normalise_by_reference(reference: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    """z-score ``reference`` and each of ``others`` with the reference set's mean and std (+1e-10).

    Arrays are (N, D); the arithmetic happens in the arrays' own dtype, as in the reference's ``normalize``.
    """
    ref = np.asarray(reference)
    mean = ref.mean(axis=0)
    std = ref.std(axis=0)
    out = [(ref - mean) / (std + NORMALISATION_EPS)]
    out += [(np.asarray(o) - mean) / (std + NORMALISATION_EPS) for o in others]
    return tuple(out)


@dataclass(frozen=True)
class FrechetResult:
    """The Fréchet distance (real part), the imaginary part of tr(sqrtm) that the reference keeps, and
    whether the diagonal offset had to be added."""

    value: float
    imag: float
    offset_added: bool


def _sqrtm(m: np.ndarray) -> np.ndarray:
    # SciPy warns (LinAlgWarning) or, before 1.16, prints when the product is singular; the numbers are the same.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return linalg.sqrtm(m)


def frechet_distance_detail(feats_a: np.ndarray, feats_b: np.ndarray) -> FrechetResult:
    """Fréchet distance between Gaussians fitted to (N, D) ``feats_a`` and (M, D) ``feats_b`` (N, M >= 2)."""
    a = np.asarray(feats_a)
    b = np.asarray(feats_b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sets must be (N, D) with the same D, got {a.shape} and {b.shape}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError("the Fréchet distance needs at least 2 samples per set")
    mu1, mu2 = a.mean(axis=0), b.mean(axis=0)
    s1 = np.atleast_2d(np.cov(a, rowvar=False))
    s2 = np.atleast_2d(np.cov(b, rowvar=False))
    diff = mu1 - mu2
    covmean = _sqrtm(s1.dot(s2))
    offset_added = False
    if not np.isfinite(covmean).all():
        offset = np.eye(s1.shape[0]) * SINGULAR_OFFSET
        covmean = _sqrtm((s1 + offset).dot(s2 + offset))
        offset_added = True
    tr_covmean = np.trace(covmean)
    value = diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * tr_covmean
    return FrechetResult(float(np.real(value)), float(-2 * np.imag(tr_covmean)), offset_added)


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Real part of the Fréchet distance between two (N, D) feature sets (no normalisation here)."""
    return frechet_distance_detail(feats_a, feats_b).value


def diversity(feats: np.ndarray) -> float:
    """Mean L2 distance over all unordered pairs of rows of (N, D) ``feats`` (N >= 2)."""
    x = np.asarray(feats, dtype=np.float64)
    n = len(x)
    if n < 2:
        raise ValueError("diversity needs at least 2 samples")
    i, j = np.triu_indices(n, k=1)
    # Explicit differences in chunks (not the |a|^2 + |b|^2 - 2ab expansion, which loses precision).
    total = 0.0
    for start in range(0, len(i), 65536):
        sl = slice(start, start + 65536)
        total += float(np.linalg.norm(x[i[sl]] - x[j[sl]], axis=1).sum())
    return total / (n * (n - 1) / 2)


@dataclass(frozen=True)
class FeatureSetScores:
    """FID of predictions vs ground truth and the diversity of both sets, all on GT-normalised features."""

    fid: float
    fid_imag: float
    fid_offset_added: bool
    div: float
    div_gt: float
    dropped_dims: int = 0


def score_feature_sets(pred: np.ndarray, gt: np.ndarray, normalise: bool = True,
                       drop_constant_below: float | None = None) -> FeatureSetScores:
    """The reference's ``quantized_metrics`` for one feature kind: normalise by GT, FID(pred, gt), Div of both.

    ``drop_constant_below`` (None in the reference protocols): leave out the dimensions whose GT std is
    below it, in both sets, before normalising. Why: the reference divides by ``std + 1e-10``, so a
    feature that never fires in a small GT set (a geometric test such as "wrist near the floor", or the
    spine-stretch test that only non-rigid bones trip) contributes ~1e15 to FID as soon as one predicted
    window trips it, and decides the number alone.
    """
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    dropped = 0
    if drop_constant_below is not None:
        keep = gt.std(axis=0) >= drop_constant_below
        dropped = int((~keep).sum())
        if keep.any():
            pred, gt = pred[:, keep], gt[:, keep]
    if normalise:
        gt, pred = normalise_by_reference(gt, pred)
    fd = frechet_distance_detail(pred, gt)
    return FeatureSetScores(fd.value, fd.imag, fd.offset_added, diversity(pred), diversity(gt), dropped)
