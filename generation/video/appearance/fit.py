"""From mediapipe landmarks to our body: the reference pose (22 SMPL joints), a camera for the photo, proportions.

Why fit a camera rather than trust the landmarks: the preview maps every target pixel back into the photo,
so the reference pose must project *exactly* onto the photo's limbs. mediapipe's world landmarks give
metric depth and proportions but drift by centimetres in x/y; its 2D landmarks are where the limbs are.
So: a pinhole camera with a fixed field of view (the photo's is unknown; 35 degrees matches the guidance
renderer's default) is fitted to the world landmarks (distance and principal point, least squares), and
each landmark is then moved within its depth plane to project onto its 2D position, keeping its depth.

Reference world frame: the photo camera's axes (x right, y up, z towards the camera), origin between the
hips, metres; the camera sits at ``(0, 0, distance)`` looking down -z (an off-centre frustum carries the
principal point).

The trunk (pelvis, spine, neck, collars, head) is placed like :func:`encoders.motion.canonical.canonical_body`
does: canonical rest offsets in the pelvis and chest frames, here scaled to the person's hip-to-shoulder
height and shoulder width. :func:`retarget_body` is that function's algorithm with the person's rest
skeleton in place of the canonical one (limb directions kept, lengths the person's).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from encoders.errors import InputError
from encoders.motion.canonical import (CHEST_FRAME_JOINTS, LIMB_CHAINS, PELVIS_FRAME_JOINTS, canonical_body,
                                       canonical_rest, frames_from_axes)
from encoders.motion.record import MotionRecord
from encoders.motion.skeleton import FOOT_JOINTS, SMPL_BODY_22

from ..camera import Camera
from .detect import LM, VISIBLE, Detection

J: dict[str, int] = {n: i for i, n in enumerate(SMPL_BODY_22)}
#: Vertical field of view assumed for a photo (degrees): the guidance renderer's default.
PHOTO_FOV_DEG = 35.0
#: Landmarks the camera is fitted to (the limb joints: mediapipe places them best).
FIT_LANDMARKS: tuple[int, ...] = tuple(LM[n] for n in (
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"))
#: Limb joints taken straight from a landmark.
LIMB_LANDMARKS: dict[str, str] = {
    "left_hip": "left_hip", "right_hip": "right_hip", "left_knee": "left_knee", "right_knee": "right_knee",
    "left_ankle": "left_ankle", "right_ankle": "right_ankle", "left_shoulder": "left_shoulder",
    "right_shoulder": "right_shoulder", "left_elbow": "left_elbow", "right_elbow": "right_elbow",
    "left_wrist": "left_wrist", "right_wrist": "right_wrist"}
#: SMPL's foot joint (ball of the foot) as a fraction of ankle -> mediapipe foot_index (toe tip).
FOOT_FRACTION = 0.65
#: A fitted bone may differ from the canonical one by at most this factor (mediapipe depth can be wild).
LENGTH_RATIO_RANGE = (0.6, 1.6)
#: Weight of limb joints (vs trunk joints) when the dance's first frame is aligned to the photo.
LIMB_WEIGHT = 0.3
#: Bones whose lengths make a person's proportions, (parent, child) per side ("{s}" = left / right).
LIMB_BONES: tuple[tuple[str, str], ...] = (
    ("{s}_hip", "{s}_knee"), ("{s}_knee", "{s}_ankle"), ("{s}_ankle", "{s}_foot"),
    ("{s}_shoulder", "{s}_elbow"), ("{s}_elbow", "{s}_wrist"))


@dataclass(frozen=True)
class BodyFit:
    """The reference person's body as our renderer knows bodies.

    ``joints`` (22, 3): the photo's pose in the reference world (see the module docstring);
    ``hand_tips`` (2, 3): left / right hand ends (mediapipe index/pinky knuckles' midpoint), for the hands'
    direction; ``camera``: the photo's camera (image size = the photo's); ``rest`` (22, 3): the person's
    rest skeleton (canonical pose, the person's bone lengths, feet at y = 0, facing +z);
    ``lengths``: bone name -> metres (left/right averaged); ``floor_y``: the photo's floor height (y of the
    lower foot joint) in the reference world.
    """

    joints: np.ndarray
    hand_tips: np.ndarray
    camera: Camera
    rest: np.ndarray
    lengths: dict[str, float] = field(default_factory=dict)
    floor_y: float = 0.0

    @property
    def facing(self) -> np.ndarray:
        """(3,) unit forward direction of the trunk in the reference world (+z = towards the camera)."""
        return trunk_frame(self.joints[None])[0][:, 2]


def trunk_frame(body: np.ndarray) -> np.ndarray:
    """(T, 3, 3) columns (left, up, forward) from hips and shoulders (as ``GuidanceJoints.trunk_frames``)."""
    lateral = (body[:, J["left_hip"]] - body[:, J["right_hip"]]) + (body[:, J["left_shoulder"]]
                                                                    - body[:, J["right_shoulder"]])
    up = 0.5 * (body[:, J["left_shoulder"]] + body[:, J["right_shoulder"]]) \
        - 0.5 * (body[:, J["left_hip"]] + body[:, J["right_hip"]])
    return frames_from_axes(lateral, up)


def _project(points: np.ndarray, f: float, dist: float, cx: float, cy: float) -> np.ndarray:
    depth = np.maximum(dist - points[:, 2], 1e-3)
    return np.stack([cx + f * points[:, 0] / depth, cy - f * points[:, 1] / depth], axis=-1)


def fit_photo_camera(world: np.ndarray, pixels: np.ndarray, weights: np.ndarray, width: int, height: int,
                     fov_deg: float = PHOTO_FOV_DEG) -> tuple[float, float, float, float]:
    """(focal px, distance m, cx, cy) of the pinhole that best projects ``world`` (N, 3) onto ``pixels`` (N, 2).

    The focal length follows from ``fov_deg``; for each candidate distance the principal point is the
    weighted mean residual (closed form), and the distance is searched on a log grid, then refined.
    """
    f = 0.5 * height / np.tan(np.radians(fov_deg) / 2)
    w = np.asarray(weights, dtype=np.float64)
    w = w / max(w.sum(), 1e-9)
    reach = float(np.abs(world[:, 2]).max()) + 0.05

    def solve(dist: float) -> tuple[float, float, float]:
        p = _project(world, f, dist, 0.0, 0.0)
        c = ((pixels - p) * w[:, None]).sum(0)
        err = float((((p + c - pixels) ** 2).sum(-1) * w).sum())
        return err, float(c[0]), float(c[1])

    grid = reach + np.geomspace(0.1, 200.0, 160)
    errs = [solve(d)[0] for d in grid]
    k = int(np.argmin(errs))
    lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
    for _ in range(40):                              # golden-section refinement between the grid neighbours
        a, b = lo + 0.382 * (hi - lo), lo + 0.618 * (hi - lo)
        if solve(a)[0] < solve(b)[0]:
            hi = b
        else:
            lo = a
    dist = 0.5 * (lo + hi)
    _, cx, cy = solve(dist)
    return float(f), float(dist), cx, cy


def _snap_to_pixels(world: np.ndarray, pixels: np.ndarray, f: float, dist: float, cx: float, cy: float) -> np.ndarray:
    """Move each point within its depth plane so it projects exactly onto its pixel."""
    depth = np.maximum(dist - world[:, 2], 1e-3)
    return np.stack([(pixels[:, 0] - cx) * depth / f, -(pixels[:, 1] - cy) * depth / f, world[:, 2]], axis=-1)


def landmarks_to_joints(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(33, 3) landmarks in the reference world -> ((22, 3) SMPL joints, (2, 3) hand tips)."""
    p = lambda name: points[LM[name]]          # noqa: E731 - a short local accessor
    out = np.zeros((len(SMPL_BODY_22), 3))
    for joint, lm in LIMB_LANDMARKS.items():
        out[J[joint]] = p(lm)
    for s in ("left", "right"):
        out[J[f"{s}_foot"]] = p(f"{s}_ankle") + FOOT_FRACTION * (p(f"{s}_foot_index") - p(f"{s}_ankle"))
    rest = canonical_rest()
    hip_mid = 0.5 * (out[J["left_hip"]] + out[J["right_hip"]])
    sho_mid = 0.5 * (out[J["left_shoulder"]] + out[J["right_shoulder"]])
    frame = trunk_frame(out[None])[0]
    rest_frame = trunk_frame(rest[None])[0]
    rest_up = float(np.linalg.norm(0.5 * (rest[J["left_shoulder"]] + rest[J["right_shoulder"]])))
    rest_wide = float(np.linalg.norm(rest[J["left_shoulder"]] - rest[J["right_shoulder"]]))
    s_up = np.clip(np.linalg.norm(sho_mid - hip_mid) / rest_up, *LENGTH_RATIO_RANGE)
    s_wide = np.clip(np.linalg.norm(out[J["left_shoulder"]] - out[J["right_shoulder"]]) / rest_wide,
                     *LENGTH_RATIO_RANGE)
    scale = np.array([s_wide, s_up, 0.5 * (s_wide + s_up)])
    local = (rest @ rest_frame) * scale                       # (lateral, up, forward) offsets, person-sized
    for name in PELVIS_FRAME_JOINTS + CHEST_FRAME_JOINTS + ("spine2",):
        if name not in LIMB_LANDMARKS:
            out[J[name]] = hip_mid + frame @ local[J[name]]
    ears = 0.5 * (p("left_ear") + p("right_ear"))
    out[J["head"]] = ears - 0.015 * frame[:, 1]               # SMPL-X's head joint sits just below the ears
    tips = np.stack([0.5 * (p(f"{s}_index") + p(f"{s}_pinky")) for s in ("left", "right")])
    return out, tips


