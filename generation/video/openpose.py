"""OpenPose / DWPose keypoints from SMPL joints, with the colours ControlNet-style pose maps use.

Why derive them: pose-guided video models (Champ's ``dwpose`` guidance, AnimateAnyone, MimicMotion) were
trained on DWPose detections drawn in OpenPose's colour code; a skeleton map in that exact code and
keypoint layout is what they understand. The 18 body keypoints follow OpenPose's COCO-18 order; SMPL has
the limb joints, the neck is the shoulders' midpoint (as OpenPose defines it), and the face points (nose,
eyes, ears) are placed in the head frame at average offsets from SMPL-X's head joint. The 21 points per
hand follow OpenPose's hand order (wrist, then 4 per finger from the thumb to the pinky), with the
fingertips extrapolated (:func:`generation.video.joints.fingertips`).
"""
from __future__ import annotations

import colorsys

import numpy as np

from .camera import Camera
from .capsules import head_frame
from .joints import GuidanceJoints

BODY_KEYPOINTS: tuple[str, ...] = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow", "left_wrist",
    "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
)
"""OpenPose COCO-18 body keypoint order."""

NUM_BODY = len(BODY_KEYPOINTS)
NUM_HAND = 21

#: OpenPose's limb list (keypoint index pairs) in drawing order; DWPose draws the first 17 (not the
#: shoulder-ear pair at the end).
BODY_LIMBS: tuple[tuple[int, int], ...] = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12), (12, 13),
    (1, 0), (0, 14), (14, 16), (0, 15), (15, 17), (2, 16), (5, 17),
)
DRAWN_LIMBS = 17

#: RGB colour of keypoint k and of limb k (OpenPose's 18-colour hue wheel, red to magenta).
BODY_COLOURS: np.ndarray = np.array([
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
    (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255),
    (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
], dtype=np.uint8)
BODY_COLOURS.setflags(write=False)

#: Hand bones (OpenPose hand order): wrist to each finger base, then along each finger.
HAND_EDGES: tuple[tuple[int, int], ...] = tuple(
    (0 if k == 0 else 4 * f + k, 4 * f + k + 1) for f in range(5) for k in range(4))

#: Hand bone colours: the hue wheel over the 20 bones, full saturation and value (DWPose's choice).
HAND_EDGE_COLOURS: np.ndarray = np.array(
    [[round(255 * c) for c in colorsys.hsv_to_rgb(i / len(HAND_EDGES), 1.0, 1.0)] for i in range(len(HAND_EDGES))],
    dtype=np.uint8)
HAND_EDGE_COLOURS.setflags(write=False)
#: DWPose draws hand keypoints in pure blue.
HAND_POINT_COLOUR = np.array([0, 0, 255], dtype=np.uint8)

# Face points relative to SMPL-X's head joint in the head frame (left, up, forward), metres.
_FACE_OFFSETS = {
    "nose": (0.0, 0.0, 0.105),
    "right_eye": (-0.032, 0.035, 0.085), "left_eye": (0.032, 0.035, 0.085),
    "right_ear": (-0.075, 0.015, -0.005), "left_ear": (0.075, 0.015, -0.005),
}
#: A face point is drawn when its outward direction is at least this much towards the camera (cosine):
#: OpenPose does not report a nose seen from behind, nor the far ear in profile.
FACE_VISIBILITY_COS = -0.1


def body_keypoints(joints: GuidanceJoints) -> np.ndarray:
    """(T, 18, 3) world positions of the OpenPose body keypoints."""
    hf = head_frame(joints)
    head = joints.joint("head")
    out = np.zeros((joints.num_frames, NUM_BODY, 3))
    for k, name in enumerate(BODY_KEYPOINTS):
        if name == "neck":
            out[:, k] = 0.5 * (joints.joint("left_shoulder") + joints.joint("right_shoulder"))
        elif name in _FACE_OFFSETS:
            out[:, k] = head + hf @ np.asarray(_FACE_OFFSETS[name])
        else:
            out[:, k] = joints.joint(name)
    return out


def face_outward(joints: GuidanceJoints) -> np.ndarray:
    """(T, 18, 3) outward unit directions of the face keypoints (zero for the other keypoints)."""
    hf = head_frame(joints)
    out = np.zeros((joints.num_frames, NUM_BODY, 3))
    for k, name in enumerate(BODY_KEYPOINTS):
        if name == "nose":
            out[:, k] = hf[..., 2]
        elif name.endswith("_eye"):
            out[:, k] = hf @ (np.array([0.35 if name.startswith("left") else -0.35, 0.0, 1.0]) / np.hypot(0.35, 1.0))
        elif name.endswith("_ear"):
            out[:, k] = hf[..., 0] * (1.0 if name.startswith("left") else -1.0)
    return out


def hand_keypoints(joints: GuidanceJoints) -> np.ndarray | None:
    """(T, 2, 21, 3) world positions (left, right hand; OpenPose hand order) or None without fingers."""
    if joints.fingers is None:
        return None
    wrists = np.stack([joints.joint("left_wrist"), joints.joint("right_wrist")], axis=1)
    return np.concatenate([wrists[:, :, None], joints.fingers.reshape(joints.num_frames, 2, 20, 3)], axis=2)


def project_keypoints(joints: GuidanceJoints, camera: Camera) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel positions (T, K, 2), view depth (T, K) and validity (T, K) of all keypoints.

    K = 18 body keypoints, then 21 left-hand and 21 right-hand points when the joints have fingers (K = 60).
    A keypoint is invalid when it falls outside the image or is a face point turned away from the camera.
    """
    body = body_keypoints(joints)
    hands = hand_keypoints(joints)
    world = body if hands is None else np.concatenate([body, hands.reshape(joints.num_frames, 2 * NUM_HAND, 3)], 1)
    px, depth = camera.project(world)
    inside = (px[..., 0] >= 0) & (px[..., 0] < camera.width) & (px[..., 1] >= 0) & (px[..., 1] < camera.height)
    facing = (face_outward(joints) @ camera.back) >= FACE_VISIBILITY_COS       # non-face rows: 0 >= -0.1
    visible = np.concatenate([facing, np.ones((joints.num_frames, world.shape[1] - NUM_BODY), dtype=bool)], 1)
    return px.astype(np.float32), depth.astype(np.float32), inside & visible
