"""One rigid frame per body part, from joints alone: what carries a surface point from one pose to another.

Why per part and from joints: the target body may be capsules or a skinned mesh (any ``GuidanceRenderer``
body), but every body labels its pixels with :class:`generation.video.parts.BodyPart` ids and every pose
has the 22 joints. A point on part k is expressed in k's frame in the target pose and re-emitted from
k's frame in the reference pose; the axial coordinate is stretched by the ratio of the two bone lengths,
so a body with other proportions still lands on the right place of the photo.

The frame of a bone: origin at its start joint, y along the bone, x the trunk's lateral axis made
perpendicular (the forward axis when the bone is nearly lateral), z = x cross y; the same rule the
capsule builder uses for its capsules' axes, so the frames turn with the capsules.
"""
from __future__ import annotations

import numpy as np

from encoders.motion.canonical import frames_from_axes
from encoders.motion.skeleton import SMPL_BODY_22

from ..parts import NUM_PARTS, BodyPart

J: dict[str, int] = {n: i for i, n in enumerate(SMPL_BODY_22)}
#: Length used for parts whose far end is not a joint (hands, head): no axial stretch between poses.
FIXED = 0.1

#: part -> (start joint, end joint) of its bone; None for the hands (wrist -> hand tip) and the head.
PART_BONES: dict[BodyPart, tuple[str, str] | None] = {
    BodyPart.HEAD: None, BodyPart.NECK: ("neck", "head"), BodyPart.TORSO: ("spine1", "neck"),
    BodyPart.PELVIS: ("pelvis", "spine3"),
    BodyPart.LEFT_UPPER_ARM: ("left_shoulder", "left_elbow"),
    BodyPart.RIGHT_UPPER_ARM: ("right_shoulder", "right_elbow"),
    BodyPart.LEFT_FOREARM: ("left_elbow", "left_wrist"), BodyPart.RIGHT_FOREARM: ("right_elbow", "right_wrist"),
    BodyPart.LEFT_HAND: None, BodyPart.RIGHT_HAND: None,
    BodyPart.LEFT_THIGH: ("left_hip", "left_knee"), BodyPart.RIGHT_THIGH: ("right_hip", "right_knee"),
    BodyPart.LEFT_SHIN: ("left_knee", "left_ankle"), BodyPart.RIGHT_SHIN: ("right_knee", "right_ankle"),
    BodyPart.LEFT_FOOT: ("left_ankle", "left_foot"), BodyPart.RIGHT_FOOT: ("right_ankle", "right_foot"),
}

#: Each part's mirror-image counterpart (itself for centre parts).
MIRROR_PART: np.ndarray = np.array([
    int(BodyPart[p.name.replace("LEFT", "@").replace("RIGHT", "LEFT").replace("@", "RIGHT")]) for p in BodyPart])


def _unit(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-9), n[..., 0]


def part_frames(body: np.ndarray, hand_tips: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames of every part for every pose.

    ``body`` (T, 22, 3); ``hand_tips`` (T, 2, 3) left/right points the hands point at (None: along the
    forearms). Returns origins (T, P, 3), rotations (T, P, 3, 3) (columns x, y = bone, z) and bone
    lengths (T, P), P = ``NUM_PARTS`` (row 0, the background, is the identity).
    """
    body = np.asarray(body, dtype=np.float64)
    t = body.shape[0]
    j = lambda n: body[:, J[n]]                 # noqa: E731
    lateral = (j("left_hip") - j("right_hip")) + (j("left_shoulder") - j("right_shoulder"))
    trunk = frames_from_axes(lateral, 0.5 * (j("left_shoulder") + j("right_shoulder"))
                             - 0.5 * (j("left_hip") + j("right_hip")))
    lat, fwd = trunk[..., 0], trunk[..., 2]
    origins = np.zeros((t, NUM_PARTS, 3))
    rots = np.broadcast_to(np.eye(3), (t, NUM_PARTS, 3, 3)).copy()
    lengths = np.full((t, NUM_PARTS), FIXED)
    for part, bone in PART_BONES.items():
        if part == BodyPart.HEAD:
            a = j("head")
            axis, _ = _unit(j("head") - j("neck"))
            hint = j("left_shoulder") - j("right_shoulder")
            length = np.full(t, FIXED)
        elif bone is None:                      # hands
            side = 0 if part == BodyPart.LEFT_HAND else 1
            s = ("left", "right")[side]
            a = j(f"{s}_wrist")
            tip = hand_tips[:, side] if hand_tips is not None else a + (a - j(f"{s}_elbow"))
            axis, _ = _unit(tip - a)
            hint = lat
            length = np.full(t, FIXED)
        else:
            a = j(bone[0])
            axis, length = _unit(j(bone[1]) - a)
            hint = lat
        x, n = _unit(hint - (hint * axis).sum(-1, keepdims=True) * axis)
        x2, _ = _unit(fwd - (fwd * axis).sum(-1, keepdims=True) * axis)
        x = np.where((n > 0.2)[..., None], x, x2)
        z = np.cross(x, axis)
        origins[:, part] = a
        rots[:, part] = np.stack([x, axis, z], axis=-1)
        lengths[:, part] = np.maximum(length, 1e-3)
    return origins, rots, lengths


def part_transforms(src: tuple[np.ndarray, np.ndarray, np.ndarray],
                    dst: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """(T, P, 3, 4) affine maps taking a point on part k in pose ``src`` to pose ``dst`` (frames of
    :func:`part_frames`; ``dst`` may have T = 1 and is then broadcast). The bone axis is stretched by
    ``dst_length / src_length``."""
    o_s, r_s, l_s = src
    o_d, r_d, l_d = dst
    stretch = np.ones(r_s.shape[:-1])
    stretch[..., 1] = l_d / l_s                                   # (T, P, 3): scale per local axis
    lin = np.einsum("tpij,tpj,tpkj->tpik", np.broadcast_to(r_d, r_s.shape), stretch, r_s)   # R_d S R_s^T
    trans = np.broadcast_to(o_d, o_s.shape) - np.einsum("tpij,tpj->tpi", lin, o_s)
    return np.concatenate([lin, trans[..., None]], axis=-1)