def bone_lengths(joints: np.ndarray) -> dict[str, float]:
    """Limb bone lengths (metres), left and right averaged, clipped to a plausible range of the canonical's."""
    rest = canonical_rest()
    out: dict[str, float] = {}
    for parent, child in LIMB_BONES:
        key = f"{parent.format(s='')[1:]}-{child.format(s='')[1:]}"
        got = np.mean([np.linalg.norm(joints[J[child.format(s=s)]] - joints[J[parent.format(s=s)]])
                       for s in ("left", "right")])
        canon = float(np.linalg.norm(rest[J[child.format(s="left")]] - rest[J[parent.format(s="left")]]))
        out[key] = float(np.clip(got, canon * LENGTH_RATIO_RANGE[0], canon * LENGTH_RATIO_RANGE[1]))
    return out


def rest_skeleton(joints: np.ndarray, lengths: dict[str, float]) -> np.ndarray:
    """The person's rest skeleton: canonical pose, the fitted trunk (turned to face +z), the person's limb
    lengths, feet at y = 0."""
    rest = canonical_rest()
    rest_frame = trunk_frame(rest[None])[0]
    hip_mid = 0.5 * (joints[J["left_hip"]] + joints[J["right_hip"]])
    trunk = (joints - hip_mid) @ trunk_frame(joints[None])[0] @ rest_frame.T   # photo trunk frame -> rest frame
    out = rest.copy()
    for name in PELVIS_FRAME_JOINTS + CHEST_FRAME_JOINTS + ("spine2",):
        out[J[name]] = trunk[J[name]]
    for chain in LIMB_CHAINS:
        for parent, child in zip(chain[:-1], chain[1:]):
            p, c = J[parent], J[child]
            key = f"{parent.split('_', 1)[1]}-{child.split('_', 1)[1]}"
            direction = rest[c] - rest[p]
            out[c] = out[p] + lengths[key] * direction / np.linalg.norm(direction)
    out[:, 1] -= out[[J[n] for n in FOOT_JOINTS], 1].min()
    return out


