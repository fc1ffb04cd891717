"""Keeping the feet the generator says are planted where they are: a root-translation foot lock.

Why: generated dances slide their feet on the floor more than real ones (v3: 18.6% of contact frames against
13.7% for the real windows; docs/results/generation.md), while the same model also predicts, in the four
contact channels of the 319-d layout, which foot joints touch the floor. Where the model says a joint is in
contact in two consecutive frames and the joint still moves horizontally, the cheapest consistent repair is the
one classic foot-skate cleanup starts with (Kovar, Schreiner and Gleicher 2002): move the whole body back by
that slide, i.e. change the root translation, which carries every joint with it. Nothing else changes: the
rotations (the dance's shape and its kinetic detail) and every joint's height are kept, so unlike a temporal
low-pass (docs/results/generation.md, "smoothing the output") it does not take energy out of the motion.

Limits, by construction: a root shift moves both feet together, so when two planted joints slide in
different directions only their mean slide is removed (that needs leg IK); and the correction accumulates,
so a dance that slid sideways ends where its steps, not its slides, take it.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from encoders.errors import InputError
from encoders.motion.record import MotionRecord
from encoders.motion.skeleton import smplx52

from .codec import decode
from .layout import CONTACT_JOINTS, FEATURE_DIM, LAYOUT

CONTACT_THRESHOLD = 0.5
"""A contact channel above this counts as "planted" (the channels are trained on 0 / 1 labels); the foot-contact
loss (``generation.diffusion.losses``, eq. 8) reads the predicted channels the same way."""


def planted_slide_offsets(feet: np.ndarray, contacts: np.ndarray, threshold: float = CONTACT_THRESHOLD) -> np.ndarray:
    """(T, 2) horizontal (x, z) offsets that, added to every joint of frame t, cancel the mean slide of the foot
    joints planted at both t-1 and t. ``feet`` (T, 4, 3) and ``contacts`` (T, 4) in the same joint order; y up."""
    if feet.ndim != 3 or feet.shape[1:] != (len(CONTACT_JOINTS), 3) or contacts.shape != feet.shape[:2]:
        raise InputError("foot lock", "foot positions and contacts do not match", field="feet / contacts",
                         expected=f"(T, {len(CONTACT_JOINTS)}, 3) and (T, {len(CONTACT_JOINTS)})",
                         got=f"{feet.shape} and {contacts.shape}")
    planted = contacts > threshold
    steps = planted[1:] & planted[:-1]                                   # (T-1, 4)
    slide = feet[1:][..., [0, 2]] - feet[:-1][..., [0, 2]]               # (T-1, 4, 2)
    count = steps.sum(axis=1, keepdims=True)
    mean_slide = np.where(count > 0, (slide * steps[..., None]).sum(axis=1) / np.maximum(count, 1), 0.0)
    offsets = np.zeros((len(feet), 2), dtype=np.float64)
    offsets[1:] = -np.cumsum(mean_slide, axis=0)
    return offsets


def lock_planted_feet(features: np.ndarray, threshold: float = CONTACT_THRESHOLD) -> np.ndarray:
    """(T, 319) features with the root translation corrected so the joints the contact channels mark as planted
    do not slide (``planted_slide_offsets``); everything else unchanged. Works in whatever frame the features
    are in (canonical or world): the two differ by a turn about the vertical and a horizontal shift, which carry
    the slides and their cancelling offsets alike. Apply it to a whole chained dance, after the windows are
    blended, not to each window before: per-window offsets would open the seams (``DancePipeline`` does this on
    the decoded dance, ``lock_planted_feet_record``)."""
    x = np.asarray(features)
    if x.ndim != 2 or x.shape[1] != FEATURE_DIM:
        raise InputError("foot lock", "expected generative features", field="features",
                         expected=f"(T, {FEATURE_DIM})", got=str(x.shape))
    offsets = _dance_slide_offsets(decode(x), x[:, LAYOUT.contacts], threshold)
    out = np.array(x, copy=True)
    root = np.arange(LAYOUT.root.start, LAYOUT.root.stop)
    out[:, root[[0, 2]]] += offsets.astype(out.dtype)
    return out


def lock_planted_feet_record(record: MotionRecord, threshold: float = CONTACT_THRESHOLD) -> MotionRecord:
    """``lock_planted_feet`` on a decoded dance (its contact channels in ``record.meta["contacts"]``, as
    ``codec.decode`` stores them): the same correction, applied to the root translation and, since it is a pure
    translation, to every joint position directly, without running forward kinematics a second time."""
    contacts = record.meta.get("contacts")
    if contacts is None:
        raise InputError("foot lock", "the dance carries no contact channels", field="meta.contacts",
                         expected="a record decoded from generative features", got="none")
    offsets = _dance_slide_offsets(record, np.asarray(contacts), threshold)
    trans = np.array(record.trans, copy=True)
    positions = np.array(record.positions, copy=True)
    trans[:, [0, 2]] += offsets.astype(trans.dtype)
    positions[..., [0, 2]] += offsets[:, None, :].astype(positions.dtype)
    return replace(record, trans=trans, positions=positions)


def _dance_slide_offsets(record: MotionRecord, contacts: np.ndarray, threshold: float) -> np.ndarray:
    """``planted_slide_offsets`` of a decoded dance's foot joints (the one place both locks read them)."""
    return planted_slide_offsets(record.positions[:, smplx52().foot_indices()], contacts, threshold)


__all__ = ["CONTACT_THRESHOLD", "lock_planted_feet", "lock_planted_feet_record", "planted_slide_offsets"]
