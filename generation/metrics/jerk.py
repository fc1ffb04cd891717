"""Jerk (third time derivative of joint positions, m/s^3): smoothness, and seams between stitched windows.

Finite differences: ``j = (x[k+3] - 3 x[k+2] + 3 x[k+1] - x[k]) * fps^3``, exact for a cubic trajectory.
This stencil covers frames k..k+3 and is centred between frames k+1 and k+2, so the jerk series is
indexed by *boundaries*: boundary ``b`` (2 <= b <= T-2) is the instant between frames b-1 and b, and its
jerk uses frames b-2..b+1. A seam "at frame f" means frame f is the first frame of the new window, so
its jerk is boundary f's: the one stencil centred on the jump. A position jump of d at a seam gives
``2 d fps^3`` there and ``d fps^3`` at the two neighbouring boundaries.

Values are the norm of the 3-D jerk vector per joint (m/s^3). They depend on the frame rate through
noise and sampling only (the derivative itself is in seconds). For scale, the mean over joints and frames
of the real AIST++ slices at 30 fps is ~30 m/s^3 (street jazz) to ~400 m/s^3 (break).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from encoders.errors import InputError

from .sample import DanceSample


def _positions(sample: DanceSample, joints: Sequence[str] | None) -> np.ndarray:
    return sample.positions if joints is None else sample.joints(joints)


def jerk(sample: DanceSample, joints: Sequence[str] | None = None) -> np.ndarray:
    """(T-3, J) jerk magnitudes in m/s^3; row ``k`` is boundary ``k + 2`` (between frames k+1 and k+2)."""
    sample.require_frames(4, "jerk")
    pos = _positions(sample, joints)
    third = np.diff(pos, n=3, axis=0)
    return np.linalg.norm(third, axis=-1) * float(sample.fps) ** 3


def jerk_at(sample: DanceSample, frames: Sequence[int], joints: Sequence[str] | None = None) -> np.ndarray:
    """(len(frames), J) jerk magnitudes (m/s^3) centred on the boundary before each frame f (between f-1 and f).

    Each f must satisfy 2 <= f <= T-2 (the stencil uses frames f-2..f+1).
    """
    series = jerk(sample, joints)
    f = np.asarray(list(frames), dtype=np.int64).reshape(-1)
    bad = f[(f < 2) | (f > sample.num_frames - 2)]
    if len(bad):
        raise InputError(sample.name, "jerk asked at frames too close to the ends", field="frames",
                         expected=f"2 <= frame <= {sample.num_frames - 2}", got=str(bad[:5].tolist()))
    return series[f - 2]


def mean_jerk(sample: DanceSample, joints: Sequence[str] | None = None) -> float:
    """Mean jerk magnitude (m/s^3) over boundaries and joints."""
    return float(jerk(sample, joints).mean())


@dataclass
class SeamJerkSummary:
    """Seam jerk against the jerk distribution inside the windows (per boundary: joints reduced by mean or max).

    ``seam_jerk``: one value per seam (m/s^3); ``seam_percentile``: the share of interior boundaries with a
    lower jerk, per seam (1.0 = above every interior boundary); ``ratio_to_median``: seam jerk over the
    interior median; ``interior``: mean, median, p95, p99, max over interior boundaries (those whose stencil
    touches no seam, with ``guard`` boundaries excluded on each side); ``visible``: per seam, the seam jerk
    exceeds the interior ``quantile`` (default p99), the suggested "visible seam" test.
    """

    seams: list
    seam_jerk: list
    seam_percentile: list
    ratio_to_median: list
    interior: dict
    n_interior: int
    visible: list
    quantile: float

    @property
    def any_visible(self) -> bool:
        return any(self.visible)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["any_visible"] = self.any_visible
        return d


def seam_jerk_summary(sample: DanceSample, seams: Sequence[int], joints: Sequence[str] | None = None, *,
                      guard: int = 1, reduce: str = "mean", quantile: float = 0.99,
                      period: int | None = None) -> SeamJerkSummary:
    """Compare the jerk at ``seams`` (first frames of stitched windows) with the jerk inside the windows.

    ``guard``: boundaries within this many of a seam are neither seam nor interior (1 = exactly the
    stencils that span the seam's frame step). ``reduce``: how a boundary's joints are summarised
    (``"mean"`` or ``"max"`` of their jerk magnitudes). ``period``: compare only with interior boundaries in
    the same phase as the seams modulo ``period`` (a generator that upsamples tokens of ``period`` frames has
    a jerk pattern with that period, and seams placed on token boundaries must be compared with token
    boundaries, not with the quiet frames between them).
    """
    if reduce not in ("mean", "max"):
        raise InputError(sample.name, "unknown jerk reduction", field="reduce", expected="'mean' or 'max'",
                         got=repr(reduce))
    if not 0 < quantile <= 1:
        raise InputError(sample.name, "bad quantile", field="quantile", expected="0 < q <= 1", got=str(quantile))
    seam_vals = jerk_at(sample, seams, joints)
    series = jerk(sample, joints)
    agg = np.mean if reduce == "mean" else np.max
    per_boundary = agg(series, axis=1)  # boundary b = row + 2
    seam_scalar = agg(seam_vals, axis=1)
    boundaries = np.arange(len(per_boundary)) + 2
    keep = np.ones(len(per_boundary), dtype=bool)
    seam_arr = np.asarray(list(seams), dtype=np.int64).reshape(-1)
    for s in seam_arr:
        keep &= np.abs(boundaries - s) > guard
    if period is not None and period > 1 and len(seam_arr):
        keep &= (boundaries - seam_arr[0]) % period == 0
    interior = per_boundary[keep]
    if len(interior) == 0:
        raise InputError(sample.name, "no interior frames left to compare seams with", field="seams",
                         expected="windows longer than the guard",
                         got=f"{len(seams)} seams in {sample.num_frames} frames")
    median = float(np.median(interior))
    q_val = float(np.quantile(interior, quantile))
    stats = {"mean": float(interior.mean()), "median": median, "p95": float(np.quantile(interior, 0.95)),
             "p99": float(np.quantile(interior, 0.99)), "max": float(interior.max()), f"q{quantile:g}": q_val}
    pct = [float((interior < v).mean()) for v in seam_scalar]
    ratio = [float(v / median) if median > 0 else float("inf") if v > 0 else 1.0 for v in seam_scalar]
    return SeamJerkSummary(seams=[int(s) for s in seams], seam_jerk=[float(v) for v in seam_scalar],
                           seam_percentile=pct, ratio_to_median=ratio, interior=stats, n_interior=int(len(interior)),
                           visible=[bool(v > q_val) for v in seam_scalar], quantile=float(quantile))
