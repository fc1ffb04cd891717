"""The SMPL-X body (the ``smplx`` package, the user's own model file) as a :class:`SkinnedRig`.

Why a separate path: SMPL-X is the body Champ's guidance was made with, but its files are licence-restricted
(https://smpl-x.is.tue.mpg.de), so DanceSearch cannot ship them; a user who has them passes the file or its
folder. Loading reuses :func:`encoders.motion.smplx_body.load_body_model` (file search, required keys, clear
:class:`InputError` naming the path). Only the rest model is used (template vertices with the given shape,
the regressed rest joints, the skinning weights); posing is :func:`.mesh.retarget` from joint positions,
the same as for anny, so a record without rotations works too.
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from encoders.errors import InputError
from encoders.motion.skeleton import smplx52
from encoders.motion.smplx_body import HOW_TO_GET_MODELS, SMPLX55_TO_52, load_body_model

from ..joints import GuidanceJoints
from .mesh import MeshBody, SkinnedRig, pose_mesh_body

INSTALL_HINT = "pip install smplx"


def _joint_names_55() -> list[str | None]:
    """SMPL-X model joint order -> FineDance 52 names; None for the jaw and the eyes (they follow the head)."""
    names: list[str | None] = [None] * 55
    for k52, k55 in enumerate(SMPLX55_TO_52):
        names[int(k55)] = smplx52().names[k52]
    return names


def rig_from_smplx(model, betas: np.ndarray | None = None) -> SkinnedRig:
    """The rest model of a loaded SMPL-X module (optionally shaped by ``betas``) as a :class:`SkinnedRig`.

    SMPL-X's frame is ours already (metres, +y up, facing +z, left = +x).
    """
    import torch

    with torch.no_grad():
        v = model.v_template.double()
        if betas is not None:
            b = torch.zeros(model.shapedirs.shape[-1], dtype=torch.float64)
            bv = torch.as_tensor(np.asarray(betas, dtype=np.float64).reshape(-1))[: len(b)]
            b[: len(bv)] = bv
            v = v + torch.einsum("vcl,l->vc", model.shapedirs.double(), b)
        joints = (model.J_regressor.double() @ v).numpy()
    verts = v.numpy()
    weights = model.lbs_weights.double().numpy()
    faces = np.asarray(model.faces, dtype=np.int64)
    if joints.shape[0] != 55 or weights.shape[1] != 55:
        path = getattr(model, "dancesearch_path", None)
        raise InputError(path, "not an SMPL-X model (55 joints)", field="model_path", expected="55 joints",
                         got=f"{joints.shape[0]} joints")
    names = _joint_names_55()
    drivers = tuple(n if n is not None else "head" for n in names)
    rest_joints = {n: joints[k] for k, n in enumerate(names) if n is not None}
    return SkinnedRig("smplx", verts, faces, weights, joints, tuple(names), drivers, rest_joints)


_LOCK = threading.Lock()
_RIGS: dict[tuple, SkinnedRig] = {}


def smplx_rig(body_model: str | Path | object, gender: str = "neutral") -> SkinnedRig:
    """The rig of the user's SMPL-X model: ``body_model`` is a model file, a folder holding one, or a module
    from :func:`encoders.motion.smplx_body.load_body_model`. Loaded rigs are kept per file (and mtime)."""
    if body_model is None:
        raise InputError(None, "the smplx body needs your SMPL-X model file", field="body_model",
                         expected="a path to SMPLX_NEUTRAL.npz or its folder", got="None; " + HOW_TO_GET_MODELS)
    if not isinstance(body_model, (str, Path)):
        return rig_from_smplx(body_model)
    path = Path(body_model).expanduser()
    try:
        key = (str(path.resolve()), path.stat().st_mtime_ns, gender)
    except OSError:
        key = None
    if key is not None and key in _RIGS:
        return _RIGS[key]
    try:
        model = load_body_model(path, model_type="smplx", gender=gender)
    except ImportError as exc:
        raise InputError(path, f"the smplx body needs the package smplx, which is not installed: {INSTALL_HINT}",
                         field="body_model") from exc
    rig = rig_from_smplx(model)
    if key is not None:
        with _LOCK:
            _RIGS[key] = rig
    return rig


def smplx_body(joints: GuidanceJoints, body_model: str | Path | object, gender: str = "neutral") -> MeshBody:
    """The user's SMPL-X mesh posed on ``joints`` (scaled uniformly to the dancer's bone lengths)."""
    return pose_mesh_body(smplx_rig(body_model, gender), joints)
