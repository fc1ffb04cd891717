"""Map common skeleton naming conventions onto the 22 SMPL body joints.

Every position-based feature in DanceSearch is computed on the 22 SMPL body joints
(:data:`~encoders.motion.skeleton.SMPL_BODY_22`), so motion from a BVH file or a positions
array must first be expressed with those joints. This module knows these conventions
(names are matched case-insensitively, after dropping a namespace prefix such as
``mixamorig:`` or ``mixamorig1:``):

``smpl``      SMPL / SMPL-X names as written in this project (``pelvis``, ``left_hip``, ...).
``smpl_caps`` the SMPL paper's names (``Pelvis``, ``L_Hip``, ``Spine1``, ``L_Foot``, ...).
``edge``      EDGE's short names (``root``, ``lhip``, ``belly``, ``ltoes``, ``linshoulder``, ...).
``cmu_daz``   the CMU BVH conversion for DAZ / Second Life (cgspeed, 43 joints: ``hip``,
              ``abdomen``, ``chest``, ``neck``, ``head``, ``lButtock``, ``lThigh``, ``lShin``,
              ``lFoot``, ``lCollar``, ``lShldr``, ``lForeArm``, ``lHand``, ...).
``cmu_mb``    the 31-joint CMU BVH conversion for MotionBuilder (``Hips``, ``LHipJoint``,
              ``LeftUpLeg``, ``LeftLeg``, ``LeftFoot``, ``LeftToeBase``, ``LowerBack``, ``Spine``,
              ``Spine1``, ``Neck``, ``Neck1``, ``Head``, ``LeftShoulder`` (= collar), ``LeftArm``,
              ``LeftForeArm``, ``LeftHand``, ...).
``cmu_asf``   the 31-joint CMU conversion named after the ASF bones (e.g. CMU 94_01: ``Hips``,
              ``LeftHip``, ``LeftKnee``, ``LeftAnkle``, ``LeftToe``, ``lowerback``, ``Chest``,
              ``Chest2``, ``lowerneck``, ``Neck``, ``Head``, ``LeftCollar``, ``LeftShoulder``
              (= shoulder joint!), ``LeftElbow``, ``LeftWrist``, ...).
``mixamo``    Mixamo rigs (``mixamorig:Hips``, ``Spine``, ``Spine1``, ``Spine2``, ``Neck``,
              ``Head``, ``LeftShoulder``, ``LeftArm``, ``LeftForeArm``, ``LeftHand``,
              ``LeftUpLeg``, ``LeftLeg``, ``LeftFoot``, ``LeftToeBase``).

The same name can mean different joints in two conventions (``LeftShoulder`` is the collar
in ``cmu_mb`` / ``mixamo`` but the shoulder joint in ``cmu_asf``), so a convention is
recognised from the whole set of names: it matches when every one of its 22 sources is
present. When several match, the one using the most source names directly wins.

Choices where a convention has no exact SMPL equivalent (all documented in the tables):

- SMPL has three spine joints between pelvis and neck (at about 24 %, 52 % and 63 % of the
  pelvis-to-neck distance in the neutral body). Conventions with fewer or differently placed
  spine joints get them by linear interpolation between neighbours at about those fractions.
- SMPL ``left_foot`` is the ball of the foot (toe base). DAZ has no toe joint; its foot's
  End Site (``lFoot_EndSite`` as :mod:`encoders.motion.bvh` names it, at the toes) is used;
  without it the DAZ convention is not recognised.
- DAZ's ``hip`` root sits a little above the hip joints, as SMPL's pelvis does; it is used as is.
- ``cmu_mb``'s ``Neck`` lies exactly on ``Spine1`` (zero offset) and is the base of the neck,
  which is where SMPL's ``neck`` is; ``Neck1`` (mid-neck) is not used.

A source is either a joint name or ``(name_a, name_b, w)``: the point ``(1 - w) * a + w * b``.
"""
from __future__ import annotations

from typing import Sequence, Union

import numpy as np

from ..errors import InputError
from .skeleton import SMPL_BODY_22

Source = Union[str, tuple[str, str, float]]
"""A joint name, or an interpolation ``(a, b, w)`` meaning ``(1 - w) * a + w * b``."""

MappedSource = Union[int, tuple[int, int, float]]
"""A source joint index, or ``(i, j, w)`` meaning ``(1 - w) * positions[i] + w * positions[j]``."""


def _sided(table: dict[str, Source], left: tuple[str, str], right: tuple[str, str]) -> dict[str, Source]:
    """Expand ``{"*_hip": "{}Thigh"}`` style left/right templates into both sides.

    ``left`` / ``right`` are (SMPL prefix, source prefix) pairs, e.g. ("left_", "l").
    """
    out: dict[str, Source] = {}
    for smpl, src in table.items():
        for smpl_prefix, src_prefix in (left, right):
            key = smpl.replace("*_", smpl_prefix)
            if isinstance(src, tuple):
                out[key] = (src[0].format(src_prefix), src[1].format(src_prefix), src[2])
            else:
                out[key] = src.format(src_prefix)
    return out


