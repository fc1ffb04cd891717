"""Temporal stability of a video: the optical-flow warping error (lower is steadier).

Definition (Lai et al., "Learning Blind Video Temporal Consistency", ECCV 2018, with an absolute instead of a
squared difference): for each pair of consecutive frames, the backward flow from frame t+1 to frame t
(``cv2.calcOpticalFlowFarneback`` on grey frames) warps frame t onto frame t+1; the error of the pair is the
mean absolute RGB difference between frame t+1 and the warped frame t, in 8-bit levels (0-255), over the
pixels the flow can explain: pixels whose flow leaves the image, and pixels that fail the forward-backward
consistency check (occlusions and dis-occlusions; Sundaram et al. 2010:
``|f(p + b(p)) + b(p)|^2 > 0.01 (|f(p + b(p))|^2 + |b(p)|^2) + 0.5``), are left out. The clip's error is the
mean over pairs.

Which frames the flow comes from: by default the video's own frames (the usual definition: it scores
self-consistency, so content that moves smoothly is free and flicker, popping and texture swimming cost);
``flow_from`` takes the flow from another sequence of the same size instead, e.g. the ground truth, which
also charges the video for not moving like the ground truth. A frozen video scores 0 on its own flow: report
this metric next to a fidelity or pose-following score, and the ground truth's own error as the floor the
flow estimator leaves (Farneback is not exact on real motion, so even a perfect video scores above 0).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from encoders.errors import InputError

#: Farneback parameters: pyramid scale, levels, window, iterations, poly_n, poly_sigma, flags. A 3-level
#: pyramid with a 15-px window follows motions of ~20 px a frame at 256 px, enough for dance at 30 fps.
FARNEBACK = (0.5, 3, 15, 3, 5, 1.2, 0)
#: Forward-backward check constants (Sundaram et al.): relative and absolute (px^2) tolerance.
FB_REL, FB_ABS = 0.01, 0.5


@dataclass(frozen=True)
class PairFlows:
    """Backward flows (T-1, H, W, 2) from frame t+1 to t and the masks (T-1, H, W) bool of pixels they explain."""

    backward: np.ndarray
    valid: np.ndarray


@dataclass(frozen=True)
class WarpingError:
    """Per-pair warping errors (T-1,) in 8-bit levels, their mean, and the mean fraction of pixels scored."""

    per_pair: np.ndarray
    coverage: np.ndarray

    @property
    def mean(self) -> float:
        return float(np.mean(self.per_pair)) if self.per_pair.size else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"warp_error": round(self.mean, 4), "warp_error_max": round(float(self.per_pair.max(initial=0.0)), 4),
                "coverage": round(float(np.mean(self.coverage)) if self.coverage.size else 1.0, 4),
                "pairs": int(self.per_pair.size)}


def _frames(frames: Any, name: str) -> np.ndarray:
    a = np.asarray(frames)
    if a.ndim != 4 or a.shape[-1] != 3 or a.dtype != np.uint8 or a.shape[0] < 2 or min(a.shape[1:3]) < 8:
        raise InputError(None, f"bad {name}", field=name, expected="uint8 (T >= 2, H >= 8, W >= 8, 3) RGB frames",
                         got=f"{a.dtype} {a.shape}")
    return a


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return xs, ys


def pair_flows(frames: Any) -> PairFlows:
    """Backward flow of each consecutive pair of ``frames`` and its forward-backward validity mask."""
    import cv2

    a = _frames(frames, "frames")
    t, h, w, _ = a.shape
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in a]
    xs, ys = _grid(h, w)
    back = np.empty((t - 1, h, w, 2), np.float32)
    valid = np.empty((t - 1, h, w), bool)
    for i in range(t - 1):
        b = cv2.calcOpticalFlowFarneback(grey[i + 1], grey[i], None, *FARNEBACK)   # frame t+1 -> t
        f = cv2.calcOpticalFlowFarneback(grey[i], grey[i + 1], None, *FARNEBACK)   # frame t -> t+1
        mx, my = xs + b[..., 0], ys + b[..., 1]
        inside = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
        f_at = cv2.remap(f, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        loop = f_at + b
        consistent = (loop ** 2).sum(-1) <= FB_REL * ((f_at ** 2).sum(-1) + (b ** 2).sum(-1)) + FB_ABS
        back[i], valid[i] = b, inside & consistent
    return PairFlows(back, valid)


def warping_error(frames: Any, *, flow_from: Any = None, flows: PairFlows | None = None) -> WarpingError:
    """Warping error of ``frames`` (uint8 (T, H, W, 3)); see the module docstring.

    ``flow_from``: frames (same shape) whose flow is used instead of ``frames``' own; ``flows``: flows
    already computed by :func:`pair_flows` (e.g. of the ground truth, reused for several videos).
    """
    import cv2

    a = _frames(frames, "frames")
    if flows is None:
        if flow_from is not None:
            src = _frames(flow_from, "flow_from")
            if src.shape != a.shape:
                raise InputError(None, "flow frames and video differ in shape", field="flow_from",
                                 expected=str(a.shape), got=str(src.shape))
            flows = pair_flows(src)
        else:
            flows = pair_flows(a)
    if flows.backward.shape[:3] != (a.shape[0] - 1, *a.shape[1:3]):
        raise InputError(None, "flows do not match the video", field="flows",
                         expected=f"{a.shape[0] - 1} pairs of {a.shape[1]}x{a.shape[2]}",
                         got=str(flows.backward.shape))
    h, w = a.shape[1:3]
    xs, ys = _grid(h, w)
    errs = np.empty(a.shape[0] - 1)
    cover = np.empty(a.shape[0] - 1)
    for i in range(a.shape[0] - 1):
        b = flows.backward[i]
        warped = cv2.remap(a[i], xs + b[..., 0], ys + b[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        m = flows.valid[i]
        n = int(m.sum())
        cover[i] = n / m.size
        diff = np.abs(a[i + 1].astype(np.float32) - warped.astype(np.float32)).mean(-1)
        errs[i] = float(diff[m].mean()) if n else 0.0
    return WarpingError(errs, cover)
