"""Source arrays -> MotionRecord at 30 fps (encoders.motion.convert)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from encoders.errors import InputError
from encoders.motion.convert import (Z_UP_TO_Y_UP, from_positions, from_smpl_axis_angle, from_smplx_axis_angle,
                                     from_smplx_rot6d)
from encoders.motion.kinematics import forward_kinematics
from encoders.motion.record import MotionRecord
from encoders.motion.rotations import axis_angle_to_matrix, matrix_to_rot6d, rot6d_to_matrix
from encoders.motion.skeleton import SMPL_BODY_22, smpl24, smplx52


def random_poses(t: int, j: int, seed: int = 0, scale: float = 0.3) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(t, j, 3)) * scale


def test_smplx_axis_angle_at_30fps_is_fk_of_the_input() -> None:
    poses = random_poses(12, 52)
    trans = np.linspace([0, 0.9, 0], [1, 0.9, 2], 12)
    rec = from_smplx_axis_angle(trans, poses, fps=30)
    assert isinstance(rec, MotionRecord) and rec.fps == 30
    assert rec.joint_names == list(smplx52().names)
    want = forward_kinematics(axis_angle_to_matrix(poses), trans, smplx52())
    np.testing.assert_allclose(rec.positions, want, atol=1e-5)
    np.testing.assert_allclose(rec.trans, trans, atol=1e-6)
    np.testing.assert_allclose(rec.rotations_6d, matrix_to_rot6d(axis_angle_to_matrix(poses)), atol=1e-6)
    np.testing.assert_allclose(rec.body22(), want[:, :22], atol=1e-5)


def test_smplx_flat_poses_are_accepted() -> None:
    poses = random_poses(5, 52, seed=1)
    a = from_smplx_axis_angle(np.zeros((5, 3)), poses, 30)
    b = from_smplx_axis_angle(np.zeros((5, 3)), poses.reshape(5, 156), 30)
    np.testing.assert_allclose(a.positions, b.positions)


def test_rot6d_uses_rows_not_columns() -> None:
    poses = random_poses(6, 52, seed=2, scale=0.6)
    mats = axis_angle_to_matrix(poses)
    rows = mats[..., :2, :].reshape(6, 52, 6)             # FineDance convention
    rec = from_smplx_rot6d(np.zeros((6, 3)), rows, fps=30)
    np.testing.assert_allclose(rot6d_to_matrix(rec.rotations_6d), mats, atol=1e-5)
    want = forward_kinematics(mats, np.zeros((6, 3)), smplx52())
    np.testing.assert_allclose(rec.positions, want, atol=1e-5)
    # reading the same numbers as columns would transpose every rotation: a different body
    cols = np.swapaxes(mats, -1, -2)[..., :2, :].reshape(6, 52, 6)
    other = from_smplx_rot6d(np.zeros((6, 3)), cols, fps=30)
    assert np.abs(other.positions - rec.positions).max() > 0.05
    flat = from_smplx_rot6d(np.zeros((6, 3)), rows.reshape(6, 312), fps=30)
    np.testing.assert_allclose(flat.positions, rec.positions)


def test_resampling_60_and_120_fps_to_30() -> None:
    t60 = 121                                              # 2 s at 60 fps
    poses = np.zeros((t60, 52, 3))
    poses[:, 18, 2] = np.linspace(0, 1.2, t60)             # left elbow turns steadily about z
    trans = np.stack([np.linspace(0, 2, t60), np.full(t60, 0.9), np.zeros(t60)], axis=1)
    rec = from_smplx_axis_angle(trans, poses, fps=60)
    assert rec.num_frames == 61 and rec.duration_s == pytest.approx(61 / 30)
    np.testing.assert_allclose(rec.trans[:, 0], np.linspace(0, 2, 61), atol=1e-6)
    np.testing.assert_allclose(rec.trans[:, 1], 0.9, atol=1e-6)
    want = forward_kinematics(axis_angle_to_matrix(poses[::2]), trans[::2], smplx52())
    np.testing.assert_allclose(rec.positions, want, atol=1e-4)
    rec120 = from_smplx_axis_angle(np.zeros((241, 3)), np.zeros((241, 52, 3)), fps=120)
    assert rec120.num_frames == 61


def test_smpl_axis_angle_aistpp_style() -> None:
    t = 61
    poses = random_poses(t, 24, seed=4).reshape(t, 72)
    scaling = 93.5
    trans_scaled = np.stack([np.linspace(0, 100, t), np.full(t, 85.0), np.zeros(t)], axis=1)
    rec = from_smpl_axis_angle(poses, trans_scaled, np.array([scaling]), fps=60)
    assert rec.num_frames == 31 and rec.fps == 30
    assert rec.joint_names == list(smpl24().names)
    assert rec.joint_names[:22] == list(SMPL_BODY_22)
    np.testing.assert_allclose(rec.trans, trans_scaled[::2] / scaling, atol=1e-5)
    mats = axis_angle_to_matrix(poses.reshape(t, 24, 3))[::2]
    want = forward_kinematics(mats, trans_scaled[::2] / scaling, smpl24())
    np.testing.assert_allclose(rec.positions, want, atol=1e-4)
    # 52 SMPL-X rotations: body from the file, fingers at identity
    rot = rot6d_to_matrix(rec.rotations_6d)
    np.testing.assert_allclose(rot[:, :22], mats[:, :22], atol=1e-4)
    np.testing.assert_allclose(rot[:, 22:], np.broadcast_to(np.eye(3), rot[:, 22:].shape), atol=1e-6)
    assert rec.meta["smpl_scaling"] == scaling


def test_smpl_scaling_must_be_positive() -> None:
    with pytest.raises(InputError) as err:
        from_smpl_axis_angle(np.zeros((3, 72)), np.zeros((3, 3)), 0.0, 60)
    assert "scaling" in str(err.value)


@pytest.mark.parametrize("call,field", [
    (lambda: from_smplx_axis_angle(np.zeros((4, 3)), np.zeros((4, 51, 3)), 30), "poses"),
    (lambda: from_smplx_axis_angle(np.zeros((5, 3)), np.zeros((4, 52, 3)), 30), "trans"),
    (lambda: from_smplx_axis_angle(np.zeros((4, 3)), np.full((4, 52, 3), np.nan), 30), "poses"),
    (lambda: from_smplx_axis_angle(np.zeros((4, 3)), np.zeros((4, 52, 3)), 0), "fps"),
    (lambda: from_smplx_axis_angle(np.zeros((4, 3)), np.zeros((4, 52, 3)), float("nan")), "fps"),
    (lambda: from_smplx_axis_angle(np.zeros((0, 3)), np.zeros((0, 52, 3)), 30), "poses"),
    (lambda: from_smplx_rot6d(np.zeros((4, 3)), np.zeros((4, 52, 6)), 30), "rot6d"),
    (lambda: from_smplx_rot6d(np.zeros((4, 3)), np.zeros((4, 311)), 30), "rot6d"),
    (lambda: from_smplx_rot6d(np.array([[0, 0, np.inf]] * 4), np.tile([1.0, 0, 0, 0, 1, 0], (4, 52, 1)), 30),
     "trans"),
    (lambda: from_smpl_axis_angle(np.zeros((4, 70)), np.zeros((4, 3)), 1.0, 60), "poses"),
    (lambda: from_positions(np.zeros((4, 22, 2)), list(SMPL_BODY_22), 30), "positions"),
    (lambda: from_positions(np.zeros((4, 21, 3)), list(SMPL_BODY_22), 30), "joint_names"),
    (lambda: from_positions(np.zeros((4, 22, 3)), list(SMPL_BODY_22), 30, up_axis="x"), "up_axis"),
    (lambda: from_positions(np.zeros((4, 3, 3)), ["a", "b", "c"], 30), "joint_names"),
    (lambda: from_positions(np.zeros((4, 22, 3)), list(SMPL_BODY_22), 30, trans=np.zeros((3, 3))), "trans"),
])
def test_bad_input_names_the_field(call, field: str) -> None:
    with pytest.raises(InputError) as err:
        call()
    assert err.value.field == field, str(err.value)


def test_from_positions_y_up_smpl_names() -> None:
    rest = smplx52().rest_positions()[:22] + [0, 0.9, 0]
    t = 9
    pos = np.repeat(rest[None], t, axis=0) + np.linspace(0, 1, t)[:, None, None] * [1.0, 0, 0]
    rec = from_positions(pos, list(SMPL_BODY_22), fps=60)
    assert rec.num_frames == 5 and rec.joint_names == list(SMPL_BODY_22)
    np.testing.assert_allclose(rec.positions, pos[::2], atol=1e-6)
    np.testing.assert_allclose(rec.trans, pos[::2, 0], atol=1e-6)          # default trans: the pelvis
    assert rec.rotations_6d is None


def test_from_positions_z_up_keeps_right_handed_frame() -> None:
    # A y-up body (left at +x, facing +z) written z-up the way EDGE does it: (x, y, z) -> (x, -z, y).
    rest = smplx52().rest_positions()[:22]
    z_up = np.stack([rest[:, 0], -rest[:, 2], rest[:, 1]], axis=1)[None]
    rec = from_positions(z_up, list(SMPL_BODY_22), fps=30, up_axis="z")
    np.testing.assert_allclose(rec.positions[0], rest, atol=1e-6)
    assert np.linalg.det(Z_UP_TO_Y_UP) == pytest.approx(1.0)


def test_from_positions_keep_all_joints_and_explicit_trans() -> None:
    names = list(smpl24().names)
    pos = np.random.default_rng(0).normal(size=(3, 24, 3))
    trans = np.ones((3, 3))
    rec = from_positions(pos, names, fps=30, trans=trans, keep_all_joints=True)
    assert rec.joint_names == list(SMPL_BODY_22) + ["left_palm", "right_palm"]
    np.testing.assert_allclose(rec.positions[:, 22:], pos[:, 22:], atol=1e-6)
    np.testing.assert_allclose(rec.trans, trans)


def test_record_round_trips_through_save(tmp_path) -> None:
    rec = from_smplx_axis_angle(np.zeros((4, 3)), random_poses(4, 52, seed=9), 30)
    rec.save(tmp_path / "a.motion.npz")
    back = MotionRecord.load(tmp_path / "a.motion.npz")
    np.testing.assert_allclose(back.positions, rec.positions, atol=2e-3)   # float16 storage
    assert back.joint_names == rec.joint_names and math.isclose(back.fps, 30)