_SMPL: dict[str, Source] = {name: name for name in SMPL_BODY_22}

_SMPL_CAPS: dict[str, Source] = {
    "pelvis": "Pelvis", "spine1": "Spine1", "spine2": "Spine2", "spine3": "Spine3", "neck": "Neck",
    "head": "Head",
    **_sided({"*_hip": "{}_Hip", "*_knee": "{}_Knee", "*_ankle": "{}_Ankle", "*_foot": "{}_Foot",
              "*_collar": "{}_Collar", "*_shoulder": "{}_Shoulder", "*_elbow": "{}_Elbow",
              "*_wrist": "{}_Wrist"}, ("left_", "L"), ("right_", "R")),
}

_EDGE: dict[str, Source] = {
    "pelvis": "root", "spine1": "belly", "spine2": "spine", "spine3": "chest", "neck": "neck", "head": "head",
    **_sided({"*_hip": "{}hip", "*_knee": "{}knee", "*_ankle": "{}ankle", "*_foot": "{}toes",
              "*_collar": "{}inshoulder", "*_shoulder": "{}shoulder", "*_elbow": "{}elbow",
              "*_wrist": "{}wrist"}, ("left_", "l"), ("right_", "r")),
}

# DAZ: hip -> abdomen (~38 % of hip-to-neck) -> chest (~59 %) -> neck.
_CMU_DAZ: dict[str, Source] = {
    "pelvis": "hip",
    "spine1": ("hip", "abdomen", 0.6),
    "spine2": ("abdomen", "chest", 0.7),
    "spine3": "chest",
    "neck": "neck",
    "head": "head",
    **_sided({"*_hip": "{}Thigh", "*_knee": "{}Shin", "*_ankle": "{}Foot", "*_foot": "{}Foot_EndSite",
              "*_collar": "{}Collar", "*_shoulder": "{}Shldr", "*_elbow": "{}ForeArm",
              "*_wrist": "{}Hand"}, ("left_", "l"), ("right_", "r")),
}

# CMU mb: Hips = LowerBack -> Spine (~50 % of hips-to-neck) -> Spine1 = Neck (neck base).
_CMU_MB: dict[str, Source] = {
    "pelvis": "Hips",
    "spine1": ("Hips", "Spine", 0.5),
    "spine2": "Spine",
    "spine3": ("Spine", "Spine1", 0.3),
    "neck": "Neck",
    "head": "Head",
    **_sided({"*_hip": "{}UpLeg", "*_knee": "{}Leg", "*_ankle": "{}Foot", "*_foot": "{}ToeBase",
              "*_collar": "{}Shoulder", "*_shoulder": "{}Arm", "*_elbow": "{}ForeArm",
              "*_wrist": "{}Hand"}, ("left_", "Left"), ("right_", "Right")),
}

# CMU ASF-bone names (94_01): Hips = lowerback -> Chest -> Chest2 = lowerneck (neck base) -> Neck -> Head.
_CMU_ASF: dict[str, Source] = {
    "pelvis": "Hips",
    "spine1": ("Hips", "Chest", 0.5),
    "spine2": "Chest",
    "spine3": ("Chest", "Chest2", 0.3),
    "neck": "lowerneck",
    "head": "Head",
    **_sided({"*_hip": "{}Hip", "*_knee": "{}Knee", "*_ankle": "{}Ankle", "*_foot": "{}Toe",
              "*_collar": "{}Collar", "*_shoulder": "{}Shoulder", "*_elbow": "{}Elbow",
              "*_wrist": "{}Wrist"}, ("left_", "Left"), ("right_", "Right")),
}

# Mixamo: Hips -> Spine -> Spine1 -> Spine2 -> Neck, close to SMPL's three spine joints.
_MIXAMO: dict[str, Source] = {
    "pelvis": "Hips", "spine1": "Spine", "spine2": "Spine1", "spine3": "Spine2", "neck": "Neck", "head": "Head",
    **_sided({"*_hip": "{}UpLeg", "*_knee": "{}Leg", "*_ankle": "{}Foot", "*_foot": "{}ToeBase",
              "*_collar": "{}Shoulder", "*_shoulder": "{}Arm", "*_elbow": "{}ForeArm",
              "*_wrist": "{}Hand"}, ("left_", "Left"), ("right_", "Right")),
}

CONVENTIONS: dict[str, dict[str, Source]] = {
    "smpl": _SMPL,
    "smpl_caps": _SMPL_CAPS,
    "edge": _EDGE,
    "cmu_daz": _CMU_DAZ,
    "cmu_mb": _CMU_MB,
    "cmu_asf": _CMU_ASF,
    "mixamo": _MIXAMO,
}
"""Convention name -> {SMPL body joint: source}. Tried in this order; ties keep the first."""

for _name, _table in CONVENTIONS.items():  # a table that misses a joint is a programming error
    assert set(_table) == set(SMPL_BODY_22), f"joint table {_name} does not cover the 22 SMPL joints"


