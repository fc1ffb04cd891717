"""The capsule body: one capsule per bone, so depth, normal and part maps need no SMPL model file.

Why capsules: SMPL/SMPL-X meshes are licence-restricted and absent here; a capsule per bone with
anatomical radii gives the silhouette, depth order and surface orientation a video model conditions on,
from joints alone. A capsule is drawn by instancing one template mesh (:func:`capsule_template`): each
template vertex is a unit direction ``n`` plus an end flag ``e``, and lands at
``mix(a, b, e) + x n.x + y n.y + z n.z`` where ``x, y, z`` are the capsule's scaled axes. The hemispheres
therefore keep their shape whatever the bone length, and unequal radii turn a capsule into an elliptic
one (torso, palm) or, with ``a == b``-like short axes, an ellipsoid (head).

Radii (metres) are an average adult's; the head, torso and pelvis are elliptic (wider than deep).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from encoders.motion.canonical import frames_from_axes

from .joints import GuidanceJoints
from .parts import BodyPart

_EPS = 1e-8
#: Finger radii: thumb, other fingers (metres).
THUMB_RADIUS = 0.011
FINGER_RADIUS = 0.0095


@dataclass(frozen=True)
class CapsuleBody:
    """Every capsule of every frame.

    ``start``/``end``: (T, S, 3) axis end points; ``axes``: (T, S, 3, 3) rows x, y, z = the capsule's
    lateral, axial and depth directions scaled by their radii (y along ``end - start``);
    ``labels``: (S,) :class:`BodyPart` ids; ``reach``: (S,) the largest radius (for camera fitting).
    """

    start: np.ndarray
    end: np.ndarray
    axes: np.ndarray
    labels: np.ndarray
    reach: np.ndarray

    @property
    def num_frames(self) -> int:
        return int(self.start.shape[0])

    @property
    def num_capsules(self) -> int:
        return int(self.start.shape[1])

    def instances(self) -> np.ndarray:
        """(T, S, 16) float32 per-instance vertex data: start, end, x, y, z, label (the GL layout)."""
        t, s = self.start.shape[:2]
        lab = np.broadcast_to(self.labels.astype(np.float32)[None, :, None], (t, s, 1))
        return np.concatenate([self.start, self.end, self.axes.reshape(t, s, 9), lab], axis=-1).astype(np.float32)

    def extent_points(self) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3) capsule end points over all frames and (N,) radii around them: the body's bounding volume."""
        pts = np.concatenate([self.start, self.end], axis=1).reshape(-1, 3)
        pad = np.tile(np.concatenate([self.reach, self.reach]), self.num_frames)
        return pts, pad


def _unit(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, _EPS), n[..., 0]


