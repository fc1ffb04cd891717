"""The foot lock (generation/representation/foot_lock.py): planted joints stop sliding, nothing else changes."""
from __future__ import annotations

import numpy as np
import pytest

from encoders.errors import InputError
from generation.representation import FEATURE_DIM
from encoders.motion.rotations import matrix_to_rot6d
from generation.representation.canonical import CanonicalFrame
from generation.representation.codec import decode, place_features
from generation.representation.foot_lock import lock_planted_feet, planted_slide_offsets
from generation.representation.layout import CONTACT_JOINTS, LAYOUT, NUM_JOINTS


def _standing(frames: int = 10) -> np.ndarray:
    """Features of a body in its rest pose whose root slides 2 cm per frame along x."""
    x = np.zeros((frames, FEATURE_DIM), dtype=np.float32)
    x[:, LAYOUT.rotations] = np.tile(np.array([1, 0, 0, 0, 1, 0], dtype=np.float32), NUM_JOINTS)
    x[:, LAYOUT.root.start] = 0.02 * np.arange(frames)
    x[:, LAYOUT.root.start + 1] = 0.9
    return x


def _swinging_left_leg(frames: int = 12) -> np.ndarray:
    """A still root with the left hip swinging about the x axis, so only the left leg's joints slide."""
    x = _standing(frames)
    x[:, LAYOUT.root.start] = 0.0
    angle = np.linspace(0.0, 0.6, frames)
    c, s = np.cos(angle), np.sin(angle)
    rx = np.zeros((frames, 3, 3))
    rx[:, 0, 0], rx[:, 1, 1], rx[:, 1, 2], rx[:, 2, 1], rx[:, 2, 2] = 1.0, c, -s, s, c
    x[:, LAYOUT.joint_rotation("left_hip")] = matrix_to_rot6d(rx)
    return x


def test_a_planted_foot_stops_sliding_and_nothing_else_moves() -> None:
    x = _standing()
    x[:, LAYOUT.contacts.start] = 1.0                       # the left ankle is planted throughout
    locked = lock_planted_feet(x)
    before, after = decode(x), decode(locked)
    ankle = after.joint_names.index(CONTACT_JOINTS[0])
    np.testing.assert_allclose(after.positions[:, ankle, [0, 2]], after.positions[:1, ankle, [0, 2]].repeat(10, 0),
                               atol=1e-5)
    np.testing.assert_allclose(after.positions[..., 1], before.positions[..., 1], atol=1e-6)   # heights kept
    keep = np.ones(FEATURE_DIM, dtype=bool)
    keep[[LAYOUT.root.start, LAYOUT.root.start + 2]] = False
    np.testing.assert_array_equal(locked[:, keep], x[:, keep])          # only the root's x and z change
    # the body's shape is untouched: every joint moved by the same shift
    shift = after.positions - before.positions
    np.testing.assert_allclose(shift, shift[:, :1].repeat(shift.shape[1], 1), atol=1e-5)


def test_the_contact_channels_lock_their_own_joints() -> None:
    """Only the left leg moves: locking the left ankle's channel must hold the left ankle, and the right ankle
    (planted in reality) then moves by the correction; a channel order mixed up would hold the wrong foot."""
    x = _swinging_left_leg()
    names = decode(x).joint_names
    left, right = names.index("left_ankle"), names.index("right_ankle")
    raw = decode(x).positions
    assert np.abs(np.diff(raw[:, left, 2])).max() > 0.005 and np.abs(np.diff(raw[:, right, [0, 2]], axis=0)).max() < 1e-6
    x[:, LAYOUT.contacts.start + CONTACT_JOINTS.index("left_ankle")] = 1.0
    locked = decode(lock_planted_feet(x)).positions
    np.testing.assert_allclose(np.diff(locked[:, left, [0, 2]], axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(locked[:, right, [0, 2]] - raw[:, right, [0, 2]],
                               -(raw[:, left, [0, 2]] - raw[:1, left, [0, 2]]), atol=1e-5)


def test_locking_commutes_with_placing_the_window_in_the_world() -> None:
    x = _swinging_left_leg()
    x[:, LAYOUT.contacts.start + CONTACT_JOINTS.index("left_ankle")] = 1.0
    frame = CanonicalFrame(0.8, (1.5, 0.0, -2.0))
    np.testing.assert_allclose(lock_planted_feet(place_features(x, frame)), place_features(lock_planted_feet(x), frame),
                               atol=1e-5)


def test_without_planted_contacts_the_motion_is_unchanged() -> None:
    x = _standing()
    x[:, LAYOUT.contacts] = 0.4                              # below the threshold
    np.testing.assert_array_equal(lock_planted_feet(x), x)
    x[::2, LAYOUT.contacts.start] = 1.0                      # planted in single frames only: no contact step
    np.testing.assert_array_equal(lock_planted_feet(x), x)


def test_offsets_cancel_the_mean_slide_of_the_joints_planted_in_both_frames() -> None:
    t = np.arange(6, dtype=np.float64)
    feet = np.zeros((6, 4, 3))
    feet[:, 0, 0] = 1.0 * t                                  # one joint slides 1 per frame, another 3
    feet[:, 1, 0] = 3.0 * t
    feet[:, 2, 2] = 5.0 * t                                  # a third slides in z but is never planted
    contacts = np.zeros((6, 4))
    contacts[:, :2] = 1.0
    offsets = planted_slide_offsets(feet, contacts)
    np.testing.assert_allclose(offsets[:, 0], -2.0 * t)
    np.testing.assert_allclose(offsets[:, 1], 0.0)
    contacts[3:, :] = 0.0                                    # after frame 2 nothing is planted: the offset holds
    np.testing.assert_allclose(planted_slide_offsets(feet, contacts)[:, 0], [0, -2, -4, -4, -4, -4])


def test_mismatched_inputs_are_refused_with_their_shapes() -> None:
    with pytest.raises(InputError, match=r"\(10, 4, 3\) and \(9, 4\)"):
        planted_slide_offsets(np.zeros((10, 4, 3)), np.zeros((9, 4)))
    with pytest.raises(InputError, match="319"):
        lock_planted_feet(np.zeros((10, 300)))


def test_locking_a_decoded_dance_equals_decoding_the_locked_features() -> None:
    """The pipeline locks the decoded dance (no second forward kinematics): same joints as locking the features."""
    from encoders.motion.record import MotionRecord
    from generation.representation.foot_lock import lock_planted_feet_record

    x = _standing()
    x[:, LAYOUT.contacts.start] = 1.0
    x[5:, LAYOUT.contacts.start + 2] = 1.0                   # the right ankle planted from frame 5
    via_features = decode(lock_planted_feet(x))
    record = decode(x)
    via_record = lock_planted_feet_record(record)
    np.testing.assert_allclose(via_record.positions, via_features.positions, atol=1e-5)
    np.testing.assert_allclose(via_record.trans, via_features.trans, atol=1e-6)
    np.testing.assert_array_equal(record.positions, decode(x).positions)   # the input record is not changed
    bare = MotionRecord(record.fps, record.trans, record.positions, record.joint_names)
    with pytest.raises(InputError, match="contact channels"):
        lock_planted_feet_record(bare)