def normalise_name(name: str) -> str:
    """Lower-case ``name`` and drop any namespace prefix (``mixamorig:Hips`` -> ``hips``)."""
    return str(name).rsplit(":", 1)[-1].strip().lower()


def _resolve(table: dict[str, Source], lookup: dict[str, int]) -> tuple[dict[str, MappedSource], int, list[str]]:
    """Indices for one convention: (mapping, number of direct hits, missing source names)."""
    mapping: dict[str, MappedSource] = {}
    missing: list[str] = []
    direct = 0
    for smpl_name in SMPL_BODY_22:
        src = table[smpl_name]
        if isinstance(src, tuple):
            a, b, w = src
            ia, ib = lookup.get(normalise_name(a)), lookup.get(normalise_name(b))
            if ia is None:
                missing.append(a)
            if ib is None:
                missing.append(b)
            if ia is not None and ib is not None:
                mapping[smpl_name] = (ia, ib, float(w))
        else:
            i = lookup.get(normalise_name(src))
            if i is None:
                missing.append(src)
            else:
                mapping[smpl_name] = i
                direct += 1
    return mapping, direct, sorted(set(missing))


def _lookup(joint_names: Sequence[str]) -> dict[str, int]:
    lookup: dict[str, int] = {}
    for i, n in enumerate(joint_names):
        lookup.setdefault(normalise_name(n), i)  # first occurrence wins on duplicates
    return lookup


def detect_convention(joint_names: Sequence[str]) -> str | None:
    """Name of the convention ``joint_names`` follows, or None when none of them is complete."""
    lookup = _lookup(joint_names)
    best: tuple[int, str] | None = None
    for conv, table in CONVENTIONS.items():
        mapping, direct, missing = _resolve(table, lookup)
        if not missing and (best is None or direct > best[0]):
            best = (direct, conv)
    return None if best is None else best[1]


def map_to_smpl22(joint_names: Sequence[str], convention: str | None = None) -> dict[str, MappedSource]:
    """For each of the 22 SMPL body joints, the source joint index or an ``(i, j, w)`` interpolation.

    ``convention`` forces one table (see :data:`CONVENTIONS`); by default it is detected.
    Raises :class:`InputError` (field ``joint_names``) naming the closest convention and the
    joints it lacks when no convention is complete.
    """
    names = [str(n) for n in joint_names]
    lookup = _lookup(names)
    if convention is not None:
        if convention not in CONVENTIONS:
            raise InputError(None, "unknown joint naming convention", field="convention",
                             expected=" | ".join(CONVENTIONS), got=repr(convention))
        mapping, _, missing = _resolve(CONVENTIONS[convention], lookup)
        if missing:
            raise InputError(None, f"joint names do not follow the '{convention}' convention",
                             field="joint_names", expected=f"joints {missing[:6]}", got=f"{len(names)} names")
        return mapping
    conv = detect_convention(names)
    if conv is None:
        # Report the closest convention so the user sees what is missing.
        scored = []
        for c, table in CONVENTIONS.items():
            _, _, missing = _resolve(table, lookup)
            scored.append((len(missing), c, missing))
        scored.sort(key=lambda s: s[0])
        _, closest, missing = scored[0]
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        raise InputError(None, "joint names follow no known skeleton convention "
                         f"({', '.join(CONVENTIONS)}); closest is '{closest}', which lacks {missing[:6]}",
                         field="joint_names", expected="SMPL, EDGE, CMU (daz / mb / asf) or Mixamo joint names",
                         got=f"[{shown}]")
    return _resolve(CONVENTIONS[conv], lookup)[0]


def apply_mapping(positions: np.ndarray, mapping: dict[str, MappedSource]) -> np.ndarray:
    """(T, J, 3) source positions -> (T, 22, 3) in SMPL body order, using a :func:`map_to_smpl22` result."""
    pos = np.asarray(positions)
    out = np.empty(pos.shape[:-2] + (len(SMPL_BODY_22), 3), dtype=np.result_type(pos.dtype, np.float32))
    for k, smpl_name in enumerate(SMPL_BODY_22):
        src = mapping[smpl_name]
        if isinstance(src, tuple):
            i, j, w = src
            out[..., k, :] = (1.0 - w) * pos[..., i, :] + w * pos[..., j, :]
        else:
            out[..., k, :] = pos[..., src, :]
    return out


def positions_smpl22(positions: np.ndarray, joint_names: Sequence[str], convention: str | None = None) -> np.ndarray:
    """(T, J, 3) positions named ``joint_names`` -> (T, 22, 3) SMPL body joints (see :func:`map_to_smpl22`)."""
    pos = np.asarray(positions)
    if pos.ndim != 3 or pos.shape[-1] != 3:
        raise InputError(None, "bad joint positions", field="positions", expected="(T, J, 3)", got=str(pos.shape))
    if pos.shape[1] != len(joint_names):
        raise InputError(None, "joint names and positions disagree", field="joint_names",
                         expected=f"{pos.shape[1]} names", got=str(len(joint_names)))
    return apply_mapping(pos, map_to_smpl22(joint_names, convention))
