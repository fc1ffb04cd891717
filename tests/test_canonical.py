"""Canonical retargeting and realism augmentation: the dance survives, the rig does not."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from encoders.model.features import MOTION_FEATURE_DIM, block_slice, motion_features
from encoders.motion.augment import (RealismAugment, mirror_caption, offset_bone_directions, scale_bones,
                                     scale_ground_extent)
from encoders.motion.canonical import canonical_body, canonical_rest, mirror_body
from encoders.motion.kinematics import foot_contacts, motion_activity
from encoders.motion.skeleton import SMPL_BODY_22

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
J = {n: i for i, n in enumerate(SMPL_BODY_22)}


def stepping_dance(index: int = 0):
    """A procedural corpus clip (SMPL-X rotations through FK, feet on the floor): real footwork and turns."""
    from generation.procedural.choreographer import choreograph
    from generation.procedural.plan import plan_corpus

    return choreograph(plan_corpus(18, 0)[index]).record()


def test_canonical_rest_is_symmetric_and_idempotent():
    rest = canonical_rest()
    mirrored = rest[[J[n.replace("left_", "@").replace("right_", "left_").replace("@", "right_")] for n in SMPL_BODY_22]]
    assert np.allclose(mirrored * [-1, 1, 1], rest)
    body = stepping_dance().body22()
    once = canonical_body(body)
    assert np.abs(canonical_body(once) - once).max() < 1e-3     # a millimetre: the twisted chest moves "up" slightly


def test_canonical_body_removes_body_proportions():
    body = stepping_dance().body22()
    reference = canonical_body(body)
    for seed in range(3):
        other = scale_bones(body, np.random.default_rng(seed), sigma=0.15)
        assert np.abs(np.linalg.norm(other[:, J["left_knee"]] - other[:, J["left_hip"]], axis=-1)
                      - np.linalg.norm(body[:, J["left_knee"]] - body[:, J["left_hip"]], axis=-1)).max() > 0.005
        assert np.abs(canonical_body(other) - reference).max() < 0.005


def test_canonical_body_is_mirror_equivariant():
    body = stepping_dance().body22()
    assert np.allclose(mirror_body(mirror_body(body)), body)
    assert np.allclose(canonical_body(mirror_body(body)), mirror_body(canonical_body(body)), atol=1e-9)


def test_retargeting_keeps_foot_contacts_and_timing():
    body = stepping_dance().body22()
    canon = canonical_body(body)
    assert len(canon) == len(body)
    src = foot_contacts(body, list(SMPL_BODY_22), 30.0)
    dst = foot_contacts(canon, list(SMPL_BODY_22), 30.0)
    assert 0.1 < src.mean() < 0.9                     # the dance really alternates contacts
    assert (src == dst).mean() >= 0.95
    # the feet move at the same moments: speed profiles correlate frame by frame
    speed = lambda b: np.linalg.norm(np.diff(b[:, J["left_ankle"]], axis=0), axis=-1)  # noqa: E731
    assert np.corrcoef(speed(body), speed(canon))[0, 1] > 0.95


def test_canonical_features_leave_rotations_out():
    record = stepping_dance()
    source = motion_features(record, "source")
    canon = motion_features(record, "canonical")
    assert canon.shape == source.shape == (len(record.positions), MOTION_FEATURE_DIM)
    assert source[:, block_slice("rotation_flag")].min() == 1.0
    assert not canon[:, block_slice("rotations_6d")].any() and not canon[:, block_slice("rotation_flag")].any()


def test_augmentation_is_seeded_and_mirrors_captions():
    body = stepping_dance().body22()
    aug = RealismAugment()
    a, ma = aug.apply(body, 30.0, np.random.default_rng(5))
    b, mb = aug.apply(body, 30.0, np.random.default_rng(5))
    assert ma == mb and np.array_equal(a, b)
    assert a.shape == body.shape and not np.allclose(a, body)
    assert mirror_caption("left arm up, then the Right leg; bright") == "right arm up, then the Left leg; bright"
    assert offset_bone_directions(body, np.random.default_rng(0), 0.0) is body


def test_ground_scaling_stretches_travel_and_keeps_planted_feet():
    dance = stepping_dance()
    body = dance.body22()
    wide = scale_ground_extent(body, 1.5)
    path, wide_path = body[:, 0] - body[0, 0], wide[:, 0] - wide[0, 0]
    np.testing.assert_allclose(wide_path[:, [0, 2]], 1.5 * path[:, [0, 2]], atol=1e-6)    # travel x1.5
    np.testing.assert_allclose(wide[:, :, 1], body[:, :, 1], atol=1e-6)                  # heights untouched
    names = list(SMPL_BODY_22)
    planted = foot_contacts(body, names, 30.0, speed_threshold=0.1)     # feet all but still (< 0.1 m/s)
    assert planted.mean() > 0.2 and foot_contacts(wide, names, 30.0)[planted].all()   # still planted: no sliding
    slid = body + 0.5 * (body[:, :1] - body[:1, :1]) * np.array([1.0, 0.0, 1.0])       # moving the root path alone
    assert not foot_contacts(slid, names, 30.0)[planted].all()                          # would make them slide
    assert np.array_equal(scale_ground_extent(body, 1.0), body)
    steady = RealismAugment(marker_noise_m=0, jitter_m=0, mirror_prob=0, low_fps_prob=0, drift_m_per_s=0,
                            proportion_sigma=0, bone_angle_deg=0)
    assert np.allclose(steady.apply(body, 30.0, np.random.default_rng(1))[0], body)
    stretched, _ = RealismAugment(**{**steady.to_dict(), "ground_scale_sigma": 0.3}).apply(
        body, 30.0, np.random.default_rng(1))
    factor = np.linalg.norm(stretched[-1, 0, [0, 2]] - stretched[0, 0, [0, 2]]) / np.linalg.norm(path[-1, [0, 2]])
    assert abs(factor - 1.0) > 1e-3 and np.allclose(stretched, scale_ground_extent(body, factor), atol=1e-6)


@pytest.mark.skipif(not (SHARED / "bvh" / "cmu_misc" / "05_20-daz.bvh").is_file(), reason="../shared/data is absent")
def test_two_rigs_of_one_take_meet_on_the_canonical_body():
    from encoders.motion.bvh import read_bvh

    daz = read_bvh(SHARED / "bvh" / "cmu_misc" / "05_20-daz.bvh").to_record().body22()
    mb = read_bvh(SHARED / "bvh" / "cmu_misc" / "05_20-mb.bvh").to_record().body22()
    n = min(len(daz), len(mb))

    def spread(a: np.ndarray, b: np.ndarray) -> float:   # mean joint distance, pelvis-relative
        return float(np.linalg.norm((a - a[:, :1]) - (b - b[:, :1]), axis=-1).mean())

    before = spread(daz[:n], mb[:n])
    after = spread(canonical_body(daz)[:n], canonical_body(mb)[:n])
    assert before > 0.15 and after < 0.05, (before, after)


def test_rig_offsets_turn_with_the_dancer():
    """A rig's convention is fixed in the body: offsetting then turning equals turning then offsetting."""
    body = stepping_dance().body22()
    turn = np.array([[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0]])     # 180 degrees about +y
    a = offset_bone_directions(body, np.random.default_rng(3), 12.0) @ turn.T
    b = offset_bone_directions(body @ turn.T, np.random.default_rng(3), 12.0)
    assert np.abs(a - b).max() < 1e-6


