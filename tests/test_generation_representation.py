"""The 319-d generative representation: layout, FK round trip, canonical frame, contacts, normaliser."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from encoders.errors import InputError
from encoders.motion.bvh import read_bvh
from encoders.motion.convert import from_positions, from_smplx_axis_angle
from encoders.motion.kinematics import forward_kinematics
from encoders.motion.record import MotionRecord
from encoders.motion.rotations import euler_to_matrix, matrix_to_rot6d, rot6d_to_matrix
from encoders.motion.skeleton import smpl24, smplx52
from generation.procedural.choreographer import choreograph
from generation.procedural.plan import plan_corpus
from generation.representation import (FEATURE_DIM, LAYOUT, REPRESENTATION_ID, ContactConfig, NotGenerativeError,
                                       Normalizer, canonicalise_features, decode, encode)
from generation.representation.canonical import heading_yaw, yaw_matrix


@pytest.fixture(scope="module")
def demo_records() -> list[MotionRecord]:
    """Three procedural demo-corpus dances (SMPL-X 52 rotations, travel and turns), as ingest builds them."""
    out = []
    for spec in plan_corpus(18, seed=0)[:3]:
        dance = choreograph(spec)
        out.append(from_smplx_axis_angle(dance.trans, dance.poses, 30.0))
    return out


def test_layout_slices_and_body_hand_split() -> None:
    assert FEATURE_DIM == 319
    assert (LAYOUT.contacts, LAYOUT.root) == (slice(0, 4), slice(4, 7))
    assert len(LAYOUT.body_dims) == 4 + 3 + 22 * 6 and len(LAYOUT.hand_dims) == 30 * 6
    assert set(LAYOUT.body_dims).isdisjoint(LAYOUT.hand_dims)
    assert len(set(LAYOUT.body_dims) | set(LAYOUT.hand_dims)) == FEATURE_DIM
    # joint slices follow SMPL-X order: the first hand joint is left_index1 (index 22)
    assert LAYOUT.joint_rotation("left_index1") == slice(LAYOUT.hand_rotations.start, LAYOUT.hand_rotations.start + 6)
    assert LAYOUT.joint_rotation(21).stop == LAYOUT.body_rotations.stop
    assert LAYOUT.left_hand.stop == LAYOUT.right_hand.start


def test_round_trip_within_a_millimetre(demo_records: list[MotionRecord], tmp_path: Path) -> None:
    for rec in demo_records:
        # through storage as ingest writes it (float16 rotations), then encode / decode
        rec.save(tmp_path / "r.motion.npz")
        stored = MotionRecord.load(tmp_path / "r.motion.npz")
        feats, frame = encode(stored)
        assert feats.shape == (stored.num_frames, FEATURE_DIM) and feats.dtype == np.float32
        back = decode(feats, frame)
        want = forward_kinematics(rot6d_to_matrix(stored.rotations_6d.astype(np.float64)),
                                  stored.trans.astype(np.float64), smplx52())
        err = np.linalg.norm(back.positions - want, axis=-1)
        assert err.max() < 1e-3, f"round trip error {err.max() * 1000:.3f} mm"
        # and against the original (pre-storage) positions: float16 storage costs under a millimetre
        assert np.linalg.norm(back.positions - rec.positions, axis=-1).max() < 1e-3
        np.testing.assert_allclose(back.trans, stored.trans, atol=1e-4)
        assert back.joint_names == list(smplx52().names)


def test_canonical_frame_first_root_at_origin_facing_z(demo_records: list[MotionRecord]) -> None:
    rec = demo_records[1]
    feats, frame = encode(rec)
    root0 = forward_kinematics(rot6d_to_matrix(feats[:1, LAYOUT.rotations].reshape(1, 52, 6).astype(np.float64)),
                               feats[:1, LAYOUT.root].astype(np.float64), smplx52())[0, 0]
    assert abs(root0[0]) < 1e-5 and abs(root0[2]) < 1e-5
    assert abs(root0[1] - rec.positions[0, 0, 1]) < 1e-4         # height is kept: the floor stays the floor
    forward = rot6d_to_matrix(feats[0, LAYOUT.joint_rotation(0)].astype(np.float64)) @ [0, 0, 1]
    assert abs(np.arctan2(forward[0], forward[2])) < 1e-5


def test_encoding_ignores_where_and_which_way_the_dance_starts(demo_records: list[MotionRecord]) -> None:
    rec = demo_records[0]
    feats, _ = encode(rec)
    # the same dance turned by 100 degrees and moved 3 m: identical canonical features
    turn = yaw_matrix(np.radians(100.0))
    rot = rot6d_to_matrix(rec.rotations_6d.astype(np.float64))
    rot[:, 0] = turn @ rot[:, 0]
    off0 = np.asarray(smplx52().offsets[0])
    trans = (rec.trans + off0) @ turn.T - off0 + np.array([3.0, 0.0, -1.5])
    moved = MotionRecord(30.0, trans, forward_kinematics(rot, trans, smplx52()), list(smplx52().names),
                         matrix_to_rot6d(rot))
    feats2, frame2 = encode(moved)
    np.testing.assert_allclose(feats2, feats, atol=2e-4)
    assert abs(frame2.yaw - (encode(rec)[1].yaw + np.radians(100.0))) < 1e-4
    # a window cut anywhere is canonicalised the same way
    win, wframe = canonicalise_features(feats2[90:210])
    assert abs(win[0, LAYOUT.root][0]) < 1e-4 and abs(win[0, LAYOUT.root][2]) < 1e-4
    np.testing.assert_allclose(decode(win, wframe).positions, decode(feats2[90:210]).positions, atol=1e-4)


def test_heading_of_a_root_facing_down_uses_the_left_axis() -> None:
    """Face down (forward is -y), turned 30 degrees: after removing the heading the left axis is +x."""
    for turn in (0.0, 30.0, -120.0):
        face_down = yaw_matrix(np.radians(turn)) @ euler_to_matrix(np.array([90.0, 0.0, 0.0]), "XYZ")
        assert abs((face_down @ [0, 0, 1])[1] + 1) < 1e-9 or abs((face_down @ [0, 0, 1])[1] - 1) < 1e-9
        canon = yaw_matrix(-heading_yaw(face_down)) @ face_down
        np.testing.assert_allclose(canon @ [1, 0, 0], [1, 0, 0], atol=1e-9)


def _stance_motion(frames: int = 90) -> MotionRecord:
    """Root still; the right leg swings forward and back (hip flexion) while the left leg stands."""
    sk = smplx52()
    t = np.arange(frames) / 30.0
    rot = np.tile(np.eye(3), (frames, 52, 1, 1))
    swing = 35.0 * np.sin(2 * np.pi * 1.0 * t)                          # degrees; one swing cycle per second
    rot[:, sk.index("right_hip")] = euler_to_matrix(np.stack([-np.abs(swing), 0 * t, 0 * t], -1), "XYZ")
    rest = sk.rest_positions()
    lowest = min(rest[sk.index(n), 1] for n in ("left_foot", "right_foot"))
    trans = np.tile([0.0, -lowest - np.asarray(sk.offsets[0])[1], 0.0], (frames, 1))
    pos = forward_kinematics(rot, trans, sk)
    return MotionRecord(30.0, trans, pos, list(sk.names), matrix_to_rot6d(rot))


def test_contact_labels_on_known_stance_phases() -> None:
    rec = _stance_motion()
    feats, _ = encode(rec)
    c = feats[:, LAYOUT.contacts]
    # order: left ankle, right ankle, left toe, right toe
    assert c[:, 0].all() and c[:, 2].all(), "the standing leg is in contact throughout"
    swinging = np.abs(np.sin(2 * np.pi * np.arange(90) / 30.0)) > 0.3       # foot well off the floor
    assert not c[swinging, 3].any(), "the swinging toe is never in contact while lifted"
    # EDGE's speed-only rule labels the slow turning points of the swing as contacts; the height rule does not
    edge, _ = encode(rec, ContactConfig(height_threshold=None))
    assert edge[:, 3].sum() > c[:, 3].sum()


def test_decode_projects_non_orthonormal_generated_values() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (30, FEATURE_DIM)).astype(np.float32)
    rec = decode(x)
    r = rot6d_to_matrix(rec.rotations_6d.astype(np.float64))
    np.testing.assert_allclose(r @ np.swapaxes(r, -1, -2), np.broadcast_to(np.eye(3), r.shape), atol=1e-3)
    assert rec.positions.shape == (30, 52, 3)


def test_position_only_sources_are_reported_not_dropped(shared_data: Path) -> None:
    bvh = read_bvh(shared_data / "bvh" / "cmu_misc" / next(p.name for p in (shared_data / "bvh" / "cmu_misc").iterdir()
                                                         if ".bvh" in p.name)).to_record()
    with pytest.raises(NotGenerativeError, match="joint positions only") as info:
        encode(bvh, name="05_20.bvh")
    assert "05_20.bvh" in str(info.value) and "rotations_6d" in str(info.value)
    csv = next((shared_data / "aistpp_joint_slices").glob("*.csv"))
    xyz = np.loadtxt(csv, delimiter=",", ndmin=2)[:, :72].reshape(-1, 24, 3)
    aist = from_positions(xyz, list(smpl24().names), 30.0, up_axis="z")
    with pytest.raises(NotGenerativeError, match="SMPL-X 52 local rotations"):
        encode(aist, name=csv.name)


def test_other_frame_rates_and_bad_features_are_refused(demo_records: list[MotionRecord]) -> None:
    rec = demo_records[0]
    at60 = MotionRecord(60.0, rec.trans, rec.positions, rec.joint_names, rec.rotations_6d)
    with pytest.raises(NotGenerativeError, match="fps"):
        encode(at60)
    with pytest.raises(InputError, match=r"\(T, 319\)"):
        decode(np.zeros((10, 315)))
    bad = np.zeros((10, FEATURE_DIM))
    bad[3, 40] = np.nan
    with pytest.raises(InputError, match="NaN"):
        decode(bad, name="sample_7.npz")


def test_normaliser_fit_save_load_and_refuses_other_representations(demo_records: list[MotionRecord],
                                                                    tmp_path: Path) -> None:
    chunks = [encode(r)[0] for r in demo_records]
    norm = Normalizer.fit(chunks)
    allx = np.concatenate(chunks).astype(np.float64)
    assert norm.count == len(allx)
    np.testing.assert_allclose(norm.mean, allx.mean(0), atol=1e-5)
    np.testing.assert_allclose(norm.std, np.maximum(allx.std(0), norm.min_std), rtol=1e-4, atol=1e-6)
    assert norm.std.min() >= norm.min_std
    z = norm.normalise(chunks[0])
    np.testing.assert_allclose(norm.denormalise(z), chunks[0], atol=1e-5)
    import torch
    zt = norm.normalise(torch.as_tensor(chunks[0]))
    np.testing.assert_allclose(zt.numpy(), z, atol=1e-5)
    norm.save(tmp_path / "normalizer.npz")
    again = Normalizer.load(tmp_path / "normalizer.npz")
    np.testing.assert_array_equal(again.mean, norm.mean)
    assert again.representation == REPRESENTATION_ID
    np.savez(tmp_path / "other.npz", format=np.int64(1), representation=np.asarray("smpl24-rot6d-151"),
             mean=norm.mean, std=norm.std, count=np.int64(1), min_std=np.float64(0.01))
    with pytest.raises(InputError, match="another motion representation"):
        Normalizer.load(tmp_path / "other.npz")
    with pytest.raises(InputError, match="no training frames"):
        Normalizer.fit([])


def test_finedance_columns_line_up_with_the_layout() -> None:
    """A FineDance motion file (T, 315) read by the ingest path encodes to the same columns after the contacts."""
    from encoders.motion.convert import from_smplx_rot6d

    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(3)
    t = 90
    aa = 0.3 * np.sin(np.linspace(0, 6, t))[:, None, None] * rng.normal(size=(1, 52, 3))
    mats = Rotation.from_rotvec(aa.reshape(-1, 3)).as_matrix().reshape(t, 52, 3, 3)
    rot6d = mats[..., :2, :].reshape(t, 312)                 # FineDance: the first two ROWS, written out by hand
    assert not np.allclose(rot6d, np.swapaxes(mats, -1, -2)[..., :2, :].reshape(t, 312), atol=1e-3)
    trans = np.stack([np.linspace(0, 1, t), np.full(t, 0.9), np.zeros(t)], axis=1)
    rows = np.concatenate([trans, rot6d], axis=1).astype(np.float32)        # FineDance's 315 columns
    feats, frame = encode(from_smplx_rot6d(rows[:, :3], rows[:, 3:], 30.0), canonical=False)
    assert frame.yaw == 0.0
    np.testing.assert_allclose(feats[:, 4:], rows, atol=1e-5)
    # the rows are read as rows: decoding poses the skeleton with the hand-built matrices
    want = forward_kinematics(mats, trans, smplx52())
    np.testing.assert_allclose(decode(feats).positions, want, atol=1e-4)
