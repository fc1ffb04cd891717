"""Pose following: does the person in a video stand where the target pose says? (weight-free, mediapipe)

Why: SSIM / PSNR reward a blurry average and punish a sharp dancer a few pixels off; the question a pose
guided video must answer first is whether the body in each output frame takes the target pose. A pose
detector run on the output (mediapipe Pose through
:func:`generation.video.appearance.detect.detect_pose`, mapped to the 18 OpenPose body keypoints) is compared
with the target's projected OpenPose keypoints (:attr:`GuidanceRenderer.keypoints`, first 18).

Scores, over the frames scored (every ``stride``-th):

- ``pck``: PCK@alpha, the fraction of the target's valid keypoints whose detection lies within
  ``alpha`` x the diagonal of the target's keypoint bounding box in that frame (a whole-body scale that,
  unlike torso size, does not collapse when the dancer turns side-on or bends); a keypoint the detector does
  not report (visibility below ``min_visibility``, or no person found) counts as a miss;
- ``mean_error_px``: mean pixel distance over the keypoints both valid in the target and detected;
- ``detection_rate``: fraction of frames where a person was found; ``keypoint_rate``: fraction of target
  valid keypoints the detector reported.

Read the scores against the same detector on the ground-truth frames (the ceiling): mediapipe's keypoints
are defined differently from the SMPL-derived ones (hip centres sit inside the pelvis in SMPL, outside on
the skin for mediapipe; the face points are average offsets), so even a perfect video does not reach 1.0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from encoders.errors import InputError

NUM_BODY = 18
#: Default tolerance: 10% of the target's keypoint-box diagonal (about 20 px for a dancer 180 px tall).
DEFAULT_ALPHA = 0.1
#: Detections below this mediapipe visibility are treated as not reported (mediapipe's own convention).
DEFAULT_MIN_VISIBILITY = 0.5

Detector = Callable[[np.ndarray], Any]


@dataclass(frozen=True)
class Detections:
    """Detector output over a sequence: keypoints (N, 18, 2), visibility (N, 18), found (N,) and frame indices."""

    keypoints: np.ndarray
    visibility: np.ndarray
    found: np.ndarray
    frames: np.ndarray


@dataclass(frozen=True)
class PoseFollowing:
    """PCK@``alpha``, mean pixel error, detection and keypoint rates; per-frame PCK (N,) (NaN where the target
    has no scale) and per-keypoint PCK (K,) (NaN for a keypoint never valid in the target)."""

    pck: float
    alpha: float
    mean_error_px: float
    detection_rate: float
    keypoint_rate: float
    per_frame_pck: np.ndarray
    per_keypoint_pck: np.ndarray

    def as_dict(self) -> dict[str, Any]:
        kp = [None if np.isnan(v) else round(float(v), 4) for v in self.per_keypoint_pck]
        return {"pck": round(self.pck, 4), "alpha": self.alpha, "mean_error_px": round(self.mean_error_px, 3),
                "detection_rate": round(self.detection_rate, 4), "keypoint_rate": round(self.keypoint_rate, 4),
                "frames": int(np.isfinite(self.per_frame_pck).sum()), "per_keypoint_pck": kp}


def _default_detector() -> Detector:
    from generation.video.appearance.detect import detect_pose

    return detect_pose


def detect_sequence(frames: Any, *, stride: int = 1, detector: Detector | None = None) -> Detections:
    """Run ``detector`` (default: mediapipe through ``detect_pose``) on every ``stride``-th frame.

    A frame where the detector finds nobody (it returns all-zero visibility, None, or raises ``InputError``)
    is recorded as ``found=False`` with zero visibility; any other exception propagates.
    """
    a = np.asarray(frames)
    if a.ndim != 4 or a.shape[-1] != 3 or a.dtype != np.uint8:
        raise InputError(None, "bad frames", field="frames", expected="uint8 (T, H, W, 3) RGB frames",
                         got=f"{a.dtype} {a.shape}")
    if int(stride) < 1:
        raise InputError(None, "bad stride", field="stride", expected=">= 1", got=repr(stride))
    detect = detector or _default_detector()
    idx = np.arange(0, a.shape[0], int(stride))
    kps = np.zeros((idx.size, NUM_BODY, 2), np.float32)
    vis = np.zeros((idx.size, NUM_BODY), np.float32)
    found = np.zeros(idx.size, bool)
    for i, t in enumerate(idx):
        try:
            out = detect(np.ascontiguousarray(a[t]))
        except InputError:
            out = None
        if out is None:
            continue
        k, v = out
        kps[i] = np.asarray(k, np.float32)[:NUM_BODY, :2]
        vis[i] = np.asarray(v, np.float32)[:NUM_BODY]
        found[i] = bool(np.any(vis[i] > 0))       # detect_pose answers all-zero visibility for nobody
    return Detections(kps, vis, found, idx)


def compare_keypoints(detected: Any, detected_valid: Any, target: Any, target_valid: Any, *,
                      alpha: float = DEFAULT_ALPHA, found: Any = None) -> PoseFollowing:
    """Score detections (N, K, 2) + validity (N, K) against target keypoints (N, K, 2) + validity (N, K).

    ``found`` (N,) bool: frames where a person was detected (default: any keypoint detected). Frames whose
    target has fewer than 2 valid keypoints have no scale and are skipped.
    """
    d, t = np.asarray(detected, np.float64), np.asarray(target, np.float64)
    dv, tv = np.asarray(detected_valid, bool), np.asarray(target_valid, bool)
    if d.ndim != 3 or d.shape[-1] != 2 or d.shape != t.shape or dv.shape != d.shape[:2] or tv.shape != d.shape[:2]:
        raise InputError(None, "keypoint arrays disagree", field="keypoints",
                         expected="(N, K, 2) detected and target, (N, K) validities",
                         got=f"{d.shape} {t.shape} {dv.shape} {tv.shape}")
    if not 0.0 < float(alpha) <= 1.0:
        raise InputError(None, "bad PCK threshold", field="alpha", expected="0 < alpha <= 1", got=repr(alpha))
    found = dv.any(axis=1) if found is None else np.asarray(found, bool)
    lo = np.where(tv[..., None], t, np.inf).min(axis=1)
    hi = np.where(tv[..., None], t, -np.inf).max(axis=1)
    scored = tv.sum(axis=1) >= 2
    diag = np.where(scored, np.linalg.norm(np.where(scored[:, None], hi - lo, 0.0), axis=1), np.nan)
    dist = np.linalg.norm(d - t, axis=-1)
    both = tv & dv & scored[:, None]
    hit = both & (dist <= float(alpha) * diag[:, None])
    want = tv & scored[:, None]
    n_want = want.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_frame = np.where(n_want > 0, hit.sum(axis=1) / np.maximum(n_want, 1), np.nan)
        per_kp = np.where(want.sum(axis=0) > 0, hit.sum(axis=0) / np.maximum(want.sum(axis=0), 1), np.nan)
    total = int(want.sum())
    return PoseFollowing(
        pck=float(hit.sum() / total) if total else float("nan"), alpha=float(alpha),
        mean_error_px=float(dist[both].mean()) if both.any() else float("nan"),
        detection_rate=float(found[scored].mean()) if scored.any() else float("nan"),
        keypoint_rate=float((both.sum()) / total) if total else float("nan"),
        per_frame_pck=per_frame, per_keypoint_pck=per_kp)


def pose_following(frames: Any, target: Any, target_valid: Any, *, alpha: float = DEFAULT_ALPHA,
                   min_visibility: float = DEFAULT_MIN_VISIBILITY, stride: int = 1,
                   detector: Detector | None = None, detections: Detections | None = None) -> PoseFollowing:
    """PCK@``alpha`` etc. of ``frames`` (uint8 (T, H, W, 3)) against target keypoints (T, >= 18, 2) / validity.

    Only the first 18 (OpenPose body) target keypoints are used. ``detections``: reuse an earlier
    :func:`detect_sequence` result of these frames (then ``stride``/``detector`` are not used).
    """
    tk, tvalid = np.asarray(target, np.float64), np.asarray(target_valid, bool)
    n = np.asarray(frames).shape[0] if detections is None else None
    if tk.ndim != 3 or tk.shape[1] < NUM_BODY or tk.shape[-1] != 2 or tvalid.shape != tk.shape[:2] or (
            n is not None and tk.shape[0] != n):
        raise InputError(None, "target keypoints do not match the frames", field="target",
                         expected=f"({n if n is not None else 'T'}, >= {NUM_BODY}, 2) keypoints and (T, K) validity",
                         got=f"{tk.shape} {tvalid.shape}")
    det = detections if detections is not None else detect_sequence(frames, stride=stride, detector=detector)
    idx = det.frames
    return compare_keypoints(det.keypoints, det.found[:, None] & (det.visibility >= float(min_visibility)),
                             tk[idx, :NUM_BODY], tvalid[idx, :NUM_BODY], alpha=alpha, found=det.found)
