"""Floor penetration: how often and how far joints go below the floor. Lower is better.

Heights are joint centres on the +y axis (metres). The floor:

- ``floor="zero"`` (default): y = 0, the project's frame. The project grounds motion so that the lowest
  foot joint *centre* stands at y = 0 (BVH import, procedural grounding, generated motion is trained on
  that), so a joint below 0 is below where planted feet stand. This catches a generator that sinks or
  floats the whole body.
- ``floor="estimate"``: the sequence's own floor, the project's estimate
  (``encoders.motion.bvh.floor_height``: lowest foot joint per frame, 5th percentile over frames). It
  ignores a global vertical offset and measures only joints dipping below the level the feet usually
  stand on (a foot sinking through the floor in some frames, a knee or hand going through in floor work).
  By construction about 5 % of frames have a foot joint at or below this level, mostly by millimetres,
  which ``tolerance`` absorbs.
- a number: that height.

A joint penetrates when it is more than ``tolerance`` (default 0.01 m, tracking and joint-centre noise)
below the floor; its depth is then measured from the floor. Per frame, the depth is the deepest joint's
(0 when none penetrates). Joint centres sit above the skin (the toe joint ~2-5 cm above the sole), so
this counts gross penetration only, not mesh contact.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable, Sequence

import numpy as np

from encoders.errors import InputError
from encoders.motion.bvh import floor_height
from encoders.motion.skeleton import FOOT_JOINTS

from .sample import DanceSample

TOLERANCE = 0.01


@dataclass
class PenetrationResult:
    """``frame_fraction``: share of frames with a penetrating joint; ``joint_fraction``: share of
    joint-frames; ``mean_depth``: mean over all frames of the per-frame depth (m); ``mean_depth_below``:
    mean over penetrating frames; ``max_depth``: deepest (m); ``floor``: the floor height used."""

    frame_fraction: float
    joint_fraction: float
    mean_depth: float
    mean_depth_below: float
    max_depth: float
    frames_below: int
    frames: int
    floor: float

    def as_dict(self) -> dict:
        return asdict(self)


def estimate_floor(sample: DanceSample) -> float:
    """The project's floor estimate from the four foot joints (5th percentile of the lowest per frame)."""
    return floor_height(sample.joints(FOOT_JOINTS)[..., 1])


def _floor_level(sample: DanceSample, floor: str | float) -> float:
    if isinstance(floor, str):
        if floor == "zero":
            return 0.0
        if floor == "estimate":
            return estimate_floor(sample)
        raise InputError(sample.name, "unknown floor for penetration", field="floor",
                         expected="'zero', 'estimate' or a height in metres", got=repr(floor))
    return float(floor)


def floor_penetration(sample: DanceSample, *, floor: str | float = "zero", joints: Sequence[str] | None = None,
                      tolerance: float = TOLERANCE) -> PenetrationResult:
    """Floor penetration of one dance; ``joints`` restricts the joints checked (default: all)."""
    sample.require_frames(1, "floor penetration")
    level = _floor_level(sample, floor)
    height = (sample.positions if joints is None else sample.joints(joints))[..., 1]  # (T, J)
    below = height < level - tolerance
    depth = np.where(below, level - height, 0.0)
    per_frame = depth.max(axis=1)
    hit = below.any(axis=1)
    n = len(per_frame)
    return PenetrationResult(
        frame_fraction=float(hit.mean()), joint_fraction=float(below.mean()), mean_depth=float(per_frame.mean()),
        mean_depth_below=float(per_frame[hit].mean()) if hit.any() else 0.0, max_depth=float(per_frame.max()),
        frames_below=int(hit.sum()), frames=n, floor=level)


def floor_penetration_set(samples: Iterable[DanceSample], **kwargs) -> PenetrationResult:
    """Set level: frame-weighted over all samples (fractions and means over the pooled frames)."""
    results = [floor_penetration(s, **kwargs) for s in samples]
    if not results:
        raise InputError(None, "no samples to score", field="samples", expected=">= 1 sample", got="0")
    frames = sum(r.frames for r in results)
    below = sum(r.frames_below for r in results)
    return PenetrationResult(
        frame_fraction=below / frames,
        joint_fraction=sum(r.joint_fraction * r.frames for r in results) / frames,
        mean_depth=sum(r.mean_depth * r.frames for r in results) / frames,
        mean_depth_below=(sum(r.mean_depth_below * r.frames_below for r in results) / below) if below else 0.0,
        max_depth=max(r.max_depth for r in results), frames_below=below, frames=frames, floor=float("nan"))