def fit_body(det: Detection, width: int, height: int, *, fov_deg: float = PHOTO_FOV_DEG) -> BodyFit:
    """Fit the reference pose, the photo camera and the person's proportions to one detection."""
    world = det.world * np.array([1.0, -1.0, -1.0])          # mediapipe (y down, z away) -> y up, z towards us
    idx = np.asarray(FIT_LANDMARKS)
    weights = np.where(det.visibility[idx] >= VISIBLE, 1.0, 0.05)
    if not np.isfinite(world).all() or np.ptp(world[idx], axis=0).max() < 1e-3:
        raise InputError(None, "the pose has no 3D extent", field="landmarks", expected="mediapipe world landmarks",
                         got="degenerate")
    f, dist, cx, cy = fit_photo_camera(world[idx], det.landmarks[idx], weights, width, height, fov_deg)
    snapped = _snap_to_pixels(world, det.landmarks, f, dist, cx, cy)
    joints, tips = landmarks_to_joints(snapped)
    depth = dist - np.concatenate([joints[:, 2], tips[:, 2]])
    near, far = max(0.05, 0.25 * float(depth.min())), float(depth.max()) + 10.0
    camera = Camera(width=int(width), height=int(height), projection="perspective", eye=np.array([0.0, 0.0, dist]),
                    rotation=np.eye(3), frustum=(-cx / f, (width - cx) / f, (cy - height) / f, cy / f),
                    near=near, far=far, depth_range=(float(depth.min()) - 0.2, float(depth.max()) + 0.2))
    lengths = bone_lengths(joints)
    floor = float(joints[[J[n] for n in FOOT_JOINTS], 1].min())
    return BodyFit(joints, tips, camera, rest_skeleton(joints, lengths), lengths, floor)


