"""MotionRecord <-> (T, 319) generative features, and the canonical frame of a window.

Encode: SMPL-X 52 local rotations (6D) + root translation from a record, foot contacts from the
joint positions that forward kinematics of those rotations gives (so contacts agree with what a
decoded dance shows), the first frame moved to the canonical frame. Decode: the inverse, with joint
positions by FK on the project's SMPL-X skeleton. Sources without rotations (BVH, joint-position
npz, AIST++ joint CSVs) cannot be encoded: :class:`NotGenerativeError` says why instead of the clip
silently disappearing from a training set.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from encoders.errors import InputError
from encoders.motion.kinematics import foot_contacts, forward_kinematics
from encoders.motion.record import MotionRecord
from encoders.motion.rotations import matrix_to_rot6d, rot6d_to_matrix
from encoders.motion.skeleton import smplx52

from .canonical import CanonicalFrame, canonicalise, decanonicalise
from .layout import FEATURE_DIM, FPS, LAYOUT, NUM_JOINTS, ROT_DIM


class NotGenerativeError(InputError):
    """A motion that cannot be represented for generation (no SMPL-X rotations, wrong frame rate)."""


@dataclass(frozen=True)
class ContactConfig:
    """Foot-contact labelling (``encoders.motion.kinematics.foot_contacts``).

    ``speed_threshold`` 0.3 m/s is EDGE's 0.01 m per frame at 30 fps. ``height_threshold`` 0.05 m above
    each foot joint's own floor (2nd percentile of its height over the encoded sequence) keeps a foot held
    still in the air from counting as a contact; None gives EDGE's speed-only labels (EDGE leaves the last
    frame's speed at 0, so its last frame is always a contact; here it repeats the frame before).
    """

    speed_threshold: float = 0.3
    height_threshold: float | None = 0.05
    floor_percentile: float = 2.0

    def to_dict(self) -> dict:
        return asdict(self)


def _check(record: MotionRecord, name: str) -> np.ndarray:
    if record.rotations_6d is None:
        raise NotGenerativeError(name, "has joint positions only (a BVH, CSV or position npz source); generation "
                                 "needs SMPL-X 52 local rotations (FineDance, AIST++ SMPL, the demo corpus, our npz "
                                 "with 'poses')", field="rotations_6d", expected="(T, 52, 6)", got="absent")
    if abs(float(record.fps) - FPS) > 1e-3:
        raise NotGenerativeError(name, "is not at the generative frame rate", field="fps", expected=f"{FPS:g}",
                                 got=f"{record.fps:g}")
    return record.rotations_6d.astype(np.float64)


def contact_labels(positions: np.ndarray, joint_names: list[str], config: ContactConfig = ContactConfig()) -> np.ndarray:
    """(T, 4) float contacts in the layout's order from (T, J, 3) positions at 30 fps."""
    return foot_contacts(positions, joint_names, FPS, speed_threshold=config.speed_threshold,
                         height_threshold=config.height_threshold,
                         floor_percentile=config.floor_percentile).astype(np.float32)


def encode(record: MotionRecord, contacts: ContactConfig = ContactConfig(), canonical: bool = True,
           name: str = "motion") -> tuple[np.ndarray, CanonicalFrame]:
    """A record -> ((T, 319) float32 features, the canonical frame removed; identity when ``canonical`` is False)."""
    rot6d = _check(record, name)
    skel = smplx52()
    rot = rot6d_to_matrix(rot6d)                                           # (T, 52, 3, 3)
    trans = record.trans.astype(np.float64)
    positions = forward_kinematics(rot, trans, skel)
    frame = CanonicalFrame.identity()
    if canonical:
        root, trans, frame = canonicalise(rot[:, 0], trans, np.asarray(skel.offsets[0]))
        rot = rot.copy()
        rot[:, 0] = root
    feats = np.empty((len(trans), FEATURE_DIM), dtype=np.float32)
    feats[:, LAYOUT.contacts] = contact_labels(positions, list(skel.names), contacts)
    feats[:, LAYOUT.root] = trans
    feats[:, LAYOUT.rotations] = matrix_to_rot6d(rot).reshape(len(trans), NUM_JOINTS * ROT_DIM)
    return feats, frame


def _as_features(features: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != FEATURE_DIM:
        raise InputError(name, "not generative motion features", field="features",
                         expected=f"(T, {FEATURE_DIM})", got=str(x.shape))
    if not np.isfinite(x).all():
        raise InputError(name, "features contain NaN or infinite values", field="features")
    return x


def canonicalise_features(features: np.ndarray, name: str = "window") -> tuple[np.ndarray, CanonicalFrame]:
    """Move (T, 319) features (any frame) so their first frame is canonical; only root rotation and translation change."""
    x = _as_features(features, name)
    root = rot6d_to_matrix(x[:, LAYOUT.joint_rotation(0)])
    new_root, trans, frame = canonicalise(root, x[:, LAYOUT.root], np.asarray(smplx52().offsets[0]))
    out = x.astype(np.float32, copy=True)
    out[:, LAYOUT.joint_rotation(0)] = matrix_to_rot6d(new_root)
    out[:, LAYOUT.root] = trans
    return out, frame


def place_features(features: np.ndarray, frame: CanonicalFrame, name: str = "window") -> np.ndarray:
    """The inverse of :func:`canonicalise_features`: (T, 319) features in ``frame``'s canonical coordinates -> the
    coordinates ``frame`` was measured in (only root rotation and translation change)."""
    x = _as_features(features, name)
    root = rot6d_to_matrix(x[:, LAYOUT.joint_rotation(0)])
    new_root, trans = decanonicalise(root, x[:, LAYOUT.root], np.asarray(smplx52().offsets[0]), frame)
    out = x.astype(np.float32, copy=True)
    out[:, LAYOUT.joint_rotation(0)] = matrix_to_rot6d(new_root)
    out[:, LAYOUT.root] = trans
    return out


def decode(features: np.ndarray, frame: CanonicalFrame | None = None, name: str = "generated") -> MotionRecord:
    """(T, 319) features -> a MotionRecord (SMPL-X 52 joints, positions by FK), put back into ``frame``.

    Generated 6D values need not be orthonormal: ``rot6d_to_matrix`` projects them (Gram-Schmidt), and
    the stored ``rotations_6d`` are the projected ones, so the record is self-consistent.
    """
    x = _as_features(features, name)
    skel = smplx52()
    rot = rot6d_to_matrix(x[:, LAYOUT.rotations].reshape(len(x), NUM_JOINTS, ROT_DIM))
    trans = x[:, LAYOUT.root]
    if frame is not None:
        root, trans = decanonicalise(rot[:, 0], trans, np.asarray(skel.offsets[0]), frame)
        rot = rot.copy()
        rot[:, 0] = root
    positions = forward_kinematics(rot, trans, skel)
    meta = {"contacts": x[:, LAYOUT.contacts].astype(np.float32)}
    return MotionRecord(FPS, trans, positions, list(skel.names), matrix_to_rot6d(rot), meta)