def test_mirrored_captions_swap_sides_and_turning_senses_only():
    assert mirror_caption("turns clockwise, then steps leftward") == "turns counter-clockwise, then steps rightward"
    assert mirror_caption("right after the drop the LEFT arm swings") == "right after the drop the RIGHT arm swings"
    assert mirror_caption("a bright, upright waltz") == "a bright, upright waltz"


def test_motion_activity_separates_limbs_from_travel():
    t = np.arange(60) / 30.0
    still = np.zeros((60, 3, 3))
    still[:, 1, 1] = 1.0
    walking = still.copy()
    walking[:, :, 0] += 0.5 * t[:, None]                               # the whole body travels 0.5 m/s along x
    waving = still.copy()
    waving[:, 2, 1] += 0.1 * np.sin(2 * np.pi * t)                     # one joint moves, the root stays
    assert motion_activity(still, 30.0) == {"joint_speed": 0.0, "root_speed": 0.0}
    assert motion_activity(walking, 30.0)["root_speed"] == pytest.approx(0.5)
    assert motion_activity(walking, 30.0)["joint_speed"] == pytest.approx(0.0, abs=1e-9)
    wave = motion_activity(waving, 30.0)
    assert wave["root_speed"] == 0.0 and wave["joint_speed"] == pytest.approx(0.5 * 0.4, rel=0.05)  # 2 joints, 1 moves
