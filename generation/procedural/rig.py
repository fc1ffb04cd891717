"""Named body controls (anatomical degrees) -> SMPL-X 52 local rotations.

Why a rig: primitives speak in dance terms ("raise the left arm 40 degrees forward, bend the
elbow") and stay side-agnostic; this module owns the sign conventions, verified with FK in the
rest frame (+y up, facing +z, left = +x, T-pose arms along +-x):

- shoulder ``Ry(yaw) Rz(elev) Rx(twist)``: left arm direction = Ry(yaw) (cos elev, sin elev, 0), so
  ``arm_up`` is elevation (-70 = hanging down, +80 = overhead) and ``arm_fwd`` = -yaw (90 = forward);
- elbow flexion is -y (forearm towards +z when the arm hangs), fingers curl about -z (towards the palm);
- hip flexion is -x (leg forward), knee flexion +x, ankle pointing +x, hip abduction +z (left);
- spine forward bend +x, side bend to the left -z, twist to the left +y.
Right-side joints mirror the left: (x, y, z) -> (x, -y, -z) (reflection through the x = 0 plane).

Every joint uses intrinsic Euler order YZX; controls map linearly to Euler angles, so a (T, C)
control track becomes (T, 52, 3) Euler angles with one matrix product.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from encoders.motion.rotations import euler_to_matrix, euler_to_quaternion
from encoders.motion.skeleton import smplx52

EULER_ORDER = "YZX"
_AXIS = {"x": 2, "y": 0, "z": 1}          # position of each axis in a YZX Euler triple
_MIRROR = {"x": 1.0, "y": -1.0, "z": -1.0}

SIDED_CONTROLS: tuple[str, ...] = (
    "arm_fwd", "arm_up", "arm_twist", "elbow", "wrist_flex", "wrist_dev", "wrist_twist",
    "collar_up", "collar_fwd", "hip_flex", "hip_abd", "hip_twist", "knee", "ankle",
    "fist", "point", "spread", "orchid", "vsign", "peacock", "soft",
)
CENTRAL_CONTROLS: tuple[str, ...] = (
    "spine_fwd", "spine_side", "spine_twist", "chest_pop", "head_nod", "head_tilt", "head_turn",
    "pelvis_tilt", "pelvis_side", "pelvis_twist", "squat", "yaw",
    # symmetric conveniences: both legs at once
    "knee", "hip_abd", "hip_twist", "ankle",
)
CONTROLS: tuple[str, ...] = tuple(f"l_{c}" for c in SIDED_CONTROLS) + tuple(f"r_{c}" for c in SIDED_CONTROLS) + \
    tuple(c for c in CENTRAL_CONTROLS)
CONTROL_INDEX: dict[str, int] = {c: i for i, c in enumerate(CONTROLS)}
NUM_CONTROLS = len(CONTROLS)

HAND_SHAPES: tuple[str, ...] = ("fist", "point", "spread", "orchid", "vsign", "peacock", "soft")
FINGERS: tuple[str, ...] = ("index", "middle", "pinky", "ring", "thumb")

# Finger curls (degrees per phalanx 1..3) of each hand shape, as offsets from the relaxed hand.
_RELAXED = {"index": (12, 15, 10), "middle": (15, 18, 10), "ring": (18, 18, 10), "pinky": (22, 20, 10),
            "thumb": (10, 10, 5)}
_SHAPES: dict[str, dict[str, tuple[float, float, float]]] = {
    "fist": {"index": (85, 95, 60), "middle": (88, 95, 60), "ring": (88, 95, 60), "pinky": (88, 95, 60),
             "thumb": (40, 35, 30)},
    "point": {"index": (0, 0, 0), "middle": (88, 95, 60), "ring": (88, 95, 60), "pinky": (88, 95, 60),
              "thumb": (40, 35, 30)},
    "vsign": {"index": (0, 0, 0), "middle": (0, 0, 0), "ring": (88, 95, 60), "pinky": (88, 95, 60),
              "thumb": (40, 35, 30)},
    "spread": {"index": (-5, 0, 0), "middle": (-5, 0, 0), "ring": (-5, 0, 0), "pinky": (-5, 0, 0),
               "thumb": (-10, 0, 0)},
    "orchid": {"index": (-10, 5, 5), "middle": (55, 40, 20), "ring": (10, 5, 0), "pinky": (-10, -5, 0),
               "thumb": (35, 30, 20)},
    "peacock": {"index": (-15, -5, 0), "middle": (-15, -5, 0), "ring": (-15, -5, 0), "pinky": (-15, -5, 0),
                "thumb": (45, 40, 30)},
    "soft": {"index": (5, 10, 5), "middle": (12, 15, 8), "ring": (15, 18, 8), "pinky": (18, 20, 8),
             "thumb": (10, 10, 5)},
}
_SPREAD_YAW = {"index": -12.0, "middle": -3.0, "ring": 5.0, "pinky": 12.0, "thumb": 0.0}


def _entries() -> list[tuple[str, str, str, float]]:
    """(control, joint, axis, weight) for the left side and centre; the right side is mirrored."""
    e: list[tuple[str, str, str, float]] = []
    s = "left"
    e += [("arm_fwd", f"{s}_shoulder", "y", -1), ("arm_up", f"{s}_shoulder", "z", 1),
          ("arm_twist", f"{s}_shoulder", "x", 1), ("elbow", f"{s}_elbow", "y", -1),
          ("wrist_flex", f"{s}_wrist", "z", -1), ("wrist_dev", f"{s}_wrist", "y", 1),
          ("wrist_twist", f"{s}_wrist", "x", 1), ("collar_up", f"{s}_collar", "z", 1),
          ("collar_fwd", f"{s}_collar", "y", -1), ("hip_flex", f"{s}_hip", "x", -1),
          ("hip_abd", f"{s}_hip", "z", 1), ("hip_twist", f"{s}_hip", "y", 1),
          ("knee", f"{s}_knee", "x", 1), ("ankle", f"{s}_ankle", "x", 1)]
    for shape in HAND_SHAPES:
        for finger in FINGERS:
            curl = np.subtract(_SHAPES[shape][finger], _RELAXED[finger])
            for k in range(3):
                if finger == "thumb":
                    e.append((shape, f"{s}_thumb{k + 1}", "y", 0.6 * curl[k]))
                    e.append((shape, f"{s}_thumb{k + 1}", "z", -0.5 * curl[k]))
                else:
                    e.append((shape, f"{s}_{finger}{k + 1}", "z", -curl[k]))
            if shape in ("spread", "peacock"):
                e.append((shape, f"{s}_{finger}1", "y", _SPREAD_YAW[finger]))
    return e


def _central_entries() -> list[tuple[str, str, str, float]]:
    e = [("spine_fwd", "spine1", "x", 0.3), ("spine_fwd", "spine2", "x", 0.35), ("spine_fwd", "spine3", "x", 0.35),
         ("spine_side", "spine1", "z", -0.3), ("spine_side", "spine2", "z", -0.35), ("spine_side", "spine3", "z", -0.35),
         ("spine_twist", "spine1", "y", 0.3), ("spine_twist", "spine2", "y", 0.35), ("spine_twist", "spine3", "y", 0.35),
         ("chest_pop", "spine2", "x", -0.5), ("chest_pop", "spine3", "x", -0.7), ("chest_pop", "neck", "x", 0.6),
         ("head_nod", "neck", "x", 0.4), ("head_nod", "head", "x", 0.6),
         ("head_tilt", "head", "z", -1.0), ("head_turn", "neck", "y", 0.5), ("head_turn", "head", "y", 0.5),
         ("pelvis_tilt", "pelvis", "x", 1.0), ("pelvis_tilt", "spine1", "x", -0.8),
         ("pelvis_tilt", "left_hip", "x", -1.0), ("pelvis_tilt", "right_hip", "x", -1.0),
         ("pelvis_side", "pelvis", "z", 1.0), ("pelvis_side", "spine1", "z", -0.6), ("pelvis_side", "spine2", "z", -0.4),
         ("pelvis_side", "left_hip", "z", -1.0), ("pelvis_side", "right_hip", "z", -1.0),
         ("pelvis_twist", "pelvis", "y", 1.0), ("pelvis_twist", "spine1", "y", -0.5), ("pelvis_twist", "spine2", "y", -0.5),
         ("pelvis_twist", "left_hip", "y", -1.0), ("pelvis_twist", "right_hip", "y", -1.0),
         ("yaw", "pelvis", "y", 1.0)]
    for side, m in (("left", 1.0), ("right", -1.0)):
        e += [("squat", f"{side}_hip", "x", -1.0), ("squat", f"{side}_knee", "x", 2.0), ("squat", f"{side}_ankle", "x", -1.0),
              ("knee", f"{side}_knee", "x", 1.0), ("hip_abd", f"{side}_hip", "z", m),
              ("hip_twist", f"{side}_hip", "y", m), ("ankle", f"{side}_ankle", "x", 1.0)]
    return e


@lru_cache(maxsize=None)
def control_matrix() -> np.ndarray:
    """(C, 52 * 3) map from control degrees to YZX Euler radians of every joint."""
    sk = smplx52()
    m = np.zeros((NUM_CONTROLS, sk.num_joints, 3), dtype=np.float64)
    for ctrl, joint, axis, w in _entries():
        m[CONTROL_INDEX["l_" + ctrl], sk.index(joint), _AXIS[axis]] += w
        m[CONTROL_INDEX["r_" + ctrl], sk.index(joint.replace("left_", "right_")), _AXIS[axis]] += w * _MIRROR[axis]
    for ctrl, joint, axis, w in _central_entries():
        m[CONTROL_INDEX[ctrl], sk.index(joint), _AXIS[axis]] += w
    return np.deg2rad(m).reshape(NUM_CONTROLS, -1)


@lru_cache(maxsize=None)
def relaxed_hands() -> np.ndarray:
    """(52, 3) YZX Euler radians of the relaxed (slightly curled) hands, the zero of the hand shapes."""
    sk = smplx52()
    out = np.zeros((sk.num_joints, 3))
    for side, m in (("left", 1.0), ("right", -1.0)):
        for finger in FINGERS:
            for k in range(3):
                c = _RELAXED[finger][k]
                j = sk.index(f"{side}_{finger}{k + 1}")
                if finger == "thumb":
                    out[j, _AXIS["y"]] += 0.6 * c * m
                    out[j, _AXIS["z"]] += -0.5 * c * m
                else:
                    out[j, _AXIS["z"]] += -c * m
    return np.deg2rad(out)


def mirror_name(control: str) -> str:
    """The control of the other side (l_ <-> r_); central controls map to themselves."""
    if control.startswith("l_"):
        return "r_" + control[2:]
    if control.startswith("r_"):
        return "l_" + control[2:]
    return control


# central controls whose sign flips when a move is mirrored to the other side
MIRROR_NEGATE: frozenset[str] = frozenset({"spine_side", "spine_twist", "head_tilt", "head_turn",
                                           "pelvis_side", "pelvis_twist", "yaw"})


def shape_weights_relative(shape: str) -> dict[str, float]:
    """Hand shape name -> control weights (both hands); 'relaxed' is all zeros."""
    return {} if shape == "relaxed" else {f"l_{shape}": 1.0, f"r_{shape}": 1.0}


def controls_to_euler(ctrl: np.ndarray) -> np.ndarray:
    """(T, C) control degrees -> (T, 52, 3) YZX Euler radians (as [y, z, x] per joint)."""
    euler = np.asarray(_sparse_control_matrix_t() @ ctrl.astype(np.float64).T).T
    return euler.reshape(len(ctrl), -1, 3) + relaxed_hands()[None]


@lru_cache(maxsize=None)
def _sparse_control_matrix_t():
    """Transposed control map as a sparse matrix: a dense product would go through (thread-hungry) BLAS."""
    from scipy.sparse import csr_matrix
    return csr_matrix(control_matrix().T)


def controls_to_quaternions(ctrl: np.ndarray) -> np.ndarray:
    """(T, C) control degrees -> (T, 52, 4) float64 local rotations as unit quaternions (w, x, y, z), numpy.

    The corpus path: cheaper than matrices when only axis-angle is stored (``controls_to_rotations``
    is the torch reference).
    """
    return euler_to_quaternion(controls_to_euler(ctrl), EULER_ORDER, degrees=False)


def controls_to_rotations(ctrl: np.ndarray) -> torch.Tensor:
    """(T, C) control degrees -> (T, 52, 3, 3) float32 local rotation matrices (torch; reference path)."""
    return euler_to_matrix(torch.as_tensor(controls_to_euler(ctrl), dtype=torch.float32), EULER_ORDER, degrees=False)