def retarget_body(body: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """(T, 22, 3) motion -> the same motion on a body with ``rest``'s proportions (feet on y = 0):
    :func:`encoders.motion.canonical.canonical_body` onto ``rest`` (trunk joints rigid in the pelvis / chest
    frames, limb directions kept, limb lengths ``rest``'s, the hip midpoint's path scaled by the leg-length
    ratio)."""
    body = np.asarray(body, dtype=np.float64)
    if body.ndim != 3 or body.shape[1:] != (len(SMPL_BODY_22), 3) or len(body) == 0:
        raise InputError(None, "bad body joint positions", field="positions",
                         expected=f"(T>=1, {len(SMPL_BODY_22)}, 3)", got=str(body.shape))
    return canonical_body(body, rest)


def yaw_matrix(angle: float) -> np.ndarray:
    """(3, 3) rotation about +y by ``angle`` radians."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _align_to_photo(first: np.ndarray, fit: BodyFit, angle: float, shift: np.ndarray) -> tuple[float, np.ndarray]:
    """Refine the dance's turn and offset so its first frame projects onto the photo's person.

    Why: the photo's facing comes from mediapipe's depth (a few degrees off turns the whole body in the
    image) and its distance from an assumed field of view. Least squares over (turn, offset) of the
    first frame's projected joints against the fitted pose's (= the photo's landmarks), trunk joints
    weighted fully and limb joints at :data:`LIMB_WEIGHT` (the dance need not start in the photo's pose).
    """
    from scipy.optimize import least_squares

    target, _ = fit.camera.project(fit.joints)
    weights = np.full(len(SMPL_BODY_22), LIMB_WEIGHT)
    weights[[J[n] for n in ("left_hip", "right_hip", "left_shoulder", "right_shoulder", "pelvis", "neck")]] = 1.0
    scale = max(float(np.ptp(target[:, 1])), 1.0)

    def residual(p: np.ndarray) -> np.ndarray:
        pts = first @ yaw_matrix(angle + p[0]).T + shift + p[1:]
        px, _ = fit.camera.project(pts)
        return ((px - target) * weights[:, None]).ravel() / scale

    sol = least_squares(residual, np.zeros(4), x_scale=np.array([0.3, 0.1, 0.1, 0.3]), max_nfev=200)
    return angle + float(sol.x[0]), shift + sol.x[1:]


def place_record(record: MotionRecord, fit: BodyFit, *, retarget: bool = True) -> MotionRecord:
    """``record`` on the person: their proportions, and frame 0 standing where and as they stand in the photo.

    The dance is turned about the vertical so its first frame faces like the photo's trunk, moved so its
    first frame's hip midpoint is over the photo's and its lowest foot joint at the photo's, then turn
    and offset are refined so the first frame projects onto the photo's person (:func:`_align_to_photo`).
    Finger and palm joints (when present) ride rigidly with their wrists. Local rotations are dropped:
    they no longer match the retargeted positions, and the renderer's bodies pose from positions.
    """
    body = record.body22().astype(np.float64)
    new = retarget_body(body, fit.rest) if retarget else body.copy()
    f0 = trunk_frame(new[:1])[0][:, 2]
    want = fit.facing
    angle = np.arctan2(want[0], want[2]) - np.arctan2(f0[0], f0[2])
    hip0 = 0.5 * (new[0, J["left_hip"]] + new[0, J["right_hip"]]) @ yaw_matrix(angle).T
    ref_hip = 0.5 * (fit.joints[J["left_hip"]] + fit.joints[J["right_hip"]])
    shift = np.array([ref_hip[0] - hip0[0],
                      fit.floor_y - (new[0, [J[n] for n in FOOT_JOINTS]] @ yaw_matrix(angle).T)[:, 1].min(),
                      ref_hip[2] - hip0[2]])
    angle, shift = _align_to_photo(new[0], fit, angle, shift)
    rot = yaw_matrix(angle)
    new = new @ rot.T + shift
    names = list(record.joint_names)
    positions = record.positions.astype(np.float64) @ rot.T + shift     # non-body joints: rotated with the rest
    idx = {n: i for i, n in enumerate(names)}
    for k, n in enumerate(SMPL_BODY_22):
        positions[:, idx[n]] = new[:, k]
    old_body = body @ rot.T + shift
    for side in ("left", "right"):
        wrist = J[f"{side}_wrist"]
        delta = new[:, wrist] - old_body[:, wrist]
        for i, n in enumerate(names):
            if n.startswith(f"{side}_") and n not in J:
                positions[:, i] += delta
    trans = 0.5 * (new[:, J["left_hip"]] + new[:, J["right_hip"]])
    return MotionRecord(record.fps, trans, positions.astype(np.float32), names, None, dict(record.meta))