def _perpendicular(axis: np.ndarray, hint: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Unit vectors perpendicular to unit ``axis``: ``hint`` orthogonalised, or ``fallback`` when nearly parallel."""
    x, n = _unit(hint - (hint * axis).sum(-1, keepdims=True) * axis)
    y, _ = _unit(fallback - (fallback * axis).sum(-1, keepdims=True) * axis)
    return np.where((n > 0.2)[..., None], x, y)


class _Builder:
    """Collects capsules (one per call) as per-frame arrays; ``lateral``/``forward``/``up`` are the trunk's axes."""

    def __init__(self, frames: np.ndarray) -> None:
        self.lateral, self.up, self.forward = frames[..., 0], frames[..., 1], frames[..., 2]
        self.items: list[tuple[np.ndarray, np.ndarray, np.ndarray, int, float]] = []

    def add(self, a: np.ndarray, b: np.ndarray, label: BodyPart, r_lat: float, r_cap: float | None = None,
            r_depth: float | None = None, hint: np.ndarray | None = None) -> None:
        r_cap = r_lat if r_cap is None else r_cap
        r_depth = r_lat if r_depth is None else r_depth
        axis, length = _unit(b - a)
        axis = np.where((length > 1e-6)[..., None], axis, self.up)
        x = _perpendicular(axis, self.lateral if hint is None else hint, self.forward)
        z = np.cross(x, axis)                      # (x, axis, z) is right-handed: the template's winding holds
        axes = np.stack([x * r_lat, axis * r_cap, z * r_depth], axis=-2)
        self.items.append((a, b, axes, int(label), max(r_lat, r_cap, r_depth)))

    def build(self) -> CapsuleBody:
        return CapsuleBody(
            start=np.stack([i[0] for i in self.items], axis=1),
            end=np.stack([i[1] for i in self.items], axis=1),
            axes=np.stack([i[2] for i in self.items], axis=1),
            labels=np.array([i[3] for i in self.items], dtype=np.uint8),
            reach=np.array([i[4] for i in self.items], dtype=np.float64),
        )


def head_frame(joints: GuidanceJoints) -> np.ndarray:
    """(T, 3, 3) columns (left, up, forward) of the head: up along neck -> head, left from the shoulders.

    Joint positions say nothing about head yaw; the chest's lateral axis stands in for it (the face
    keypoints and the head ellipsoid follow the chest when the dancer turns the head alone).
    """
    lateral = joints.joint("left_shoulder") - joints.joint("right_shoulder")
    return frames_from_axes(lateral, joints.joint("head") - joints.joint("neck"))


def capsule_body(joints: GuidanceJoints) -> CapsuleBody:
    """Build the capsule body of every frame from :class:`GuidanceJoints`."""
    j = joints.joint
    bld = _Builder(joints.trunk_frames())
    hf = head_frame(joints)
    h_lat, h_up, h_fwd = hf[..., 0], hf[..., 1], hf[..., 2]
    head = j("head") + 0.015 * h_fwd
    # head: elliptic capsule, crown ~14 cm above SMPL-X's head joint, chin ~8 cm below
    bld.add(head + 0.01 * h_up, head + 0.05 * h_up, BodyPart.HEAD, 0.075, 0.09, 0.095, hint=h_lat)
    bld.add(j("neck"), j("head"), BodyPart.NECK, 0.052)
    chest_top = j("spine3") + 0.6 * (j("neck") - j("spine3"))
    bld.add(j("spine2"), chest_top, BodyPart.TORSO, 0.135, 0.08, 0.10)
    bld.add(j("spine1"), j("spine2"), BodyPart.TORSO, 0.125, 0.06, 0.095)
    bld.add(j("left_shoulder"), j("right_shoulder"), BodyPart.TORSO, 0.055)
    for side in ("left", "right"):
        bld.add(j("spine3"), j(f"{side}_collar"), BodyPart.TORSO, 0.05)
        bld.add(j(f"{side}_collar"), j(f"{side}_shoulder"), BodyPart.TORSO, 0.05)
    bld.add(j("pelvis"), j("spine1"), BodyPart.PELVIS, 0.13, 0.08, 0.10)
    bld.add(j("left_hip"), j("right_hip"), BodyPart.PELVIS, 0.085)
    for k, side in enumerate(("left", "right")):
        part = {n: BodyPart[f"{side.upper()}_{n}"] for n in
                ("UPPER_ARM", "FOREARM", "HAND", "THIGH", "SHIN", "FOOT")}
        shoulder, elbow, wrist = j(f"{side}_shoulder"), j(f"{side}_elbow"), j(f"{side}_wrist")
        bld.add(shoulder, elbow, part["UPPER_ARM"], 0.048)
        bld.add(elbow, wrist, part["FOREARM"], 0.038)
        _add_hand(bld, joints, k, wrist, elbow, part["HAND"])
        hip, knee, ankle, toe = j(f"{side}_hip"), j(f"{side}_knee"), j(f"{side}_ankle"), j(f"{side}_foot")
        bld.add(hip, knee, part["THIGH"], 0.07)
        bld.add(knee, ankle, part["SHIN"], 0.05)
        bld.add(ankle, toe, part["FOOT"], 0.042)
        toe_dir, _ = _unit(toe - ankle)
        bld.add(toe, toe + 0.05 * toe_dir, part["FOOT"], 0.032)
    return bld.build()


def _add_hand(bld: _Builder, joints: GuidanceJoints, side: int, wrist: np.ndarray, elbow: np.ndarray,
              label: BodyPart) -> None:
    """A flat palm and thin finger capsules with SMPL-X fingers; else a round palm along the forearm (or palm joint)."""
    if joints.fingers is not None:
        f = joints.fingers[:, side]                  # (T, 5 fingers thumb..pinky, 4 points, 3)
        across = f[:, 1, 0] - f[:, 4, 0]             # index base -> pinky base: the palm's width
        bld.add(wrist, f[:, 2, 0], label, 0.042, 0.02, 0.017, hint=across)
        bld.add(wrist, f[:, 0, 0], label, 0.016)
        for finger in range(5):
            r = THUMB_RADIUS if finger == 0 else FINGER_RADIUS
            for k in range(3):
                bld.add(f[:, finger, k], f[:, finger, k + 1], label, r)
        return
    if joints.palms is not None:
        direction, _ = _unit(joints.palms[:, side] - wrist)
    else:
        direction, _ = _unit(wrist - elbow)
    bld.add(wrist, wrist + 0.09 * direction, label, 0.032)


def capsule_template(segments: int = 16, rings: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Template mesh of a capsule: vertices (V, 4) = unit direction xyz + end flag, triangles (F, 3) uint32.

    Rows run from the start pole (end flag 0) over the start hemisphere, across the cylinder, over the end
    hemisphere to the end pole (flag 1). Triangles are wound counter-clockwise seen from outside (checked
    on a unit capsule, not assumed), so back faces can be culled; the degenerate ones at the poles are dropped.
    """
    lon = 2 * np.pi * np.arange(segments) / segments
    rows = [(lat, 0.0) for lat in np.linspace(-np.pi / 2, 0.0, rings + 1)] + \
           [(lat, 1.0) for lat in np.linspace(0.0, np.pi / 2, rings + 1)]
    verts = np.array([(np.cos(lat) * np.cos(lo), np.sin(lat), np.cos(lat) * np.sin(lo), e)
                      for lat, e in rows for lo in lon], dtype=np.float64)
    tris = []
    for r in range(len(rows) - 1):
        for k in range(segments):
            a, b = r * segments + k, r * segments + (k + 1) % segments
            c, d = a + segments, b + segments
            tris += [(a, b, d), (a, d, c)]
    tris = np.array(tris, dtype=np.int64)
    pos = verts[:, :3] + verts[:, 3:4] * np.array([0.0, 1.0, 0.0])        # unit radius, unit length along +y
    p0, p1, p2 = pos[tris[:, 0]], pos[tris[:, 1]], pos[tris[:, 2]]
    normal = np.cross(p1 - p0, p2 - p0)
    centroid = (p0 + p1 + p2) / 3
    on_axis = np.zeros_like(centroid)
    on_axis[:, 1] = np.clip(centroid[:, 1], 0.0, 1.0)
    keep = np.linalg.norm(normal, axis=1) > 1e-9
    inward = (normal * (centroid - on_axis)).sum(1) < 0
    tris[inward] = tris[inward][:, [0, 2, 1]]
    return verts.astype(np.float32), tris[keep].astype(np.uint32)
